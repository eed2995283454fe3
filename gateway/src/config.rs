//! The gateway's settings, read once at start-up from the environment and validated there, so
//! a bad value stops the process with a message naming the variable instead of failing later
//! on a request.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use director_platform::config::{CommonConfig, ConfigError, Env, Environment, Secret};
use director_platform::identity::InternalTokenConfig;
use director_platform::secrets::check_deployed_secret;
use regex::Regex;

use crate::client_addr::TrustedProxies;

/// The gateway's `service.name` (its binary's name) unless `OTEL_SERVICE_NAME` says otherwise.
pub const SERVICE_NAME: &str = "director-gateway";

const DEFAULT_RATE_PER_SECOND: NonZeroU32 = NonZeroU32::MIN.saturating_add(19);
const DEFAULT_RATE_BURST: NonZeroU32 = NonZeroU32::MIN.saturating_add(39);
const DEFAULT_ADDRESS_RATE_PER_SECOND: NonZeroU32 = NonZeroU32::MIN.saturating_add(99);
const DEFAULT_ADDRESS_RATE_BURST: NonZeroU32 = NonZeroU32::MIN.saturating_add(199);

/// Everything the gateway reads from the environment.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// `GATEWAY_ADDR`: where the one listener binds (default `0.0.0.0:8080`).
    pub addr: SocketAddr,
    /// How callers are authenticated.
    pub auth: AuthConfig,
    /// Which browser origins may call the gateway.
    pub cors: CorsConfig,
    /// Body, rate, time and concurrency limits.
    pub limits: LimitsConfig,
    /// Environment, debug flag and telemetry.
    pub common: CommonConfig,
    /// The cluster secret the verified caller is forwarded with.
    pub internal_token: InternalTokenConfig,
}

/// How Supabase bearer tokens are verified and turned into a caller.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `SUPABASE_JWT_SECRET`: the legacy HS256 secret; HS256 tokens are refused without it.
    pub jwt_secret: Option<Secret>,
    /// `SUPABASE_JWKS_URL`, else `{SUPABASE_URL}/auth/v1/.well-known/jwks.json`; asymmetric
    /// tokens (ES256, RS256) are refused without it.
    pub jwks_url: Option<String>,
    /// `JWT_AUDIENCE` (default `authenticated`).
    pub audience: String,
    /// `JWT_ISSUER` (default `{SUPABASE_URL}/auth/v1` when `SUPABASE_URL` is set); checked
    /// only when present.
    pub issuer: Option<String>,
    /// `TENANT_CLAIM`: dotted path of the tenant id claim (default `app_metadata.tenant_id`);
    /// when it is absent the token is refused if `require_claims`, else `sub` is the tenant.
    pub tenant_claim: String,
    /// `ROLE_CLAIM`: dotted path of the role claim (default `app_metadata.role`); when it is
    /// absent the token is refused if `require_claims`, else the caller is admin.
    pub role_claim: String,
    /// `REQUIRE_CLAIMS`: refuse (403) a token lacking the tenant or role claim instead of
    /// falling back to `sub` and admin. Default `true` outside dev, where `false` is refused
    /// (on an open Supabase project anyone can sign up); `false` in dev.
    pub require_claims: bool,
    /// Clock skew tolerated on `exp` (30 s).
    pub leeway: Duration,
    /// How often the JWKS is refreshed in the background (10 min).
    pub jwks_refresh_interval: Duration,
    /// Minimum time between two refreshes caused by an unknown `kid` (30 s).
    pub jwks_min_refresh_interval: Duration,
    /// Time limit of one JWKS download (5 s).
    pub jwks_timeout: Duration,
}

/// Allowed browser origins.
#[derive(Debug, Clone)]
pub struct CorsConfig {
    /// `CORS_ORIGINS`: exact origins, a comma list or a JSON array (default
    /// `http://localhost:3000`).
    pub origins: Vec<String>,
    /// `ALLOWED_ORIGIN_REGEX`: origins matching this pattern as a whole are allowed too.
    pub origin_regex: Option<Regex>,
}

