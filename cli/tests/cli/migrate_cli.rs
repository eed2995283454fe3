//! `director migrate` creates every service's database and is idempotent.

#![allow(clippy::unwrap_used)]

use crate::common;

use director_platform::catalog;
use director_store::db::{database_url_for, with_login};

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

/// Runs `director migrate --service companies` with `env`.
async fn migrate_companies(env: &[(&str, &str)]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_director"))
        .args(["migrate", "--service", "companies"])
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap()
}

async fn drop_database_and_role(admin: &sqlx::PgPool, database: &str, role: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
    )))
    .execute(admin)
    .await
    .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP ROLE IF EXISTS \"{role}\""
    )))
    .execute(admin)
    .await
    .unwrap();
}

#[tokio::test]
async fn director_migrate_makes_the_services_user_a_least_privilege_login_role() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let database = format!("test_migrate_role_{run}");
    let role = format!("test_service_{run}");
    let service_url = with_login(
        &database_url_for(&common::server_url(), &database).unwrap(),
        &role,
        "a-private-password",
    )
    .unwrap();
    let admin = sqlx::PgPool::connect(&common::server_url()).await.unwrap();

    for run in ["first", "second"] {
        let output = migrate_companies(&[
            ("MIGRATION_DATABASE_URL", common::server_url().as_str()),
            ("COMPANIES_DATABASE_URL", service_url.as_str()),
        ])
        .await;
        assert!(
            output.status.success(),
            "{run} run failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&format!("services log in as {role}")),
            "{stdout}"
        );
    }

    let (superuser, bypassrls, createdb, createrole, login, app_member, owns): (
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
        bool,
    ) = sqlx::query_as(
        "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolcanlogin, \
                pg_has_role(rolname, 'director_app', 'MEMBER'), \
                EXISTS (SELECT 1 FROM pg_shdepend WHERE refobjid = r.oid AND deptype = 'o') \
         FROM pg_roles r WHERE rolname = $1",
    )
    .bind(&role)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert!(!superuser && !bypassrls && !createdb && !createrole);
    assert!(login && app_member && !owns);

    // The services' URL works, and the service role sees no rows outside a tenant.
    let service = sqlx::PgPool::connect(&service_url).await.unwrap();
    let (user, companies): (String, i64) =
        sqlx::query_as("SELECT current_user::text, (SELECT count(*) FROM companies)")
            .fetch_one(&service)
            .await
            .unwrap();
    assert_eq!((user.as_str(), companies), (role.as_str(), 0));
    let refused = sqlx::query("CREATE TABLE intruder (id int)")
        .execute(&service)
        .await;
    assert!(refused.is_err(), "the service role may create tables");
    service.close().await;

    drop_database_and_role(&admin, &database, &role).await;
}

#[tokio::test]
async fn director_migrate_refuses_a_services_url_logging_in_as_a_superuser() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let database = format!("test_migrate_super_{run}");
    let role = format!("test_super_{run}");
    let admin = sqlx::PgPool::connect(&common::server_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE \"{role}\" LOGIN SUPERUSER"
    )))
    .execute(&admin)
    .await
    .unwrap();
    let service_url = with_login(
        &database_url_for(&common::server_url(), &database).unwrap(),
        &role,
        "whatever",
    )
    .unwrap();

    let output = migrate_companies(&[
        ("MIGRATION_DATABASE_URL", common::server_url().as_str()),
        ("COMPANIES_DATABASE_URL", service_url.as_str()),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a superuser service role was accepted"
    );
    assert!(
        stderr.contains(&role) && stderr.contains("is a superuser"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("whatever"),
        "the password was printed: {stderr}"
    );

    drop_database_and_role(&admin, &database, &role).await;
}
