//! `spawn_stack`: the whole development stack (what `director up` runs) on random ports with a
//! fresh companies database, plus tokens and an HTTP client to drive it.

#![allow(dead_code, clippy::unwrap_used)]

pub mod sse;

use std::path::Path;
use std::time::Duration;

use director::stack::{self, RunningStack};
use director_fakes::{FakeAddrs, FakeThirdParties};
use director_platform::catalog;
use director_platform::config::Env;
use director_platform::identity::Role;
use director_platform::identity::user_token::{UserTokenClaims, mint_hs256};
use director_store::db::{database_url_for, with_login};
use director_store::migrate::create_and_migrate;
use director_store::roles::{DEV_SERVICE_PASSWORD, SERVICE_ROLE, ensure_service_login};
use director_store::testing::pgbouncer::PgBouncer;
use tokio_util::sync::CancellationToken;

pub const JWT_SECRET: &str = "e2e-supabase-jwt-secret-0123456789abcdef";
pub const INTERNAL_SECRET: &str = "e2e-internal-token-secret-0123456789abcdef";

#[derive(Debug)]
pub struct TestStack {
    pub stack: RunningStack,
    pub base: String,
    pub http: reqwest::Client,
    pub env: Vec<(String, String)>,
}

pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@localhost:5432".into())
}

pub async fn spawn_stack() -> TestStack {
    spawn_stack_with(&[]).await
}

/// Starts the stack; `extra` settings override the defaults below.
pub async fn spawn_stack_with(extra: &[(&str, &str)]) -> TestStack {
    start_stack(extra, None).await
}

/// Starts the stack with every service's request traffic through `bouncer` (pgbouncer in
/// transaction mode, `DB_PGBOUNCER_TRANSACTION_MODE`) and its sessions — LISTEN, the job
/// workers — on PostgreSQL directly (`<SERVICE>_SESSION_DATABASE_URL`); `extra` as
/// [`spawn_stack_with`]'s. `bouncer` must list [`SERVICE_ROLE`] with
/// [`DEV_SERVICE_PASSWORD`].
pub async fn spawn_stack_behind_pgbouncer(
    extra: &[(&str, &str)],
    bouncer: &PgBouncer,
) -> TestStack {
    start_stack(extra, Some(bouncer)).await
}

async fn start_stack(extra: &[(&str, &str)], bouncer: Option<&PgBouncer>) -> TestStack {
    let env = stack_env(extra, bouncer).await;
    let stack = stack::start(&Env::from_pairs(env.clone()), CancellationToken::new())
        .await
        .unwrap();
    let base = stack.gateway_url();
    TestStack {
        stack,
        base,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        env,
    }
}

