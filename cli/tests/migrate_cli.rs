//! `director migrate` creates every service's database and is idempotent.

#![allow(clippy::unwrap_used)]

mod common;

use director_platform::db::database_url_for;

#[tokio::test]
async fn director_migrate_twice_succeeds_both_times_and_leaves_three_migrated_databases() {
    let prefix = format!("test_migrate_{}", uuid::Uuid::new_v4().simple());
    let services = ["companies", "dispatch", "integrations"];
    let env: Vec<(String, String)> = services
        .iter()
        .map(|service| {
            (
                format!("{}_DATABASE_URL", service.to_uppercase()),
                database_url_for(&common::server_url(), &format!("{prefix}_{service}")).unwrap(),
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
            3,
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
            .map(|service| format!("{prefix}_{service}"))
            .to_vec()
    );

    let companies = sqlx::PgPool::connect(&env[0].1).await.unwrap();
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('companies')::text")
        .fetch_one(&companies)
        .await
        .unwrap();
    assert_eq!(table.as_deref(), Some("companies"));
    companies.close().await;

    for name in names {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE \"{name}\" WITH (FORCE)"
        )))
        .execute(&admin)
        .await
        .unwrap();
    }
}
