//! Which third parties are configured, read and validated from the environment.
//!
//! A missing integration is not an error: the service starts, reports it as not configured and
//! answers FAILED_PRECONDITION for the calls that need it. A *malformed* setting (a URL that is
//! not http/https) is an error at start-up naming the variable.

use std::fmt;
use std::time::Duration;

use director_platform::config::{ConfigError, Env, Secret};
use reqwest::Url;

use crate::error::ProviderError;
use crate::provider::Provider;

/// How a client retries one call: exponential backoff with jitter between `min_delay` and
/// `max_delay`, or what the provider's `Retry-After` asks for, capped at `retry_after_cap`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in total, the first included (1 means never retry).
    pub max_attempts: u32,
    /// The first backoff delay (before jitter).
    pub min_delay: Duration,
    /// No backoff delay is longer than this, jitter included.
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a longer one is shortened to this.
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 250 ms doubling up to 10 s, `Retry-After` up to 30 s.
    fn default() -> Self {
        Self {
            max_attempts: 5,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(30),
        }
    }
}

/// Per-attempt time limits: from sending the request to the last byte of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Every call but a Vessey collections page: 10 s.
    pub call: Duration,
    /// One Vessey collections page: 30 s.
    pub collections_page: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            call: Duration::from_secs(10),
            collections_page: Duration::from_secs(30),
        }
    }
}

/// A URL that carries a credential (Slack's webhook URL is its own secret): `Debug` and
/// `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(Url);

impl SecretUrl {
    /// The URL itself, for the one place that sends to it.
    pub fn expose(&self) -> &Url {
        &self.0
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The Vessey API: `VESSEY_API_URL`, `VESSEY_API_KEY`. `Debug` shows the URL without
/// credentials or query string, and not the key.
#[derive(Clone, PartialEq, Eq)]
pub struct VesseyConfig {
    /// Base URL; `/drivers` and `/collections` are appended to its path.
    pub base_url: Url,
    /// Sent as `Authorization: Bearer <key>`.
    pub api_key: Secret,
    /// Per-attempt time limits.
    pub timeouts: Timeouts,
}

impl VesseyConfig {
    /// Vessey at `base_url` (http or https) with this key and the default timeouts.
    pub fn new(base_url: &str, api_key: impl Into<Secret>) -> Result<Self, ConfigError> {
        Ok(Self {
            base_url: http_url("VESSEY_API_URL", base_url, Quote::Value)?,
            api_key: api_key.into(),
            timeouts: Timeouts::default(),
        })
    }
}

/// Twilio's Messages API: `TWILIO_API_URL`, `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`,
/// `TWILIO_FROM_NUMBER`. `Debug` shows neither the account SID nor the token.
#[derive(Clone, PartialEq, Eq)]
pub struct TwilioConfig {
    /// `https://api.twilio.com` unless overridden (tests, fakes).
    pub api_url: Url,
    /// The account, `AC…`: basic-auth user and part of the path.
    pub account_sid: String,
    /// Basic-auth password.
    pub auth_token: Secret,
    /// The sender number, `From`.
    pub from_number: String,
    /// Per-attempt time limits (`call`).
    pub timeouts: Timeouts,
}

impl fmt::Debug for VesseyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VesseyConfig")
            .field("base_url", &PrintableUrl(&self.base_url))
            .field("api_key", &self.api_key)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

impl fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("api_url", &PrintableUrl(&self.api_url))
            .field("account_sid", &"[redacted]")
            .field("auth_token", &self.auth_token)
            .field("from_number", &self.from_number)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// A URL as `Debug` may show it: scheme, host, port and path; a user name, password or query
/// string (which may carry a token) replaced by `[redacted]`.
pub(crate) struct PrintableUrl<'a>(pub(crate) &'a Url);

impl fmt::Debug for PrintableUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        write!(f, "\"{}://", url.scheme())?;
        if !url.username().is_empty() || url.password().is_some() {
            f.write_str("[redacted]@")?;
        }
        if let Some(host) = url.host_str() {
            f.write_str(host)?;
        }
        if let Some(port) = url.port() {
            write!(f, ":{port}")?;
        }
        f.write_str(url.path())?;
        if url.query().is_some() {
            f.write_str("?[redacted]")?;
        }
        f.write_str("\"")
    }
}

