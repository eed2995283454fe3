//! The Connect protocol against the whole stack, through the gateway, as a connect-web
//! frontend or `buf curl` uses it: companies listed with a GET, an invalid field refused with
//! the field named in its BadRequest details, `WatchTasks` streamed as Connect envelopes, and
//! `buf curl` with its default protocol and the schema from the gateway's reflection
//! (ignored by the plain test run: it needs buf; `.ci/run` runs it).

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::{TestStack, spawn_stack, token};
use serde_json::{Value, json};

const LIST_COMPANIES: &str = "/director.companies.v1.CompaniesService/ListCompanies";
const CREATE_COMPANY: &str = "/director.companies.v1.CompaniesService/CreateCompany";
const WATCH_TASKS: &str = "/director.dispatch.v1.TasksService/WatchTasks";

/// One Connect envelope of `payload`.
fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut framed = vec![flags];
    framed.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    framed.extend_from_slice(payload);
    framed
}

async fn list_companies(app: &TestStack, token: &str) -> Value {
    let response = app
        .get(
            &format!("{LIST_COMPANIES}?connect=v1&encoding=json&message=%7B%7D"),
            token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn connect_lists_companies_and_names_an_invalid_field() {
    let app = spawn_stack().await;
    let dairy = token("connect-dairy", None);
    app.create_company(&dairy, json!({"name": "Acme Dairy"}))
        .await;

    let listed = list_companies(&app, &dairy).await;
    assert_eq!(listed["companies"][0]["name"], "Acme Dairy", "{listed}");
    assert!(listed["companies"][0]["createdAt"].is_string(), "{listed}");

    let response = app
        .http
        .post(app.url(CREATE_COMPANY))
        .bearer_auth(&dairy)
        .header("content-type", "application/json")
        .header("connect-protocol-version", "1")
        .body(r#"{"name": "   "}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "invalid_argument", "{error}");
    let detail = &error["details"][0];
    assert_eq!(detail["type"], "google.rpc.BadRequest", "{error}");
    assert_eq!(
        detail["debug"]["fieldViolations"][0]["field"], "name",
        "{error}"
    );
}

#[tokio::test]
async fn watch_tasks_streams_over_connect() {
    let app = spawn_stack().await;
    let dairy = token("connect-watch", None);
    let mut stream = app
        .http
        .post(app.url(WATCH_TASKS))
        .bearer_auth(&dairy)
        .header("content-type", "application/connect+json")
        .header("connect-protocol-version", "1")
        .timeout(Duration::from_secs(60))
        .body(envelope(0, b"{}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "application/connect+json");

    let company = app
        .create_company(&dairy, json!({"name": "Watched Farm"}))
        .await;
    let created = app
        .post(
            "/api/tasks",
            &dairy,
            json!({"company_id": company["id"], "title": "Connect pickup", "scheduled_for": "2026-11-23"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);

    let mut buffer = Vec::new();
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if buffer.len() >= 5 {
                let length = u32::from_be_bytes(buffer[1..5].try_into().unwrap()) as usize;
                if buffer.len() >= 5 + length {
                    assert_eq!(buffer[0], 0, "a message, not the end of the stream");
                    return serde_json::from_slice::<Value>(&buffer[5..5 + length]).unwrap();
                }
            }
            let chunk = stream.chunk().await.unwrap().expect("the stream is open");
            buffer.extend_from_slice(&chunk);
        }
    })
    .await
    .expect("an event within 10 s");
    assert_eq!(event["task"]["title"], "Connect pickup", "{event}");
    assert!(event["eventId"].is_string(), "{event}");
}

#[tokio::test]
#[ignore = "needs buf; run by .ci/run"]
async fn buf_curl_lists_companies_with_its_default_protocol() {
    let app = spawn_stack().await;
    let dairy = token("connect-buf", None);
    app.create_company(&dairy, json!({"name": "Buf Dairy"}))
        .await;
    let authorization = format!("Authorization: Bearer {dairy}");
    let url = app.url(LIST_COMPANIES);
    let output = tokio::process::Command::new("buf")
        .args(["curl", "--header", &authorization, "--data", "{}", &url])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("buf curl within 60 s")
        .expect("buf is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(listed["companies"][0]["name"], "Buf Dairy", "{listed}");
}
