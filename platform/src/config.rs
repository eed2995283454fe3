//! Typed configuration from environment variables.
//!
//! Every setting is read through [`Env`], which is either a snapshot of the process
//! environment or a plain map (tests build one with [`Env::from_pairs`] instead of mutating the
//! process environment, which is racy and `unsafe` in edition 2024). Every failure is a
//! [`ConfigError`] naming the variable, so a bad deployment fails at start-up with a message
//! an operator can act on.
//!
//! For local work, [`load_env_files`] reads `.env` and `.env.<ENVIRONMENT>` into the process
//! environment before the first [`Env::from_process`].

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// A configuration variable that is missing or malformed.
///
/// Displays as `"{variable}: {reason}"`, e.g.
/// `DB_MAX_CONNECTIONS: expected a positive integer, got "abc"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    /// The environment variable (or file) at fault.
    pub variable: String,
    /// What is wrong with it, phrased for an operator.
    pub reason: String,
}

impl ConfigError {
    /// A new error about `variable`.
    pub fn new(variable: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            variable: variable.into(),
            reason: reason.into(),
        }
    }

    /// The error for a variable whose text could not be interpreted; the offending value is
    /// quoted so a typo is visible. Never use it for secrets.
    pub fn invalid(variable: &str, expected: &str, got: &str) -> Self {
        Self::new(variable, format!("expected {expected}, got {got:?}"))
    }
}

/// A sensitive string (password, signing key, database URL with credentials).
///
/// `Debug` and `Display` print `[redacted]`, so a secret can sit in a config struct that gets
/// logged with `?config` without leaking. Read it with [`Secret::expose`] at the one place that
/// needs the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a sensitive value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The sensitive value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A read-only view of environment variables: the process environment, or a given map.
///
/// An empty value counts as unset, so `FOO=` in a `.env` file falls back to the default like
/// an absent `FOO` does.
#[derive(Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl fmt::Debug for Env {
    /// Lists the variable names only: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Env").field("names", &names).finish()
    }
}

impl Env {
    /// A snapshot of the process environment, taken now. Variables whose name or value is not
    /// valid UTF-8 are left out (no Director setting is).
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        Self { vars }
    }

    /// An environment made of exactly these pairs (later pairs win), for tests and tools.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self { vars }
    }

    /// This environment with `pairs` added where a variable is not already set (non-empty),
    /// the same precedence [`load_env_files`] gives the process environment over `.env` files.
    pub fn with_defaults<K, V>(mut self, pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        for (name, value) in pairs {
            let name = name.into();
            if self.string(&name).is_none() {
                self.vars.insert(name, value.into());
            }
        }
        self
    }

    /// This environment with `pairs` set, replacing what was there.
    pub fn with_overrides<K, V>(mut self, pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.vars
            .extend(pairs.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The variable's value, or `None` when it is unset or empty.
    pub fn string(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .filter(|value| !value.is_empty())
            .cloned()
    }

    /// The variable's value; an error naming it when it is unset or empty.
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.string(name)
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    /// The variable parsed with [`FromStr`], or `default` when unset. Surrounding whitespace
    /// is ignored.
    pub fn parse_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        match self.string(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|_| ConfigError::invalid(name, &expected_for::<T>(), &raw)),
        }
    }

    /// A boolean: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case), or `default`.
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.string(name) {
            None => Ok(default),
            Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::invalid(
                    name,
                    "true/false, 1/0 or yes/no",
                    &raw,
                )),
            },
        }
    }

    /// A duration given in whole milliseconds (`DB_ACQUIRE_TIMEOUT_MS=3000`), or `default_ms`.
    pub fn millis_or(&self, name: &str, default_ms: u64) -> Result<Duration, ConfigError> {
        match self.string(name) {
            None => Ok(Duration::from_millis(default_ms)),
            Some(raw) => raw
                .trim()
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| ConfigError::invalid(name, "a duration in whole milliseconds", &raw)),
        }
    }

    /// The variable as a [`Secret`], or `None` when unset or empty.
    pub fn secret(&self, name: &str) -> Option<Secret> {
        self.string(name).map(Secret::new)
    }
}

/// How [`Env::parse_or`] describes what it expected, from the target type.
fn expected_for<T>() -> String {
    let full = std::any::type_name::<T>();
    let short = full.rsplit("::").next().unwrap_or(full);
    match short {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer".to_owned(),
        "NonZeroU8" | "NonZeroU16" | "NonZeroU32" | "NonZeroU64" | "NonZeroUsize" => {
            "a positive integer".to_owned()
        }
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "bool" => "true or false".to_owned(),
        "SocketAddr" => "a socket address such as 0.0.0.0:8080".to_owned(),
        "IpAddr" | "Ipv4Addr" | "Ipv6Addr" => "an IP address".to_owned(),
        "Uri" | "Url" => "a URL".to_owned(),
        other => format!("a valid {other}"),
    }
}