/// Where Twilio is when `TWILIO_API_URL` is unset.
pub const DEFAULT_TWILIO_API_URL: &str = "https://api.twilio.com";

impl TwilioConfig {
    /// Twilio at `api_url` (http or https) with these credentials and the default timeouts.
    pub fn new(
        api_url: &str,
        account_sid: impl Into<String>,
        auth_token: impl Into<Secret>,
        from_number: impl Into<String>,
    ) -> Result<Self, ConfigError> {
        Ok(Self {
            api_url: http_url("TWILIO_API_URL", api_url, Quote::Value)?,
            account_sid: account_sid.into(),
            auth_token: auth_token.into(),
            from_number: from_number.into(),
            timeouts: Timeouts::default(),
        })
    }
}

/// A Slack incoming webhook: `SLACK_WEBHOOK_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackConfig {
    /// The webhook URL (a credential: never printed).
    pub webhook_url: SecretUrl,
    /// Per-attempt time limits (`call`).
    pub timeouts: Timeouts,
}

impl SlackConfig {
    /// The webhook at `webhook_url` (http or https) with the default timeouts. The error does
    /// not quote the URL.
    pub fn new(webhook_url: &str) -> Result<Self, ConfigError> {
        Ok(Self {
            webhook_url: SecretUrl(http_url("SLACK_WEBHOOK_URL", webhook_url, Quote::Never)?),
            timeouts: Timeouts::default(),
        })
    }
}

/// The variables an integration lacks, e.g. `["VESSEY_API_KEY"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing(pub Vec<&'static str>);

impl Missing {
    /// The [`ProviderError::NotConfigured`] for `integration` lacking these variables.
    pub fn error_for(&self, integration: Provider) -> ProviderError {
        ProviderError::not_configured(integration, &self.0)
    }
}

impl RetryPolicy {
    /// The default policy, adjusted by `PROVIDER_RETRY_MAX_ATTEMPTS`,
    /// `PROVIDER_RETRY_MIN_DELAY_MS`, `PROVIDER_RETRY_MAX_DELAY_MS` and
    /// `PROVIDER_RETRY_AFTER_CAP_MS` (tests shorten the waits; operators may lengthen them).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let policy = Self {
            max_attempts: env.parse_or("PROVIDER_RETRY_MAX_ATTEMPTS", defaults.max_attempts)?,
            min_delay: env.millis_or("PROVIDER_RETRY_MIN_DELAY_MS", millis(defaults.min_delay))?,
            max_delay: env.millis_or("PROVIDER_RETRY_MAX_DELAY_MS", millis(defaults.max_delay))?,
            retry_after_cap: env.millis_or(
                "PROVIDER_RETRY_AFTER_CAP_MS",
                millis(defaults.retry_after_cap),
            )?,
        };
        if policy.max_attempts == 0 {
            return Err(ConfigError::invalid(
                "PROVIDER_RETRY_MAX_ATTEMPTS",
                "1 or more",
                "0",
            ));
        }
        if policy.max_delay < policy.min_delay {
            return Err(ConfigError::new(
                "PROVIDER_RETRY_MAX_DELAY_MS",
                "must not be shorter than PROVIDER_RETRY_MIN_DELAY_MS",
            ));
        }
        Ok(policy)
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Every integration's configuration, or what it lacks, and how calls retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidersConfig {
    /// Vessey, or the unset variables among `VESSEY_API_URL`, `VESSEY_API_KEY`.
    pub vessey: Result<VesseyConfig, Missing>,
    /// Twilio, or the unset variables among `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`,
    /// `TWILIO_FROM_NUMBER`.
    pub twilio: Result<TwilioConfig, Missing>,
    /// Slack, or `SLACK_WEBHOOK_URL` when unset.
    pub slack: Result<SlackConfig, Missing>,
    /// Retries of every third-party call.
    pub retry: RetryPolicy,
}

