//! `director migrate` creates every service's database and is idempotent.

#![allow(clippy::unwrap_used)]

mod common;

use director_platform::catalog;
use director_platform::db::database_url_for;

#[tokio::test]
async fn director_migrate_twice_succeeds_both_times_and_leaves_every_service_database_migrated() {
    let prefix = format!("test_migrate_{}", uuid::Uuid::new_v4().simple());
    let services: Vec<&str> = catalog::SERVICES.iter().map(|spec| spec.name).collect();
    let env: Vec<(String, String)> = catalog::SERVICES
        .iter()
        .map(|spec| {
            (
                format!("{}_DATABASE_URL", spec.env_prefix()),
                database_url_for(&common::server_url(), &format!("{prefix}_{}", spec.name))
                    .unwrap(),
            )
        })
        .collect();

    for run in ["first", "second"] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_director"))
            .arg("migrate")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{run} run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let expected_state = if run == "first" { "created" } else { "exists" };
        assert_eq!(
            stdout.matches(expected_state).count(),
            services.len(),
            "{run} run said:\n{stdout}"
        );
    }

    let admin = sqlx::PgPool::connect(&common::server_url()).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY datname",
    )
    .bind(format!("{prefix}%"))
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(
        names,
        services
            .iter()
            .map(|service| format!("{prefix}_{service}"))
            .collect::<Vec<_>>()
    );

    // Each database holds its own service's tables.
    for ((_, url), table) in env.iter().zip(["companies", "tasks"]) {
        let database = sqlx::PgPool::connect(url).await.unwrap();
        let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(table)
            .fetch_one(&database)
            .await
            .unwrap();
        assert_eq!(found.as_deref(), Some(table));
        database.close().await;
    }

    for name in names {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE \"{name}\" WITH (FORCE)"
        )))
        .execute(&admin)
        .await
        .unwrap();
    }
}
