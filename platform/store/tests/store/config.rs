//! Bad database settings are reported naming their variable; the password never prints.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use director_platform::config::Env;
use director_store::db::DatabaseConfig;

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