/// Where the process runs. Selects `.env.<ENVIRONMENT>`, the log format default and how
/// strict secrets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Environment {
    /// A developer's machine (`director up`); the default.
    #[default]
    Dev,
    /// A production-like deployment.
    Staging,
    /// Production: secrets are mandatory and error details never reach clients.
    Prod,
}

impl Environment {
    /// Reads `ENVIRONMENT`: `dev` (default; `development`, `local`), `staging` (`stage`),
    /// `prod` (`production`), any case.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        match env.string("ENVIRONMENT") {
            None => Ok(Self::Dev),
            Some(raw) => raw.parse(),
        }
    }

    /// The canonical name: `dev`, `staging` or `prod`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Staging => "staging",
            Self::Prod => "prod",
        }
    }

    /// Whether this is a developer machine, where safe defaults stand in for secrets.
    pub fn is_dev(self) -> bool {
        self == Self::Dev
    }
}

impl FromStr for Environment {
    type Err = ConfigError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "dev" | "development" | "local" => Ok(Self::Dev),
            "staging" | "stage" => Ok(Self::Staging),
            "prod" | "production" => Ok(Self::Prod),
            _ => Err(ConfigError::invalid(
                "ENVIRONMENT",
                "dev, staging or prod",
                raw,
            )),
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines with span context, for a terminal.
    Pretty,
    /// One JSON object per line with the current span's fields (request id, rpc, tenant), for
    /// log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = ConfigError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "pretty" | "text" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            _ => Err(ConfigError::invalid("LOG_FORMAT", "pretty or json", raw)),
        }
    }
}

/// Logging and tracing settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// `service.name` of exported spans, e.g. `director-companies`.
    pub service_name: String,
    /// `LOG_FORMAT`: `pretty` (default in dev) or `json` (default elsewhere).
    pub log_format: LogFormat,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://otel-collector:4317`; traces are exported
    /// only when set.
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    /// Reads `LOG_FORMAT`, `OTEL_EXPORTER_OTLP_ENDPOINT` and `OTEL_SERVICE_NAME` (which
    /// overrides `service_name`, the catalog's name, as the OpenTelemetry convention says).
    /// Sampling follows `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, read by the SDK.
    pub fn from_env(
        env: &Env,
        service_name: &str,
        environment: Environment,
    ) -> Result<Self, ConfigError> {
        let log_format = match env.string("LOG_FORMAT") {
            Some(raw) => raw.parse()?,
            None if environment.is_dev() => LogFormat::Pretty,
            None => LogFormat::Json,
        };
        let otlp_endpoint = env.string("OTEL_EXPORTER_OTLP_ENDPOINT");
        if let Some(endpoint) = &otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConfigError::invalid(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "an http:// or https:// URL",
                endpoint,
            ));
        }
        let service_name = env
            .string("OTEL_SERVICE_NAME")
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| service_name.to_owned());
        Ok(Self {
            service_name,
            log_format,
            otlp_endpoint,
        })
    }
}

/// The settings every Director binary reads.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// `ENVIRONMENT`.
    pub environment: Environment,
    /// `DEBUG`: include error details in internal-error answers. Always false in `prod`.
    pub debug: bool,
    /// Logging and tracing.
    pub telemetry: TelemetryConfig,
}

impl CommonConfig {
    /// Reads `ENVIRONMENT`, `DEBUG` (default false, forced false in prod), and the telemetry
    /// settings (`LOG_FORMAT`, `OTEL_EXPORTER_OTLP_ENDPOINT`) for `service_name`.
    pub fn from_env(env: &Env, service_name: &str) -> Result<Self, ConfigError> {
        let environment = Environment::from_env(env)?;
        let debug = env.bool_or("DEBUG", false)? && environment != Environment::Prod;
        let telemetry = TelemetryConfig::from_env(env, service_name, environment)?;
        Ok(Self {
            environment,
            debug,
            telemetry,
        })
    }
}

/// Loads `.env` and `.env.<ENVIRONMENT>` from the current directory into the process
/// environment; see [`load_env_files_from`] for the precedence.
///
/// Call it first thing in `main`, before any thread is spawned (it sets process variables).
/// Missing files are fine. A malformed file is reported on stderr and otherwise ignored, since
/// logging is not set up yet; use [`try_load_env_files`] to treat it as fatal.
pub fn load_env_files() {
    if let Err(error) = try_load_env_files() {
        eprintln!("warning: ignoring environment files: {error}");
    }
}

/// [`load_env_files`] that reports a malformed file instead of ignoring it. Returns the files
/// that were read.
pub fn try_load_env_files() -> Result<Vec<PathBuf>, ConfigError> {
    let dir = std::env::current_dir()
        .map_err(|e| ConfigError::new(".env", format!("cannot read the current directory: {e}")))?;
    load_env_files_from(&dir)
}