impl ProvidersConfig {
    /// Reads the integrations' variables. Unset ones make that integration [`Missing`]; a set
    /// but malformed URL is an error naming its variable (even when the integration is
    /// incomplete, so a typo shows up before the last variable is added).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            vessey: vessey_from_env(env)?,
            twilio: twilio_from_env(env)?,
            slack: slack_from_env(env)?,
            retry: RetryPolicy::from_env(env)?,
        })
    }
}

/// The names in `vars` whose value is unset.
fn unset(vars: &[(&'static str, &Option<String>)]) -> Vec<&'static str> {
    vars.iter()
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| *name)
        .collect()
}

fn vessey_from_env(env: &Env) -> Result<Result<VesseyConfig, Missing>, ConfigError> {
    let url = env.string("VESSEY_API_URL");
    let key = env.string("VESSEY_API_KEY");
    let base_url = url
        .as_deref()
        .map(|url| http_url("VESSEY_API_URL", url, Quote::Value))
        .transpose()?;
    match (base_url, key) {
        (Some(base_url), Some(key)) => Ok(Ok(VesseyConfig {
            base_url,
            api_key: Secret::new(key),
            timeouts: Timeouts::default(),
        })),
        (_, key) => Ok(Err(Missing(unset(&[
            ("VESSEY_API_URL", &url),
            ("VESSEY_API_KEY", &key),
        ])))),
    }
}

fn twilio_from_env(env: &Env) -> Result<Result<TwilioConfig, Missing>, ConfigError> {
    let api_url = http_url(
        "TWILIO_API_URL",
        &env.string("TWILIO_API_URL")
            .unwrap_or_else(|| DEFAULT_TWILIO_API_URL.to_owned()),
        Quote::Value,
    )?;
    let sid = env.string("TWILIO_ACCOUNT_SID");
    let token = env.string("TWILIO_AUTH_TOKEN");
    let from = env.string("TWILIO_FROM_NUMBER");
    match (&sid, &token, &from) {
        (Some(sid), Some(token), Some(from)) => Ok(Ok(TwilioConfig {
            api_url,
            account_sid: sid.clone(),
            auth_token: Secret::new(token.clone()),
            from_number: from.clone(),
            timeouts: Timeouts::default(),
        })),
        _ => Ok(Err(Missing(unset(&[
            ("TWILIO_ACCOUNT_SID", &sid),
            ("TWILIO_AUTH_TOKEN", &token),
            ("TWILIO_FROM_NUMBER", &from),
        ])))),
    }
}

fn slack_from_env(env: &Env) -> Result<Result<SlackConfig, Missing>, ConfigError> {
    match env.string("SLACK_WEBHOOK_URL") {
        Some(url) => Ok(Ok(SlackConfig::new(&url)?)),
        None => Ok(Err(Missing(vec!["SLACK_WEBHOOK_URL"]))),
    }
}

/// Whether a bad value may be repeated in the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    Value,
    Never,
}

/// `raw` as an absolute http or https URL with a host.
fn http_url(variable: &str, raw: &str, quote: Quote) -> Result<Url, ConfigError> {
    let expected = "an http:// or https:// URL";
    let refuse = || match quote {
        Quote::Value => ConfigError::invalid(variable, expected, raw),
        Quote::Never => ConfigError::new(variable, format!("expected {expected}")),
    };
    let url = Url::parse(raw.trim()).map_err(|_| refuse())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(refuse());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn nothing_set_means_every_integration_is_missing_its_variables() {
        let config = ProvidersConfig::from_env(&Env::default()).unwrap();
        assert_eq!(
            config.vessey,
            Err(Missing(vec!["VESSEY_API_URL", "VESSEY_API_KEY"]))
        );
        assert_eq!(config.slack, Err(Missing(vec!["SLACK_WEBHOOK_URL"])));
        assert_eq!(
            config.twilio,
            Err(Missing(vec![
                "TWILIO_ACCOUNT_SID",
                "TWILIO_AUTH_TOKEN",
                "TWILIO_FROM_NUMBER"
            ]))
        );
    }

    #[test]
    fn a_complete_set_configures_everything_with_twilios_default_url() {
        let env = Env::from_pairs([
            ("VESSEY_API_URL", "https://vessey.example/api/v1"),
            ("VESSEY_API_KEY", "k"),
            (
                "SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T/B/X",
            ),
            ("TWILIO_ACCOUNT_SID", "AC123"),
            ("TWILIO_AUTH_TOKEN", "t"),
            ("TWILIO_FROM_NUMBER", "+15550100000"),
        ]);
        let config = ProvidersConfig::from_env(&env).unwrap();
        assert!(config.vessey.is_ok() && config.slack.is_ok() && config.twilio.is_ok());
        let twilio = config.twilio.unwrap();
        assert_eq!(twilio.api_url.as_str(), "https://api.twilio.com/");
        assert_eq!(config.vessey.unwrap().api_key.expose(), "k");
    }

    #[test]
    fn only_the_unset_variables_are_reported_missing() {
        let env = Env::from_pairs([("VESSEY_API_URL", "http://127.0.0.1:9/")]);
        let config = ProvidersConfig::from_env(&env).unwrap();
        assert_eq!(config.vessey, Err(Missing(vec!["VESSEY_API_KEY"])));
        assert_eq!(config.retry, RetryPolicy::default());
    }

    #[test]
    fn a_malformed_url_is_an_error_naming_the_variable() {
        for (variable, value) in [
            ("VESSEY_API_URL", "vessey.example"),
            ("TWILIO_API_URL", "ftp://twilio.example"),
            ("SLACK_WEBHOOK_URL", "hooks.slack.com/services/T/B/secret"),
        ] {
            let error = ProvidersConfig::from_env(&Env::from_pairs([(variable, value)]))
                .expect_err(variable);
            assert_eq!(error.variable, variable);
        }
    }

    #[test]
    fn a_malformed_slack_url_is_not_repeated_in_the_error() {
        let env = Env::from_pairs([("SLACK_WEBHOOK_URL", "not-a-url/secret-token")]);
        let error = ProvidersConfig::from_env(&env).unwrap_err();
        assert!(!error.to_string().contains("secret-token"), "{error}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let env = Env::from_pairs([
            ("VESSEY_API_URL", "https://vessey.example"),
            ("VESSEY_API_KEY", "vessey-key-123"),
            (
                "SLACK_WEBHOOK_URL",
                "https://hooks.slack.com/services/T/B/slack-secret",
            ),
            ("TWILIO_ACCOUNT_SID", "AC123"),
            ("TWILIO_AUTH_TOKEN", "twilio-token-456"),
            ("TWILIO_FROM_NUMBER", "+15550100000"),
        ]);
        let debug = format!("{:?}", ProvidersConfig::from_env(&env).unwrap());
        for secret in ["vessey-key-123", "slack-secret", "twilio-token-456"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn retry_settings_shorten_or_lengthen_the_policy_and_nonsense_is_refused() {
        let env = Env::from_pairs([
            ("PROVIDER_RETRY_MAX_ATTEMPTS", "3"),
            ("PROVIDER_RETRY_MIN_DELAY_MS", "10"),
            ("PROVIDER_RETRY_MAX_DELAY_MS", "100"),
        ]);
        let policy = RetryPolicy::from_env(&env).unwrap();
        assert_eq!(policy.max_attempts, 3);
        assert_eq!(policy.min_delay, Duration::from_millis(10));
        assert_eq!(policy.max_delay, Duration::from_millis(100));
        assert_eq!(
            policy.retry_after_cap,
            RetryPolicy::default().retry_after_cap
        );
        let zero = Env::from_pairs([("PROVIDER_RETRY_MAX_ATTEMPTS", "0")]);
        assert!(RetryPolicy::from_env(&zero).is_err());
        let inverted = Env::from_pairs([
            ("PROVIDER_RETRY_MIN_DELAY_MS", "500"),
            ("PROVIDER_RETRY_MAX_DELAY_MS", "100"),
        ]);
        let error = RetryPolicy::from_env(&inverted).unwrap_err();
        assert!(
            error.to_string().contains("PROVIDER_RETRY_MAX_DELAY_MS"),
            "{error}"
        );
    }
}
