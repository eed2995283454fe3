//! A fresh PostgreSQL database per test, on the server at `DATABASE_URL`
//! (default `postgres://postgres@localhost:5432`, a superuser with trust auth).
#![allow(dead_code, clippy::unwrap_used)]

use director_platform::config::Env;
use director_store::db::{DEFAULT_DATABASE_URL, DatabaseConfig, database_url_for};
use sqlx::{AssertSqlSafe, PgPool};

/// A randomly named database, dropped by [`TestDb::drop`].
pub struct TestDb {
    pub name: String,
    pub url: String,
    server: String,
}

pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned())
}

async fn admin_pool(server: &str) -> PgPool {
    PgPool::connect(&database_url_for(server, "postgres").unwrap())
        .await
        .expect("the test PostgreSQL server must be reachable at DATABASE_URL")
}

impl TestDb {
    pub async fn create() -> Self {
        let server = server_url();
        let name = format!("platform_test_{}", uuid::Uuid::new_v4().simple());
        let admin = admin_pool(&server).await;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let url = database_url_for(&server, &name).unwrap();
        Self { name, url, server }
    }

    /// A pool logged in as the (superuser) test user.
    pub async fn superuser_pool(&self) -> PgPool {
        PgPool::connect(&self.url).await.unwrap()
    }

    /// Platform settings pointing at this database, plus `extra` variables.
    pub fn config_with(&self, extra: &[(&str, &str)]) -> DatabaseConfig {
        let mut pairs = vec![("PLATFORM_TEST_DATABASE_URL", self.url.as_str())];
        pairs.extend_from_slice(extra);
        DatabaseConfig::from_env(&Env::from_pairs(pairs), "platform-test").unwrap()
    }

    pub fn config(&self) -> DatabaseConfig {
        self.config_with(&[])
    }

    pub async fn drop(self) {
        let admin = admin_pool(&self.server).await;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        )))
        .execute(&admin)
        .await
        .unwrap();
        admin.close().await;
    }
}

/// Settings for a pool aimed at a port where nothing listens.
pub fn dead_database_config(acquire_timeout_ms: &str) -> DatabaseConfig {
    DatabaseConfig::from_env(
        &Env::from_pairs([
            (
                "DEAD_DATABASE_URL",
                "postgres://postgres@127.0.0.1:1/nothing",
            ),
            ("DB_ACQUIRE_TIMEOUT_MS", acquire_timeout_ms),
            ("DB_CONNECT_TIMEOUT_MS", acquire_timeout_ms),
        ]),
        "dead",
    )
    .unwrap()
}

/// Creates the application role; roles are cluster-wide and other tests create it
/// concurrently, so a creation race counts as success.
pub const CREATE_APP_ROLE: &str = "DO $$
BEGIN
    CREATE ROLE director_app NOLOGIN;
EXCEPTION
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;";

/// A tenant-owned table under row-level security, the shape every service table has.
pub const NOTES_SCHEMA: &str = "
CREATE TABLE notes (
    id serial PRIMARY KEY,
    tenant_id text NOT NULL,
    body text NOT NULL
);
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE notes FORCE ROW LEVEL SECURITY;
CREATE POLICY notes_tenant ON notes
    USING (tenant_id = current_setting('app.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('app.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO director_app;
GRANT USAGE ON SEQUENCE notes_id_seq TO director_app;
";

impl TestDb {
    /// The application role and the `notes` table with `seed` rows (tenant, body), created as
    /// the superuser, whose pool is returned.
    pub async fn with_notes(&self, seed: &[(&str, &str)]) -> PgPool {
        let superuser = self.superuser_pool().await;
        sqlx::raw_sql(CREATE_APP_ROLE)
            .execute(&superuser)
            .await
            .unwrap();
        sqlx::raw_sql(NOTES_SCHEMA)
            .execute(&superuser)
            .await
            .unwrap();
        for (tenant, body) in seed {
            sqlx::query("INSERT INTO notes (tenant_id, body) VALUES ($1, $2)")
                .bind(tenant)
                .bind(body)
                .execute(&superuser)
                .await
                .unwrap();
        }
        superuser
    }
}