/// Protective limits.
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// `MAX_BODY_BYTES`: largest REST request body (default 1 MiB).
    pub max_body_bytes: usize,
    /// `RATE_LIMIT_PER_SECOND`: sustained requests per second per authenticated caller
    /// (default 20).
    pub rate_per_second: NonZeroU32,
    /// `RATE_LIMIT_BURST`: requests a caller may make at once before the rate applies
    /// (default 40).
    pub rate_burst: NonZeroU32,
    /// `ADDRESS_RATE_LIMIT_PER_SECOND`: sustained unauthenticated requests (no or a bad token,
    /// public routes, reflection, readiness) per client address (default 100).
    pub address_rate_per_second: NonZeroU32,
    /// `ADDRESS_RATE_LIMIT_BURST`: unauthenticated requests a client address may make at once
    /// (default 200).
    pub address_rate_burst: NonZeroU32,
    /// `UPSTREAM_TIMEOUT_MS`: deadline of a unary upstream call (REST, and gRPC: a client's
    /// shorter `grpc-timeout` applies, a longer one is cut to this; default 15 s).
    pub upstream_timeout: Duration,
    /// `MAX_CONCURRENT_REQUESTS`: requests in flight, open streams included until they end,
    /// before new ones are shed with 503 (default 1024).
    pub max_concurrent_requests: usize,
    /// `TRUSTED_PROXIES`: networks of the proxies and ingresses in front of the gateway
    /// (comma-separated CIDRs or addresses, default none). Their `X-Forwarded-For` entries
    /// name the client address for the per-address limit; see [`TrustedProxies`].
    pub trusted_proxies: TrustedProxies,
    /// Time limit of each upstream health check behind `/api/health/ready` (2 s).
    pub readiness_timeout: Duration,
    /// `HEADER_READ_TIMEOUT_MS` (10000): how long a client may take to send a request's
    /// headers before the connection is closed.
    pub header_read_timeout: Duration,
    /// `BODY_READ_TIMEOUT_MS` (30000): how long a request body may send nothing before the
    /// request fails (408 for REST).
    pub body_read_timeout: Duration,
    /// `MAX_CONNECTIONS` (4096): open client connections; beyond it the gateway stops
    /// accepting until one closes.
    pub max_connections: usize,
    /// Time limit of connecting to an upstream (5 s).
    pub connect_timeout: Duration,
    /// `MAX_CONNECTIONS_PER_ADDRESS` (1024): open connections from one client address (IPv6
    /// by /64; trusted proxies exempt); a connection beyond it is closed at once.
    pub max_connections_per_address: usize,
    /// `MAX_STREAMS_PER_ADDRESS` (32): open unauthenticated streams (reflection) per client
    /// address; beyond it RESOURCE_EXHAUSTED.
    pub max_streams_per_address: usize,
    /// `MAX_STREAMS_PER_CALLER` (32): open streams (gRPC, gRPC-Web, Server-Sent Events) per
    /// authenticated caller; beyond it 429 / RESOURCE_EXHAUSTED.
    pub max_streams_per_caller: usize,
    /// `MAX_STREAMS_PER_TENANT` (768): open streams of all a tenant's callers together.
    pub max_streams_per_tenant: usize,
    /// Reflection requests one stream may make (100).
    pub max_reflection_requests: usize,
    /// Bytes of answers one reflection stream may receive (4 MiB).
    pub max_reflection_bytes: usize,
    /// `CONNECTION_IDLE_TIMEOUT_MS` (60000): a connection with no request in flight (HTTP/2
    /// with no open stream) for this long is closed.
    pub connection_idle_timeout: Duration,
}

impl GatewayConfig {
    /// Reads and validates every gateway setting.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let common = CommonConfig::from_env(env, SERVICE_NAME)?;
        let internal_token = InternalTokenConfig::from_env(env, common.environment)?;
        let auth = AuthConfig::from_env(env, common.environment)?;
        auth.check_for(common.environment)?;
        Ok(Self {
            addr: env.parse_or("GATEWAY_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            auth,
            cors: CorsConfig::from_env(env)?,
            limits: LimitsConfig::from_env(env)?,
            common,
            internal_token,
        })
    }
}

