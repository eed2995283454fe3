//! The drivers and tasks REST API end to end: HTTP → gateway → gRPC → Dispatch (→ Companies)
//! → PostgreSQL, with the routes, JSON, status codes and roles of API.md.
//!
//! A refused transition, an unknown company and an inactive driver are FAILED_PRECONDITION,
//! which this gateway answers with 412 (API.md allows 400 or 412).
//!
//! Its files by subject: [`drivers`], [`tasks`] (creation, the company check
//! and listing), [`state_machine`] (partial updates). The helpers all of them share are here.
//! The state machine's transitions and the roles and tenancy are Dispatch's own, tested over
//! gRPC in `services/dispatch/tests/dispatch/api/`.

use crate::common;

mod drivers;
mod state_machine;
mod tasks;

use common::{TestStack, spawn_stack, token};
use director_platform::identity::Role;
use serde_json::{Value, json};

const DRIVER_KEYS: [&str; 10] = [
    "created_at",
    "deleted_at",
    "email",
    "external_id",
    "id",
    "name",
    "phone",
    "status",
    "updated_at",
    "user_id",
];

const TASK_KEYS: [&str; 16] = [
    "cancel_reason",
    "company_id",
    "completed_at",
    "created_at",
    "driver_id",
    "external_id",
    "id",
    "notes",
    "scheduled_for",
    "status",
    "title",
    "updated_at",
    "version",
    "volume_liters",
    "window_end",
    "window_start",
];

/// The HTTP status a refused transition, an unknown company or an inactive driver gets.
const PRECONDITION_FAILED: u16 = 412;

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

/// The sorted field names of a validation error.
fn fields(error: &Value) -> Vec<String> {
    let mut fields: Vec<String> = error["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no fields in {error}"))
        .iter()
        .map(|f| f["field"].as_str().unwrap().to_owned())
        .collect();
    fields.sort();
    fields
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap().to_owned()
}

/// Sends a request and returns its HTTP status and JSON body (`null` when not JSON).
async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn create_driver(app: &TestStack, token: &str, body: Value) -> Value {
    let (status, driver) = send(app.post("/api/drivers", token, body.clone())).await;
    assert_eq!(status, 200, "{body}: {driver}");
    driver
}

async fn create_company(app: &TestStack, token: &str, name: &str) -> String {
    id(&app.create_company(token, json!({ "name": name })).await)
}

/// Creates a task at `company_id` on `day`; `extra` adds or overrides fields.
async fn create_task(
    app: &TestStack,
    token: &str,
    company_id: &str,
    title: &str,
    day: &str,
    extra: Value,
) -> Value {
    let mut body = json!({"company_id": company_id, "title": title, "scheduled_for": day});
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    let (status, task) = send(app.post("/api/tasks", token, body.clone())).await;
    assert_eq!(status, 200, "{body}: {task}");
    task
}

/// `POST /api/tasks/{id}/{verb}` with `body`.
async fn transition(
    app: &TestStack,
    token: &str,
    task_id: &str,
    verb: &str,
    body: Value,
) -> (u16, Value) {
    send(app.post(&format!("/api/tasks/{task_id}/{verb}"), token, body)).await
}

/// The titles of a task list, in order.
async fn titles(app: &TestStack, token: &str, query: &str) -> Vec<String> {
    let (status, list) = send(app.get(&format!("/api/tasks{query}"), token)).await;
    assert_eq!(status, 200, "{query}: {list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|task| task["title"].as_str().unwrap().to_owned())
        .collect()
}