/// Loads `dir/.env.<ENVIRONMENT>` and `dir/.env` into the process environment.
///
/// Precedence, highest first: variables already set in the process, then
/// `.env.<ENVIRONMENT>`, then `.env` — so a shell `export` always wins and the
/// environment-specific file refines the shared one. `ENVIRONMENT` itself comes from the
/// process, else from `.env`, else `dev`; its value is used verbatim in the file name.
/// Returns the files that were read; missing files are skipped.
///
/// This mutates the process environment: call it before spawning threads.
pub fn load_env_files_from(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let files = env_file_paths(dir, &Env::from_process())?;
    // dotenvy never overrides a variable that is already set, so loading the more specific
    // file first gives it precedence over `.env`.
    for path in files.iter().rev() {
        dotenvy::from_path(path).map_err(|e| file_error(path, &e))?;
    }
    Ok(files)
}

/// The variables [`load_env_files_from`] would add on top of `process`, without touching the
/// process environment: what tests and `--help`-style tools use.
pub fn read_env_files(dir: &Path, process: &Env) -> Result<Vec<(String, String)>, ConfigError> {
    let files = env_file_paths(dir, process)?;
    let mut merged: Vec<(String, String)> = Vec::new();
    // `.env` first, then the specific file overwrites; the process wins over both.
    for path in &files {
        for (name, value) in parse_env_file(path)? {
            match merged.iter_mut().find(|(existing, _)| *existing == name) {
                Some(slot) => slot.1 = value,
                None => merged.push((name, value)),
            }
        }
    }
    merged.retain(|(name, _)| !process.vars.contains_key(name));
    Ok(merged)
}

/// The existing env files under `dir`, general first: `.env`, then `.env.<ENVIRONMENT>`.
fn env_file_paths(dir: &Path, process: &Env) -> Result<Vec<PathBuf>, ConfigError> {
    let general = dir.join(".env");
    let mut files = Vec::new();
    let mut environment = process.string("ENVIRONMENT");
    if general.is_file() {
        if environment.is_none() {
            environment = parse_env_file(&general)?
                .into_iter()
                .rev()
                .find(|(name, value)| name == "ENVIRONMENT" && !value.is_empty())
                .map(|(_, value)| value);
        }
        files.push(general);
    }
    let environment = environment.unwrap_or_else(|| Environment::Dev.as_str().to_owned());
    let specific = dir.join(format!(".env.{}", environment.trim()));
    if specific.is_file() {
        files.push(specific);
    }
    Ok(files)
}

fn parse_env_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    dotenvy::from_path_iter(path)
        .map_err(|e| file_error(path, &e))?
        .map(|item| item.map_err(|e| file_error(path, &e)))
        .collect()
}

fn file_error(path: &Path, error: &dotenvy::Error) -> ConfigError {
    ConfigError::new(path.display().to_string(), error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_unset() {
        let env = Env::from_pairs([("A", ""), ("B", "x")]);
        assert_eq!(env.string("A"), None);
        assert_eq!(env.string("B").as_deref(), Some("x"));
        assert_eq!(env.parse_or("A", 7_u32), Ok(7));
    }

    #[test]
    fn parse_errors_quote_the_value_and_describe_the_type() {
        let env = Env::from_pairs([("PORT", "eighty")]);
        let error = env.parse_or("PORT", 80_u16).expect_err("not a number");
        assert_eq!(
            error.to_string(),
            "PORT: expected a non-negative integer, got \"eighty\""
        );
    }

    #[test]
    fn booleans_accept_the_usual_spellings() {
        let env = Env::from_pairs([("A", "YES"), ("B", "0"), ("C", "off"), ("D", "maybe")]);
        assert_eq!(env.bool_or("A", false), Ok(true));
        assert_eq!(env.bool_or("B", true), Ok(false));
        assert_eq!(env.bool_or("C", true), Ok(false));
        assert_eq!(env.bool_or("Z", true), Ok(true));
        assert!(env.bool_or("D", true).is_err());
    }

    #[test]
    fn environment_accepts_aliases_and_rejects_the_unknown() {
        let parse = |v: &str| Environment::from_env(&Env::from_pairs([("ENVIRONMENT", v)]));
        assert_eq!(parse("production"), Ok(Environment::Prod));
        assert_eq!(parse("Development"), Ok(Environment::Dev));
        assert_eq!(parse("staging"), Ok(Environment::Staging));
        assert_eq!(Environment::from_env(&Env::default()), Ok(Environment::Dev));
        let error = parse("qa").expect_err("unknown environment");
        assert_eq!(error.variable, "ENVIRONMENT");
    }
}