impl AuthConfig {
    /// Reads the authentication settings; `environment` decides whether claims are required
    /// by default, and that they cannot be waived outside dev.
    pub fn from_env(env: &Env, environment: Environment) -> Result<Self, ConfigError> {
        let supabase_url = env
            .string("SUPABASE_URL")
            .map(|url| url.trim_end_matches('/').to_owned());
        if let Some(url) = &supabase_url {
            check_http_url("SUPABASE_URL", url)?;
        }
        let jwks_url = match env.string("SUPABASE_JWKS_URL") {
            Some(url) => Some(url),
            None => supabase_url
                .as_ref()
                .map(|base| format!("{base}/auth/v1/.well-known/jwks.json")),
        };
        if let Some(url) = &jwks_url {
            check_http_url("SUPABASE_JWKS_URL", url)?;
        }
        let issuer = env
            .string("JWT_ISSUER")
            .or_else(|| supabase_url.as_ref().map(|base| format!("{base}/auth/v1")));
        let require_claims = env.bool_or("REQUIRE_CLAIMS", !environment.is_dev())?;
        if !require_claims && !environment.is_dev() {
            return Err(ConfigError::new(
                "REQUIRE_CLAIMS",
                format!(
                    "cannot be false when ENVIRONMENT is {environment}: a token without the \
                     tenant or role claim would make its user admin of a tenant of its own"
                ),
            ));
        }
        Ok(Self {
            jwt_secret: env.secret("SUPABASE_JWT_SECRET"),
            jwks_url,
            audience: env
                .string("JWT_AUDIENCE")
                .unwrap_or_else(|| "authenticated".to_owned()),
            issuer,
            tenant_claim: claim_path(env, "TENANT_CLAIM", "app_metadata.tenant_id")?,
            role_claim: claim_path(env, "ROLE_CLAIM", "app_metadata.role")?,
            require_claims,
            leeway: Duration::from_secs(30),
            jwks_refresh_interval: Duration::from_secs(600),
            jwks_min_refresh_interval: Duration::from_secs(30),
            jwks_timeout: Duration::from_secs(5),
        })
    }
}

impl AuthConfig {
    /// Refuses settings that would let someone forge or pick their identity. Everywhere: a
    /// tenant or role claim under `user_metadata`, which users write themselves. Outside dev
    /// also: a published or short `SUPABASE_JWT_SECRET`, a JWKS fetched over plain HTTP, and
    /// HS256 alone without an issuer check.
    pub fn check_for(&self, environment: Environment) -> Result<(), ConfigError> {
        for (variable, claim) in [
            ("TENANT_CLAIM", &self.tenant_claim),
            ("ROLE_CLAIM", &self.role_claim),
        ] {
            if claim == "user_metadata" || claim.starts_with("user_metadata.") {
                return Err(ConfigError {
                    variable: variable.to_owned(),
                    reason: "must not be under user_metadata: users can write it themselves \
                             (use app_metadata)"
                        .to_owned(),
                });
            }
        }
        if environment.is_dev() {
            return Ok(());
        }
        if let Some(secret) = &self.jwt_secret {
            check_deployed_secret("SUPABASE_JWT_SECRET", secret, environment)?;
        }
        if self
            .jwks_url
            .as_deref()
            .is_some_and(|url| url.starts_with("http://"))
        {
            return Err(ConfigError {
                variable: "SUPABASE_JWKS_URL".to_owned(),
                reason: format!(
                    "must be https:// when ENVIRONMENT is {environment} (keys fetched over \
                     plain HTTP can be swapped in transit)"
                ),
            });
        }
        if self.jwt_secret.is_some() && self.jwks_url.is_none() && self.issuer.is_none() {
            return Err(ConfigError {
                variable: "JWT_ISSUER".to_owned(),
                reason: format!(
                    "must be set (or SUPABASE_URL) when only SUPABASE_JWT_SECRET is configured \
                     and ENVIRONMENT is {environment}"
                ),
            });
        }
        Ok(())
    }
}

impl CorsConfig {
    /// Reads the allowed origins.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let origins = match env.string("CORS_ORIGINS") {
            Some(raw) => parse_origins(&raw)
                .map_err(|refused| ConfigError::new("CORS_ORIGINS", refused.to_string()))?,
            None => vec!["http://localhost:3000".to_owned()],
        };
        let origin_regex = env
            .string("ALLOWED_ORIGIN_REGEX")
            .map(|pattern| {
                // Anchored so `https://.*\.example\.com` cannot match
                // `https://evil.example.com.attacker.net`.
                Regex::new(&format!("^(?:{pattern})$")).map_err(|error| ConfigError {
                    variable: "ALLOWED_ORIGIN_REGEX".to_owned(),
                    reason: format!("not a valid regular expression: {error}"),
                })
            })
            .transpose()?;
        // A pattern any attacker's origin satisfies is no allow-list at all.
        if let Some(regex) = &origin_regex
            && ["https://attacker.invalid", "http://attacker.invalid:8080"]
                .iter()
                .any(|probe| regex.is_match(probe))
        {
            return Err(ConfigError {
                variable: "ALLOWED_ORIGIN_REGEX".to_owned(),
                reason: "matches any origin; name your own domains".to_owned(),
            });
        }
        Ok(Self {
            origins,
            origin_regex,
        })
    }
}

