//! The pool starts without a database, fails fast when there is none, and applies its
//! settings when there is one; bad settings name their variable ([`settings`]).
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{TestDb, dead_database_config};
use director_store::db::{connect, connect_lazy, ping};
use director_store::error::{DbFailure, classify, status_from_sqlx};
use tonic::Code;

#[tokio::test]
async fn a_lazy_pool_to_a_dead_port_builds_and_its_first_query_fails_fast_as_unavailable() {
    let config = dead_database_config("1000");

    let pool = connect_lazy(&config).expect("building the pool must not need the database");

    let started = Instant::now();
    let error = sqlx::query("SELECT 1").execute(&pool).await.unwrap_err();
    let elapsed = started.elapsed();

    assert!(
        elapsed < Duration::from_secs(5),
        "the first query took {elapsed:?} to fail"
    );
    assert_eq!(classify(&error), DbFailure::Unavailable, "{error:?}");
    let status = status_from_sqlx(&error);
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "database unavailable");
}

#[tokio::test]
async fn ping_is_false_for_a_dead_database_and_true_for_a_live_one() {
    let dead = connect_lazy(&dead_database_config("300")).unwrap();
    assert!(!ping(&dead).await);

    let db = TestDb::create().await;
    let live = connect_lazy(&db.config()).unwrap();
    assert!(ping(&live).await);
    live.close().await;
    db.drop().await;
}

#[tokio::test]
async fn an_eager_connect_to_a_dead_database_gives_up_after_the_connect_timeout() {
    let started = Instant::now();
    let error = connect(&dead_database_config("500")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(4));
    assert_eq!(classify(&error), DbFailure::Unavailable);
}

#[tokio::test]
async fn connections_carry_the_application_name_and_statement_timeout() {
    let db = TestDb::create().await;
    let config = db.config_with(&[("DB_STATEMENT_TIMEOUT_MS", "1234")]);
    assert_eq!(config.application_name, "director-platform-test");
    let pool = connect_lazy(&config).unwrap();

    let (application_name, statement_timeout): (String, String) = sqlx::query_as(
        "SELECT current_setting('application_name'), current_setting('statement_timeout')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(application_name, "director-platform-test");
    assert_eq!(statement_timeout, "1234ms");

    pool.close().await;
    db.drop().await;
}

/// Pins down the sqlx 0.9 behaviour the pgbouncer mode relies on (see `db` module docs): with
/// the statement cache disabled, a default (persistent) query still leaves a named prepared
/// statement on the server, and only `.persistent(false)` queries leave none.
#[tokio::test]
async fn in_pgbouncer_mode_only_non_persistent_queries_avoid_named_prepared_statements() {
    let db = TestDb::create().await;
    let config = db.config_with(&[
        ("DB_PGBOUNCER_TRANSACTION_MODE", "true"),
        ("PLATFORM_TEST_SESSION_DATABASE_URL", &db.url),
    ]);
    assert!(!config.persistent_statements());
    let pool = connect_lazy(&config).unwrap();
    let mut conn = pool.acquire().await.unwrap();

    // Counted through the simple protocol so the count itself prepares nothing.
    async fn named_statements(conn: &mut sqlx::PgConnection) -> i64 {
        use sqlx::Row as _;
        let rows = sqlx::raw_sql("SELECT count(*) FROM pg_prepared_statements")
            .fetch_all(conn)
            .await
            .unwrap();
        rows[0].get(0)
    }

    for n in 0..3 {
        let echoed: i32 = sqlx::query_scalar("SELECT $1::int4")
            .bind(n)
            .persistent(config.persistent_statements())
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!(echoed, n);
    }
    assert_eq!(named_statements(&mut conn).await, 0);

    let _: i32 = sqlx::query_scalar("SELECT $1::int4")
        .bind(7)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        named_statements(&mut conn).await,
        1,
        "sqlx no longer names persistent statements with the cache off: revisit db.rs docs"
    );

    drop(conn);
    pool.close().await;
    db.drop().await;
}

/// Bad database settings are reported naming their variable; the password never prints.
mod settings {
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
}