/// The settings of a test stack: every service on a fresh, migrated database of its own and
/// a random loopback port, test secrets, generous rate limits; `extra` overrides them. With
/// `bouncer`, request traffic goes through it and sessions straight to PostgreSQL.
pub async fn stack_env(
    extra: &[(&str, &str)],
    bouncer: Option<&PgBouncer>,
) -> Vec<(String, String)> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let mut env: Vec<(String, String)> = Vec::new();
    // Every service of the catalog on a fresh database of its own and a random port,
    // migrated as the owner and logged in to as the least-privilege services' role.
    for spec in catalog::SERVICES {
        let name = format!("test_e2e_{}_{run}", spec.name);
        let owner_url = database_url_for(&server_url(), &name).unwrap();
        create_and_migrate(&owner_url, &migrations, spec.name)
            .await
            .unwrap();
        let service_url = with_login(&owner_url, SERVICE_ROLE, DEV_SERVICE_PASSWORD).unwrap();
        ensure_service_login(&owner_url, &service_url)
            .await
            .unwrap();
        let prefix = spec.env_prefix();
        match bouncer {
            Some(bouncer) => {
                env.push((
                    format!("{prefix}_DATABASE_URL"),
                    bouncer.url_for(&service_url),
                ));
                env.push((format!("{prefix}_SESSION_DATABASE_URL"), service_url));
            }
            None => env.push((format!("{prefix}_DATABASE_URL"), service_url)),
        }
        env.push((spec.addr_var(), "127.0.0.1:0".to_owned()));
    }
    env.extend(
        [
            ("GATEWAY_ADDR", "127.0.0.1:0"),
            ("ADMIN_ADDR", "127.0.0.1:0"),
            ("SUPABASE_JWT_SECRET", JWT_SECRET),
            ("INTERNAL_TOKEN_SECRET", INTERNAL_SECRET),
            ("RATE_LIMIT_PER_SECOND", "10000"),
            ("RATE_LIMIT_BURST", "10000"),
            (
                "DB_PGBOUNCER_TRANSACTION_MODE",
                if bouncer.is_some() { "true" } else { "false" },
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    for (key, value) in extra {
        env.retain(|(k, _)| k != key);
        env.push(((*key).to_owned(), (*value).to_owned()));
    }
    env
}

/// The stack with every integration pointed at fresh fakes of Vessey, Slack and Twilio (what
/// `director up --fakes` runs), jobs polled quickly and provider retries short; `extra`
/// settings override these.
pub async fn spawn_stack_with_fakes(extra: &[(&str, &str)]) -> (TestStack, FakeThirdParties) {
    start_stack_with_fakes(extra, None).await
}

/// [`spawn_stack_with_fakes`] behind `bouncer`, as [`spawn_stack_behind_pgbouncer`].
pub async fn spawn_stack_with_fakes_behind_pgbouncer(
    extra: &[(&str, &str)],
    bouncer: &PgBouncer,
) -> (TestStack, FakeThirdParties) {
    start_stack_with_fakes(extra, Some(bouncer)).await
}

async fn start_stack_with_fakes(
    extra: &[(&str, &str)],
    bouncer: Option<&PgBouncer>,
) -> (TestStack, FakeThirdParties) {
    let fakes = FakeThirdParties::start(FakeAddrs::any_loopback())
        .await
        .unwrap();
    let fake_env = fakes.env();
    let mut env: Vec<(&str, &str)> = fake_env
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    env.extend([
        ("JOB_POLL_INTERVAL_MS", "200"),
        ("PROVIDER_RETRY_MIN_DELAY_MS", "10"),
        ("PROVIDER_RETRY_MAX_DELAY_MS", "100"),
    ]);
    env.extend_from_slice(extra);
    (start_stack(&env, bouncer).await, fakes)
}

/// A gateway token for a user of `tenant` (admin unless `role` says otherwise).
pub fn token(tenant: &str, role: Option<Role>) -> String {
    token_for(&format!("user-of-{tenant}"), tenant, role)
}

/// A gateway token for user `sub` of `tenant` (admin unless `role` says otherwise): a
/// driver's own login when `sub` is a driver's `user_id`.
pub fn token_for(sub: &str, tenant: &str, role: Option<Role>) -> String {
    mint_hs256(
        JWT_SECRET,
        &UserTokenClaims {
            sub: sub.to_owned(),
            tenant_id: Some(tenant.to_owned()),
            role,
            audience: "authenticated".to_owned(),
            ttl: Duration::from_secs(600),
            issuer: None,
        },
    )
    .unwrap()
}

impl TestStack {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(token)
    }

    pub fn post(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
    }

    pub fn patch(
        &self,
        path: &str,
        token: &str,
        body: serde_json::Value,
    ) -> reqwest::RequestBuilder {
        self.http
            .patch(self.url(path))
            .bearer_auth(token)
            .json(&body)
    }

    pub fn delete(&self, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.http.delete(self.url(path)).bearer_auth(token)
    }

    /// The JSON answer of a GET; `token` is `None` for the public routes.
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> serde_json::Value {
        let mut request = self.http.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    /// Creates a company over REST and returns its JSON.
    pub async fn create_company(&self, token: &str, body: serde_json::Value) -> serde_json::Value {
        let response = self
            .post("/api/companies", token, body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "create failed");
        response.json().await.unwrap()
    }

    /// Creates a driver over REST and returns its JSON.
    pub async fn create_driver(&self, token: &str, body: serde_json::Value) -> serde_json::Value {
        let response = self.post("/api/drivers", token, body).send().await.unwrap();
        assert_eq!(response.status(), 200, "create failed");
        response.json().await.unwrap()
    }
}
