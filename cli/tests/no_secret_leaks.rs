//! No configured secret ever leaves (issue 16): secret-shaped values in every integration
//! setting — the deployment's variables and a tenant's own settings — with every provider
//! failing (refused connections, 5xx and 4xx answers that echo the request back), and none of
//! them in any answer, stored error, row or log line (spans included: the log lines carry
//! their spans' fields).
//!
//! One test in its own binary: it installs the process's global log subscriber.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, Uri};
use common::{TestStack, spawn_stack_with, token};
use director_platform::identity::Role;
use director_store::db::database_url_for;
use serde_json::{Value, json};

/// Secret-shaped values, each distinct so a leak names its source.
const SHARED_VESSEY_KEY: &str = "shared-vessey-key-SECRET-1a2b3c";
const SHARED_SLACK_SECRET: &str = "shared-slack-path-SECRET-4d5e6f";
const SHARED_TWILIO_SID: &str = "ACshared0000SECRET000000000000007";
const SHARED_TWILIO_TOKEN: &str = "shared-twilio-token-SECRET-7a8b9c";
const TENANT_VESSEY_KEY: &str = "tenant-vessey-key-SECRET-0d1e2f";
const TENANT_SLACK_SECRET: &str = "tenant-slack-path-SECRET-3a4b5c";
const TENANT_TWILIO_SID: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const TENANT_TWILIO_TOKEN: &str = "tenant-twilio-token-SECRET-6d7e8f";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server answering every request with `status` and a body that echoes the request: its
/// URL and its `Authorization` header, as a careless provider's error page might.
async fn echoing_server(status: u16) -> SocketAddr {
    let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| async move {
        let auth = headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (
            axum::http::StatusCode::from_u16(status).unwrap(),
            axum::Json(json!({"message": format!("bad request to {uri} with {auth}")})),
        )
    });
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn secrets() -> Vec<&'static str> {
    vec![
        SHARED_VESSEY_KEY,
        SHARED_SLACK_SECRET,
        SHARED_TWILIO_SID,
        SHARED_TWILIO_TOKEN,
        TENANT_VESSEY_KEY,
        TENANT_SLACK_SECRET,
        TENANT_TWILIO_SID,
        TENANT_TWILIO_TOKEN,
    ]
}

fn assert_clean(what: &str, text: &str) {
    for secret in secrets() {
        assert!(!text.contains(secret), "{what} holds {secret}: {text}");
    }
}

/// Answers may show a tenant its own account SID (`GET /api/integrations/settings` does: it is
/// an identifier, not a credential); everything else stays out of them.
fn assert_clean_answer(text: &str) {
    for secret in secrets()
        .into_iter()
        .filter(|secret| *secret != TENANT_TWILIO_SID)
    {
        assert!(!text.contains(secret), "an answer holds {secret}: {text}");
    }
}

