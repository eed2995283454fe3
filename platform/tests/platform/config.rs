//! Bad configuration is reported naming its variable; secrets never print.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use director_platform::config::{CommonConfig, Env, Environment, Secret};
use director_platform::identity::{DEV_INTERNAL_TOKEN_SECRET, InternalTokenConfig};
use director_platform::telemetry::{LogFormat, TelemetryConfig};

const LONG_SECRET: &str = "a-production-secret-that-is-long-enough-1234";

#[test]
fn the_internal_token_secret_is_redacted_in_debug_output() {
    let env = Env::from_pairs([("INTERNAL_TOKEN_SECRET", LONG_SECRET)]);
    let config = InternalTokenConfig::from_env(&env, Environment::Prod).unwrap();
    assert_eq!(config.secret.expose(), LONG_SECRET);
    let debug = format!("{config:?}");
    assert!(!debug.contains(LONG_SECRET), "{debug}");
    let tokens_debug = format!("{:?}", config.tokens());
    assert!(!tokens_debug.contains(LONG_SECRET), "{tokens_debug}");
    assert_eq!(format!("{}", Secret::from(LONG_SECRET)), "[redacted]");
}

#[test]
fn the_internal_token_secret_is_required_outside_dev() {
    for environment in [Environment::Staging, Environment::Prod] {
        let error = InternalTokenConfig::from_env(&Env::default(), environment).unwrap_err();
        assert_eq!(error.variable, "INTERNAL_TOKEN_SECRET");
    }
}

#[test]
fn a_short_internal_token_secret_is_rejected_everywhere() {
    let env = Env::from_pairs([("INTERNAL_TOKEN_SECRET", "too-short")]);
    for environment in [Environment::Dev, Environment::Prod] {
        let error = InternalTokenConfig::from_env(&env, environment).unwrap_err();
        assert_eq!(error.variable, "INTERNAL_TOKEN_SECRET");
        assert!(error.reason.contains("32"), "{error}");
        assert!(
            !error.to_string().contains("too-short"),
            "the secret leaked: {error}"
        );
    }
}

#[test]
fn dev_falls_back_to_the_documented_development_secret() {
    let config = InternalTokenConfig::from_env(&Env::default(), Environment::Dev).unwrap();
    assert_eq!(config.secret.expose(), DEV_INTERNAL_TOKEN_SECRET);
    assert!(DEV_INTERNAL_TOKEN_SECRET.len() >= 32);
    assert_eq!(config.ttl, Duration::from_secs(60));

    let env = Env::from_pairs([("INTERNAL_TOKEN_TTL_MS", "soon")]);
    let error = InternalTokenConfig::from_env(&env, Environment::Dev).unwrap_err();
    assert_eq!(error.variable, "INTERNAL_TOKEN_TTL_MS");
}

#[test]
fn debug_is_never_on_in_prod_and_log_format_follows_the_environment() {
    let env = Env::from_pairs([("ENVIRONMENT", "production"), ("DEBUG", "true")]);
    let config = CommonConfig::from_env(&env, "director-companies").unwrap();
    assert_eq!(config.environment, Environment::Prod);
    assert!(!config.debug);
    assert_eq!(config.telemetry.log_format, LogFormat::Json);
    assert_eq!(config.telemetry.service_name, "director-companies");

    let env = Env::from_pairs([("DEBUG", "yes")]);
    let config = CommonConfig::from_env(&env, "director-companies").unwrap();
    assert!(config.debug);
    assert_eq!(config.telemetry.log_format, LogFormat::Pretty);
    assert_eq!(config.telemetry.otlp_endpoint, None);
}

#[test]
fn bad_common_settings_name_their_variables() {
    let cases = [
        ("ENVIRONMENT", "qa"),
        ("DEBUG", "sometimes"),
        ("LOG_FORMAT", "xml"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317"),
    ];
    for (variable, value) in cases {
        let env = Env::from_pairs([(variable, value)]);
        let error = CommonConfig::from_env(&env, "svc").unwrap_err();
        assert_eq!(error.variable, variable);
        assert!(error.to_string().starts_with(&format!("{variable}: ")));
    }
    let env = Env::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]);
    let telemetry = TelemetryConfig::from_env(&env, "svc", Environment::Dev).unwrap();
    assert_eq!(
        telemetry.otlp_endpoint.as_deref(),
        Some("http://collector:4317")
    );
    assert_eq!(
        telemetry.service_name, "svc",
        "the catalog's name by default"
    );
    let env = Env::from_pairs([("OTEL_SERVICE_NAME", "companies-eu")]);
    let telemetry = TelemetryConfig::from_env(&env, "svc", Environment::Dev).unwrap();
    assert_eq!(telemetry.service_name, "companies-eu");
}

#[test]
fn required_variables_report_that_they_are_missing() {
    let env = Env::from_pairs([("EMPTY", "")]);
    let error = env.required("EMPTY").unwrap_err();
    assert_eq!(error.to_string(), "EMPTY: is required but not set");
    assert_eq!(env.secret("EMPTY"), None);
}

#[test]
fn outside_dev_the_internal_secret_of_the_compose_file_is_refused() {
    let env = Env::from_pairs([(
        "INTERNAL_TOKEN_SECRET",
        "compose-dev-internal-secret-0123456789abcdef",
    )]);
    let error = InternalTokenConfig::from_env(&env, Environment::Prod).unwrap_err();
    assert!(
        error.to_string().contains("INTERNAL_TOKEN_SECRET"),
        "{error}"
    );
    assert!(error.to_string().contains("published"), "{error}");
    assert!(InternalTokenConfig::from_env(&env, Environment::Dev).is_ok());
}