impl LimitsConfig {
    /// Reads the limits.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let max_concurrent_requests: usize = env.parse_or("MAX_CONCURRENT_REQUESTS", 1024)?;
        if max_concurrent_requests == 0 {
            return Err(ConfigError {
                variable: "MAX_CONCURRENT_REQUESTS".to_owned(),
                reason: "expected a positive integer, got \"0\"".to_owned(),
            });
        }
        let header_read_timeout = positive_millis(env, "HEADER_READ_TIMEOUT_MS", 10_000)?;
        let body_read_timeout = positive_millis(env, "BODY_READ_TIMEOUT_MS", 30_000)?;
        let max_connections: usize = env.parse_or("MAX_CONNECTIONS", 4096)?;
        if max_connections == 0 {
            return Err(ConfigError::new(
                "MAX_CONNECTIONS",
                "expected a positive integer, got \"0\"",
            ));
        }
        let positive = |variable: &str, default: usize| -> Result<usize, ConfigError> {
            let value: usize = env.parse_or(variable, default)?;
            if value == 0 {
                return Err(ConfigError::new(
                    variable,
                    "expected a positive integer, got \"0\"",
                ));
            }
            Ok(value)
        };
        Ok(Self {
            max_connections_per_address: positive("MAX_CONNECTIONS_PER_ADDRESS", 1024)?,
            max_streams_per_address: positive("MAX_STREAMS_PER_ADDRESS", 32)?,
            max_streams_per_caller: positive("MAX_STREAMS_PER_CALLER", 32)?,
            max_streams_per_tenant: positive("MAX_STREAMS_PER_TENANT", 768)?,
            max_reflection_requests: 100,
            max_reflection_bytes: 4 * 1024 * 1024,
            connection_idle_timeout: positive_millis(env, "CONNECTION_IDLE_TIMEOUT_MS", 60_000)?,
            max_body_bytes: env.parse_or("MAX_BODY_BYTES", 1_048_576)?,
            rate_per_second: env.parse_or("RATE_LIMIT_PER_SECOND", DEFAULT_RATE_PER_SECOND)?,
            rate_burst: env.parse_or("RATE_LIMIT_BURST", DEFAULT_RATE_BURST)?,
            address_rate_per_second: env.parse_or(
                "ADDRESS_RATE_LIMIT_PER_SECOND",
                DEFAULT_ADDRESS_RATE_PER_SECOND,
            )?,
            address_rate_burst: env
                .parse_or("ADDRESS_RATE_LIMIT_BURST", DEFAULT_ADDRESS_RATE_BURST)?,
            upstream_timeout: env.millis_or("UPSTREAM_TIMEOUT_MS", 15_000)?,
            max_concurrent_requests,
            trusted_proxies: trusted_proxies(env)?,
            readiness_timeout: Duration::from_secs(2),
            header_read_timeout,
            body_read_timeout,
            max_connections,
            connect_timeout: Duration::from_secs(5),
        })
    }
}

/// A duration in milliseconds that must not be zero (a zero timeout would refuse everything).
fn positive_millis(env: &Env, variable: &str, default: u64) -> Result<Duration, ConfigError> {
    let duration = env.millis_or(variable, default)?;
    if duration.is_zero() {
        return Err(ConfigError::new(
            variable,
            "expected a positive number of milliseconds, got \"0\"",
        ));
    }
    Ok(duration)
}

/// `TRUSTED_PROXIES`, refusing the flag it replaced: a setting that silently stopped
/// working would leave a deployment keyed on its ingress' address.
fn trusted_proxies(env: &Env) -> Result<TrustedProxies, ConfigError> {
    if env.string("TRUST_FORWARDED_FOR").is_some() {
        return Err(ConfigError::new(
            "TRUST_FORWARDED_FOR",
            "replaced by TRUSTED_PROXIES: list the networks of the proxies in front of the \
             gateway (e.g. TRUSTED_PROXIES=10.0.0.0/8)",
        ));
    }
    match env.string("TRUSTED_PROXIES") {
        None => Ok(TrustedProxies::default()),
        Some(raw) => TrustedProxies::parse(&raw)
            .map_err(|refused| ConfigError::new("TRUSTED_PROXIES", refused.to_string())),
    }
}

