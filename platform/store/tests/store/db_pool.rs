//! The pool starts without a database, fails fast when there is none, and applies its
//! settings when there is one.
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