async fn json_of(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.unwrap();
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// Waits until every notification and job of the caller is finished, then answers both lists.
async fn settled(stack: &TestStack, token: &str) -> (Value, Value) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let notifications = json_of(stack.get("/api/integrations/notifications", token)).await;
        let jobs = json_of(stack.get("/api/integrations/jobs", token)).await;
        let busy = |list: &Value| {
            list.as_array().unwrap().iter().any(|item| {
                matches!(
                    item["status"].as_str(),
                    Some("queued" | "running" | "failed")
                )
            })
        };
        if !busy(&notifications) && !busy(&jobs) {
            return (notifications, jobs);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{notifications} {jobs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_configured_secret_reaches_an_answer_a_stored_error_a_row_or_a_log_line() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .json()
        .with_span_list(true)
        .with_current_span(true)
        .with_env_filter(
            "debug,h2=info,hyper=info,hyper_util=info,tower=info,sqlx=info,reqwest=debug",
        )
        .with_writer(move || writer.clone())
        .init();

    let refused = closed_port();
    let failing = echoing_server(500).await;
    let rejecting = echoing_server(401).await;
    let vessey_url = format!("http://127.0.0.1:{refused}/v1?token={SHARED_VESSEY_KEY}");
    let slack_url = format!("http://127.0.0.1:{refused}/services/T0/B0/{SHARED_SLACK_SECRET}");
    let twilio_url = format!("http://{failing}");
    let stack = spawn_stack_with(&[
        ("VESSEY_API_URL", vessey_url.as_str()),
        ("VESSEY_API_KEY", SHARED_VESSEY_KEY),
        ("SLACK_WEBHOOK_URL", slack_url.as_str()),
        ("TWILIO_API_URL", twilio_url.as_str()),
        ("TWILIO_ACCOUNT_SID", SHARED_TWILIO_SID),
        ("TWILIO_AUTH_TOKEN", SHARED_TWILIO_TOKEN),
        ("TWILIO_FROM_NUMBER", "+15550100000"),
        ("INTEGRATIONS_SHARED_TENANTS", "shared-co"),
        ("EGRESS_ALLOW_PRIVATE_NETWORKS", "true"),
        ("PROVIDER_RETRY_MAX_ATTEMPTS", "2"),
        ("PROVIDER_RETRY_MIN_DELAY_MS", "10"),
        ("PROVIDER_RETRY_MAX_DELAY_MS", "20"),
        ("JOB_MAX_ATTEMPTS", "1"),
        ("JOB_POLL_INTERVAL_MS", "200"),
    ])
    .await;

    let shared = token("shared-co", Some(Role::Admin));
    let own = token("own-co", Some(Role::Admin));
    let settings = json!({
        "vessey": {"api_url": format!("http://{rejecting}/v1"), "api_key": TENANT_VESSEY_KEY},
        "slack": {"webhook_url": format!("http://{failing}/services/T1/B1/{TENANT_SLACK_SECRET}")},
        "twilio": {
            "account_sid": TENANT_TWILIO_SID,
            "auth_token": TENANT_TWILIO_TOKEN,
            "from_number": "+15550100001"
        }
    });
    let answer = json_of(
        reqwest::Client::new()
            .put(stack.url("/api/integrations/settings"))
            .bearer_auth(&own)
            .json(&settings),
    )
    .await;
    assert_eq!(answer["twilio"]["auth_token"], "…7e8f", "{answer}");

    let mut answers = vec![answer];
    for caller in [&shared, &own] {
        for (path, body) in [
            (
                "/api/integrations/notifications/sms",
                json!({"to": "+15550100002", "message": "hello"}),
            ),
            (
                "/api/integrations/notifications/slack",
                json!({"text": "hello"}),
            ),
            ("/api/integrations/vessey/drivers:sync", json!({})),
            (
                "/api/integrations/vessey/collections:import",
                json!({"date": "2026-11-23"}),
            ),
        ] {
            answers.push(json_of(stack.post(path, caller, body)).await);
        }
        answers.push(json_of(stack.get("/api/integrations/vessey/drivers/7", caller)).await);
        answers.push(json_of(stack.get("/api/integrations", caller)).await);
        answers.push(json_of(stack.get("/api/integrations/settings", caller)).await);
        let (notifications, jobs) = settled(&stack, caller).await;
        // Every failure was recorded, so there was something to leak.
        for list in [&notifications, &jobs] {
            assert!(
                list.as_array()
                    .unwrap()
                    .iter()
                    .all(|item| item["last_error"].is_string()),
                "{list}"
            );
        }
        answers.push(notifications);
        answers.push(jobs);
    }
    for answer in &answers {
        assert_clean_answer(&answer.to_string());
    }

    // Every column of every row the integrations service stored, read as the owner (past
    // row-level security).
    let service_url = stack
        .env
        .iter()
        .find(|(name, _)| name == "INTEGRATIONS_DATABASE_URL")
        .map(|(_, url)| url.clone())
        .unwrap();
    let database = service_url
        .rsplit('/')
        .next()
        .and_then(|tail| tail.split('?').next())
        .unwrap();
    let owner_url = database_url_for(&common::server_url(), database).unwrap();
    let pool = sqlx::PgPool::connect(&owner_url).await.unwrap();
    for table in ["notifications", "jobs", "integration_settings"] {
        let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM {table} t"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(!rows.is_empty(), "{table} is empty");
        for (row,) in rows {
            assert_clean(table, &row);
        }
    }
    let queue: Vec<(String,)> =
        sqlx::query_as("SELECT coalesce(last_error, '') FROM graphile_worker._private_jobs")
            .fetch_all(&pool)
            .await
            .unwrap();
    for (error,) in queue {
        assert_clean("the queue's last_error", &error);
    }

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logged.contains("third-party call failed"),
        "the failures were not logged at all"
    );
    for line in logged.lines() {
        assert_clean("a log line", line);
    }
}
