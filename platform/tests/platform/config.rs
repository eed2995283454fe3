//! Bad configuration is reported naming its variable; secrets never print.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use director_platform::config::{CommonConfig, Env, Environment, Secret};
use director_platform::db::DatabaseConfig;
use director_platform::identity::{DEV_INTERNAL_TOKEN_SECRET, InternalTokenConfig};
use director_platform::telemetry::{LogFormat, TelemetryConfig};

const LONG_SECRET: &str = "a-production-secret-that-is-long-enough-1234";

#[test]
fn a_non_numeric_pool_size_names_db_max_connections() {
    let env = Env::from_pairs([("DB_MAX_CONNECTIONS", "abc")]);
    let error = DatabaseConfig::from_env(&env, "companies").unwrap_err();
    assert_eq!(error.variable, "DB_MAX_CONNECTIONS");
    assert_eq!(
        error.to_string(),
        "DB_MAX_CONNECTIONS: expected a positive integer, got \"abc\""
    );
}

#[test]
fn a_zero_pool_size_is_rejected() {
    let env = Env::from_pairs([("DB_MAX_CONNECTIONS", "0")]);
    let error = DatabaseConfig::from_env(&env, "companies").unwrap_err();
    assert!(error.to_string().contains("DB_MAX_CONNECTIONS"));
}

#[test]
fn a_bad_timeout_names_its_variable() {
    let env = Env::from_pairs([("DB_ACQUIRE_TIMEOUT_MS", "3s")]);
    let error = DatabaseConfig::from_env(&env, "companies").unwrap_err();
    assert_eq!(error.variable, "DB_ACQUIRE_TIMEOUT_MS");
    assert!(error.to_string().contains("milliseconds"), "{error}");
}

#[test]
fn a_database_url_with_another_scheme_names_the_variable_it_came_from() {
    let env = Env::from_pairs([("DATABASE_URL", "mysql://root@db:3306/app")]);
    let error = DatabaseConfig::from_env(&env, "companies").unwrap_err();
    assert_eq!(error.variable, "DATABASE_URL");
    assert!(error.reason.contains("postgres://"), "{error}");

    let env = Env::from_pairs([("COMPANIES_DATABASE_URL", "localhost:5432/x")]);
    let error = DatabaseConfig::from_env(&env, "companies").unwrap_err();
    assert_eq!(error.variable, "COMPANIES_DATABASE_URL");
}

#[test]
fn the_database_url_defaults_to_a_per_service_database_on_the_shared_server() {
    let config = DatabaseConfig::from_env(&Env::default(), "companies").unwrap();
    assert_eq!(
        config.url.expose(),
        "postgres://postgres@localhost:5432/director_companies?sslmode=disable"
    );
    assert_eq!(config.max_connections, 10);
    assert_eq!(config.connect_timeout, Duration::from_millis(5000));
    assert_eq!(config.acquire_timeout, Duration::from_millis(3000));
    assert_eq!(config.statement_timeout, Duration::from_millis(15000));
    assert_eq!(config.application_name, "director-companies");
    assert!(!config.pgbouncer_transaction_mode);
    assert_eq!(config.app_role, "director_app");

    let env = Env::from_pairs([(
        "DATABASE_URL",
        "postgresql://app:pw@db.internal:6432/postgres?sslmode=require",
    )]);
    let config = DatabaseConfig::from_env(&env, "integrations").unwrap();
    assert_eq!(
        config.url.expose(),
        "postgresql://app:pw@db.internal:6432/director_integrations?sslmode=require"
    );
    assert_eq!(
        config.database_name().as_deref(),
        Some("director_integrations")
    );
}

#[test]
fn a_service_specific_database_url_is_used_verbatim() {
    let env = Env::from_pairs([
        ("DATABASE_URL", "postgres://shared/ignored"),
        (
            "DISPATCH_DATABASE_URL",
            "postgres://u@elsewhere:5433/custom",
        ),
        ("DB_PGBOUNCER_TRANSACTION_MODE", "1"),
        (
            "DISPATCH_SESSION_DATABASE_URL",
            "postgres://u@direct:5432/custom",
        ),
        ("DB_APP_ROLE", "dispatch_app"),
    ]);
    let config = DatabaseConfig::from_env(&env, "dispatch").unwrap();
    assert_eq!(config.url.expose(), "postgres://u@elsewhere:5433/custom");
    assert!(config.pgbouncer_transaction_mode);
    assert_eq!(config.app_role, "dispatch_app");
}