/// Why `CORS_ORIGINS` was refused.
#[derive(Debug, thiserror::Error)]
enum OriginsRefused {
    /// It starts as a JSON array but is not one of strings.
    #[error("expected a JSON array of strings: {0}")]
    NotStrings(serde_json::Error),
    /// An entry that cannot be an `Origin` header, or `*`.
    #[error("not an origin: {0:?}")]
    NotAnOrigin(String),
}

/// Parses `CORS_ORIGINS`: a JSON array of strings or a comma-separated list.
fn parse_origins(raw: &str) -> Result<Vec<String>, OriginsRefused> {
    let trimmed = raw.trim();
    let origins: Vec<String> = if trimmed.starts_with('[') {
        serde_json::from_str::<Vec<String>>(trimmed).map_err(OriginsRefused::NotStrings)?
    } else {
        trimmed.split(',').map(str::to_owned).collect()
    };
    let origins: Vec<String> = origins
        .into_iter()
        .map(|origin| origin.trim().trim_end_matches('/').to_owned())
        .filter(|origin| !origin.is_empty())
        .collect();
    if let Some(bad) = origins
        .iter()
        .find(|origin| http::HeaderValue::from_str(origin).is_err() || origin.as_str() == "*")
    {
        return Err(OriginsRefused::NotAnOrigin(bad.clone()));
    }
    Ok(origins)
}

fn check_http_url(name: &str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(ConfigError {
            variable: name.to_owned(),
            reason: format!("expected an http:// or https:// URL, got {url:?}"),
        })
    }
}

fn claim_path(env: &Env, name: &str, default: &str) -> Result<String, ConfigError> {
    let path = env.string(name).unwrap_or_else(|| default.to_owned());
    if path.split('.').any(str::is_empty) {
        return Err(ConfigError {
            variable: name.to_owned(),
            reason: format!(
                "expected a dotted claim path like \"app_metadata.role\", got {path:?}"
            ),
        });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_read_from_a_comma_list_or_a_json_array() {
        assert_eq!(
            parse_origins("http://a.test, https://b.test/").ok(),
            Some(vec![
                "http://a.test".to_owned(),
                "https://b.test".to_owned()
            ])
        );
        assert_eq!(
            parse_origins(r#"["http://a.test","https://b.test"]"#).ok(),
            Some(vec![
                "http://a.test".to_owned(),
                "https://b.test".to_owned()
            ])
        );
        assert!(matches!(
            parse_origins("*"),
            Err(OriginsRefused::NotAnOrigin(origin)) if origin == "*"
        ));
        assert!(matches!(
            parse_origins("[1, 2]"),
            Err(OriginsRefused::NotStrings(_))
        ));
    }

    #[test]
    fn trusted_proxies_replace_the_trust_everything_flag() {
        let limits = |pairs: &[(&str, &str)]| {
            LimitsConfig::from_env(&Env::from_pairs(pairs.iter().copied()))
        };
        let error = limits(&[("TRUST_FORWARDED_FOR", "true")]).expect_err("refused");
        assert_eq!(error.variable, "TRUST_FORWARDED_FOR");
        assert!(error.reason.contains("TRUSTED_PROXIES"), "{}", error.reason);
        let error = limits(&[("TRUSTED_PROXIES", "10.0.0.0/8, nonsense")]).expect_err("refused");
        assert_eq!(error.variable, "TRUSTED_PROXIES");
        assert!(error.reason.contains("nonsense"), "{}", error.reason);
        let config = limits(&[("TRUSTED_PROXIES", "10.0.0.0/8")]).expect("valid");
        assert_eq!(
            config.trusted_proxies,
            TrustedProxies::parse("10.0.0.0/8").expect("valid")
        );
        assert_eq!(
            limits(&[("MAX_CONNECTIONS", "0")])
                .expect_err("refused")
                .variable,
            "MAX_CONNECTIONS"
        );
        for variable in [
            "MAX_CONNECTIONS_PER_ADDRESS",
            "MAX_STREAMS_PER_ADDRESS",
            "MAX_STREAMS_PER_CALLER",
            "MAX_STREAMS_PER_TENANT",
            "CONNECTION_IDLE_TIMEOUT_MS",
        ] {
            assert_eq!(
                limits(&[(variable, "0")]).expect_err("refused").variable,
                variable
            );
        }
        assert_eq!(
            limits(&[("BODY_READ_TIMEOUT_MS", "0")])
                .expect_err("refused")
                .variable,
            "BODY_READ_TIMEOUT_MS"
        );
    }

    fn auth(pairs: &[(&str, &str)]) -> AuthConfig {
        AuthConfig::from_env(&Env::from_pairs(pairs.iter().copied()), Environment::Dev)
            .expect("valid settings")
    }

    #[test]
    fn claims_are_required_by_default_outside_dev_and_cannot_be_waived_there() {
        let read = |environment: Environment, pairs: &[(&str, &str)]| {
            AuthConfig::from_env(&Env::from_pairs(pairs.iter().copied()), environment)
        };
        assert!(!read(Environment::Dev, &[]).expect("dev").require_claims);
        assert!(
            read(Environment::Dev, &[("REQUIRE_CLAIMS", "true")])
                .expect("dev")
                .require_claims
        );
        for environment in [Environment::Staging, Environment::Prod] {
            assert!(read(environment, &[]).expect("default").require_claims);
            assert!(
                read(environment, &[("REQUIRE_CLAIMS", "yes")])
                    .expect("on")
                    .require_claims
            );
            let error = read(environment, &[("REQUIRE_CLAIMS", "false")]).expect_err("waived");
            assert_eq!(error.variable, "REQUIRE_CLAIMS");
            assert!(
                error.reason.contains(environment.as_str()),
                "{}",
                error.reason
            );
        }
        let error = read(Environment::Dev, &[("REQUIRE_CLAIMS", "sometimes")]).expect_err("bad");
        assert_eq!(error.variable, "REQUIRE_CLAIMS");
    }

    #[test]
    fn identity_claims_under_user_metadata_are_refused_in_every_environment() {
        for variable in ["TENANT_CLAIM", "ROLE_CLAIM"] {
            let config = auth(&[(variable, "user_metadata.tenant")]);
            let error = config
                .check_for(Environment::Dev)
                .expect_err("user-writable");
            assert_eq!(error.variable, variable);
        }
        assert!(auth(&[]).check_for(Environment::Dev).is_ok());
    }

    #[test]
    fn outside_dev_a_published_secret_plain_http_jwks_and_an_unchecked_issuer_are_refused() {
        let compose_secret = (
            "SUPABASE_JWT_SECRET",
            "compose-dev-jwt-secret-0123456789abcdef",
        );
        let private = (
            "SUPABASE_JWT_SECRET",
            "a-private-secret-nobody-has-seen-before-42",
        );
        let issuer = ("JWT_ISSUER", "https://project.supabase.co/auth/v1");
        let cases: [(&[(&str, &str)], &str); 3] = [
            (&[compose_secret, issuer], "SUPABASE_JWT_SECRET"),
            (
                &[("SUPABASE_JWKS_URL", "http://keys.example/jwks.json")],
                "SUPABASE_JWKS_URL",
            ),
            (&[private], "JWT_ISSUER"),
        ];
        for (pairs, variable) in cases {
            let config = auth(pairs);
            assert!(
                config.check_for(Environment::Dev).is_ok(),
                "{variable} in dev"
            );
            let error = config
                .check_for(Environment::Prod)
                .expect_err("refused in prod");
            assert_eq!(error.variable, variable);
        }
        assert!(
            auth(&[private, issuer])
                .check_for(Environment::Prod)
                .is_ok()
        );
        assert!(
            auth(&[("SUPABASE_URL", "https://project.supabase.co")])
                .check_for(Environment::Prod)
                .is_ok()
        );
    }

    #[test]
    fn an_origin_pattern_that_matches_any_origin_is_refused() {
        for pattern in [".*", "https?://.*", "https://.+"] {
            let env = Env::from_pairs([("ALLOWED_ORIGIN_REGEX", pattern)]);
            let error = CorsConfig::from_env(&env).expect_err("match-all");
            assert_eq!(error.variable, "ALLOWED_ORIGIN_REGEX", "{pattern}");
        }
        let env = Env::from_pairs([("ALLOWED_ORIGIN_REGEX", r"https://.*\.example\.com")]);
        assert!(CorsConfig::from_env(&env).is_ok());
    }
}