/// The session pool (issue 20): `<SERVICE>_SESSION_DATABASE_URL` verbatim, else
/// `SESSION_DATABASE_URL` pointed at the service's database, else none (sessions share the
/// request pool); never in pgbouncer's transaction mode itself.
#[test]
fn the_session_url_comes_from_the_service_variable_then_the_server_one() {
    let shared = Env::from_pairs([
        (
            "DATABASE_URL",
            "postgres://svc:pw@pgbouncer:6432?sslmode=disable",
        ),
        (
            "SESSION_DATABASE_URL",
            "postgres://svc:pw@postgres:5432?sslmode=disable",
        ),
        ("DB_PGBOUNCER_TRANSACTION_MODE", "true"),
        ("DB_MAX_CONNECTIONS", "20"),
        ("DB_SESSION_MAX_CONNECTIONS", "3"),
    ]);
    let config = DatabaseConfig::from_env(&shared, "dispatch").unwrap();
    assert_eq!(
        config.url.expose(),
        "postgres://svc:pw@pgbouncer:6432/director_dispatch?sslmode=disable"
    );
    let session = config.session().unwrap();
    assert_eq!(
        session.url.expose(),
        "postgres://svc:pw@postgres:5432/director_dispatch?sslmode=disable"
    );
    assert!(!session.pgbouncer_transaction_mode);
    assert!(session.persistent_statements());
    assert_eq!(session.max_connections, 3);
    assert_eq!(session.application_name, "director-dispatch-session");
    assert!(session.session().is_none());

    let own = shared.clone().with_overrides([(
        "DISPATCH_SESSION_DATABASE_URL",
        "postgres://svc:pw@direct:5432/dispatch_db",
    )]);
    let config = DatabaseConfig::from_env(&own, "dispatch").unwrap();
    assert_eq!(
        config.session().unwrap().url.expose(),
        "postgres://svc:pw@direct:5432/dispatch_db"
    );

    let bad = shared.with_overrides([("DISPATCH_SESSION_DATABASE_URL", "direct:5432/x")]);
    let error = DatabaseConfig::from_env(&bad, "dispatch").unwrap_err();
    assert_eq!(error.variable, "DISPATCH_SESSION_DATABASE_URL");

    let direct = Env::from_pairs([("DATABASE_URL", "postgres://svc@postgres:5432")]);
    let config = DatabaseConfig::from_env(&direct, "dispatch").unwrap();
    assert!(config.session_url.is_none());
    assert!(
        config.session().is_none(),
        "sessions share the request pool"
    );
}

/// Behind pgbouncer in transaction mode without a session URL, LISTEN and the job worker
/// would go through pgbouncer and lose their notifications silently: refused at start-up.
#[test]
fn pgbouncer_mode_without_a_session_url_is_refused() {
    let env = Env::from_pairs([
        ("DATABASE_URL", "postgres://svc:pw@pgbouncer:6432"),
        ("DB_PGBOUNCER_TRANSACTION_MODE", "true"),
    ]);
    let error = DatabaseConfig::from_env(&env, "integrations").unwrap_err();
    assert_eq!(
        error.variable,
        "INTEGRATIONS_SESSION_DATABASE_URL or SESSION_DATABASE_URL"
    );
    assert!(error.reason.contains("LISTEN"), "{error}");
    assert!(!error.to_string().contains("pw"), "{error}");
}

#[test]
fn the_database_password_is_redacted_in_debug_output() {
    let env = Env::from_pairs([(
        "DATABASE_URL",
        "postgres://app:hunter2-db-password@db:5432/postgres",
    )]);
    let config = DatabaseConfig::from_env(&env, "companies").unwrap();
    let debug = format!("{config:?}");
    assert!(!debug.contains("hunter2-db-password"), "{debug}");
    assert!(debug.contains("[redacted]"));
    assert_eq!(
        config.redacted_url(),
        "postgres://app:***@db:5432/director_companies"
    );
}

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
