//! The drivers and tasks REST API end to end: HTTP → gateway → gRPC → Dispatch (→ Companies)
//! → PostgreSQL, with the routes, JSON, status codes and roles of API.md.
//!
//! A refused transition, an unknown company and an inactive driver are FAILED_PRECONDITION,
//! which this gateway answers with 412 (API.md allows 400 or 412).

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestStack, spawn_stack, token, token_for};
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

/// Asserts a refusal of the state machine: 412 FAILED_PRECONDITION whose message names the
/// task's current status.
fn assert_refused(answer: &(u16, Value), current: &str) {
    let (status, body) = answer;
    assert_eq!(*status, PRECONDITION_FAILED, "{body}");
    assert_eq!(body["code"], "FAILED_PRECONDITION", "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains(&format!("is {current}")),
        "{message:?} does not name the status {current}"
    );
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

// ---------------------------------------------------------------------------------------------
// Drivers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_driver_goes_through_create_read_list_update_and_soft_delete() {
    let app = spawn_stack().await;
    let t = token("tenant-a", Some(Role::Dispatcher));

    let (status, ann) = send(app.post(
        "/api/drivers",
        &t,
        json!({"name": "Ann Driver", "phone": "+1 555 010 0001", "email": "ann@example.com"}),
    ))
    .await;
    assert_eq!(status, 200, "{ann}");
    assert_eq!(keys(&ann), DRIVER_KEYS, "every key is present");
    assert_eq!(ann["name"], "Ann Driver");
    assert_eq!(ann["phone"], "+15550100001", "stored normalised");
    assert_eq!(ann["email"], "ann@example.com");
    assert_eq!(ann["status"], "active", "active by default, lowercase");
    for unset in ["external_id", "user_id", "deleted_at"] {
        assert_eq!(ann[unset], Value::Null, "{unset}");
    }
    assert!(ann["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(ann["updated_at"].as_str().unwrap().ends_with('Z'));
    let ann_id = id(&ann);

    let bob = create_driver(
        &app,
        &t,
        json!({"name": "Bob", "status": "inactive", "external_id": "V-2", "user_id": "bob-login"}),
    )
    .await;
    assert_eq!(bob["status"], "inactive");
    assert_eq!(bob["external_id"], "V-2");
    assert_eq!(bob["user_id"], "bob-login");

    let (status, list) = send(app.get("/api/drivers", &t)).await;
    assert_eq!(status, 200);
    assert_eq!(list, json!([ann, bob]), "a bare array, oldest first");
    let inactive = app.get_json("/api/drivers?status=inactive", Some(&t)).await;
    assert_eq!(inactive, json!([bob]));
    let active = app.get_json("/api/drivers?status=active", Some(&t)).await;
    assert_eq!(active, json!([ann]));

    let read = app
        .get_json(&format!("/api/drivers/{ann_id}"), Some(&t))
        .await;
    assert_eq!(read, ann);

    let (status, patched) = send(app.patch(
        &format!("/api/drivers/{ann_id}"),
        &t,
        json!({"email": null, "external_id": "V-1", "status": "inactive"}),
    ))
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["email"], Value::Null, "null clears");
    assert_eq!(patched["external_id"], "V-1");
    assert_eq!(patched["status"], "inactive");
    assert_eq!(patched["name"], "Ann Driver", "absent keys are untouched");
    assert_eq!(patched["phone"], "+15550100001");
    assert_eq!(patched["user_id"], Value::Null);
    assert_eq!(patched["created_at"], ann["created_at"]);
    assert_eq!(
        app.get_json(&format!("/api/drivers/{ann_id}"), Some(&t))
            .await,
        patched
    );

    let (status, deleted) = send(app.delete(&format!("/api/drivers/{ann_id}"), &t)).await;
    assert_eq!(status, 200);
    assert_eq!(deleted, json!({"message": "Driver deleted successfully"}));

    let (status, gone) = send(app.get(&format!("/api/drivers/{ann_id}"), &t)).await;
    assert_eq!(status, 404);
    assert_eq!(gone["detail"], "Driver not found");
    assert_eq!(gone["code"], "NOT_FOUND");
    assert_eq!(
        app.get_json("/api/drivers", Some(&t)).await,
        json!([bob]),
        "the list omits a deleted driver"
    );
    for answer in [
        send(app.delete(&format!("/api/drivers/{ann_id}"), &t)).await,
        send(app.patch(
            &format!("/api/drivers/{ann_id}"),
            &t,
            json!({"name": "back"}),
        ))
        .await,
    ] {
        assert_eq!(answer.0, 404, "{}", answer.1);
        assert_eq!(answer.1["detail"], "Driver not found");
    }
}

#[tokio::test]
async fn driver_validation_failures_are_400_naming_each_field_and_bad_ids_are_400() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let cases = [
        (json!({"name": ""}), vec!["name"]),
        (json!({"name": "   "}), vec!["name"]),
        (json!({"phone": "+15550100001"}), vec!["name"]),
        (json!({"name": "x".repeat(256)}), vec!["name"]),
        (json!({"name": "ok", "email": "nope"}), vec!["email"]),
        (json!({"name": "ok", "phone": "12345"}), vec!["phone"]),
        (json!({"name": "ok", "phone": "+1 555 abc"}), vec!["phone"]),
        (
            json!({"name": " ", "email": "nope", "phone": "1"}),
            vec!["email", "name", "phone"],
        ),
    ];
    for (body, expected) in cases {
        let (status, error) = send(app.post("/api/drivers", &t, body.clone())).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["code"], "INVALID_ARGUMENT");
        assert_eq!(fields(&error), expected, "{body}");
    }
    let (status, error) = send(app.post(
        "/api/drivers",
        &t,
        json!({"name": "ok", "status": "on_leave"}),
    ))
    .await;
    assert_eq!(status, 400, "an unknown status: {error}");
    assert_eq!(fields(&error), ["status"]);
    assert_eq!(
        app.get_json("/api/drivers", Some(&t)).await,
        json!([]),
        "nothing was created"
    );

    let ann = create_driver(&app, &t, json!({"name": "Ann", "phone": "+15550100001"})).await;
    let path = format!("/api/drivers/{}", id(&ann));
    for (body, expected) in [
        (json!({"name": ""}), vec!["name"]),
        (json!({"name": null}), vec!["name"]),
        (
            json!({"email": "nope", "phone": "12"}),
            vec!["email", "phone"],
        ),
    ] {
        let (status, error) = send(app.patch(&path, &t, body.clone())).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(fields(&error), expected, "{body}");
    }
    assert_eq!(
        app.get_json(&path, Some(&t)).await,
        ann,
        "refused updates change nothing"
    );

    for answer in [
        send(app.get("/api/drivers/not-a-uuid", &t)).await,
        send(app.patch("/api/drivers/123", &t, json!({"name": "x"}))).await,
        send(app.delete("/api/drivers/abc", &t)).await,
    ] {
        assert_eq!(answer.0, 400, "{}", answer.1);
        assert_eq!(fields(&answer.1), ["id"]);
    }
}

#[tokio::test]
async fn external_ids_and_user_ids_are_unique_among_a_tenants_live_drivers_only() {
    let app = spawn_stack().await;
    let a = token("tenant-a", None);
    let b = token("tenant-b", None);
    let ann = create_driver(
        &app,
        &a,
        json!({"name": "Ann", "external_id": "V-1", "user_id": "ann-login"}),
    )
    .await;

    for (body, field) in [
        (json!({"name": "Copy", "external_id": "V-1"}), "external_id"),
        (json!({"name": "Copy", "user_id": "ann-login"}), "user_id"),
    ] {
        let (status, error) = send(app.post("/api/drivers", &a, body.clone())).await;
        assert_eq!(status, 409, "{body}: {error}");
        assert_eq!(error["code"], "ALREADY_EXISTS");
        assert!(
            error["error"].as_str().unwrap().contains(field),
            "{error} names {field}"
        );
    }
    let other = create_driver(&app, &a, json!({"name": "Other", "external_id": "V-9"})).await;
    let (status, error) = send(app.patch(
        &format!("/api/drivers/{}", id(&other)),
        &a,
        json!({"external_id": "V-1"}),
    ))
    .await;
    assert_eq!(
        status, 409,
        "an update cannot take a used id either: {error}"
    );
    assert_eq!(
        app.get_json("/api/drivers", Some(&a)).await,
        json!([ann, other]),
        "no copy was created or changed"
    );

    let in_b = create_driver(
        &app,
        &b,
        json!({"name": "Ann in B", "external_id": "V-1", "user_id": "ann-login"}),
    )
    .await;
    assert_eq!(
        in_b["external_id"], "V-1",
        "another tenant may use the same ids"
    );

    let (status, _) = send(app.delete(&format!("/api/drivers/{}", id(&ann)), &a)).await;
    assert_eq!(status, 200);
    let again = create_driver(
        &app,
        &a,
        json!({"name": "Ann again", "external_id": "V-1", "user_id": "ann-login"}),
    )
    .await;
    assert_ne!(
        id(&again),
        id(&ann),
        "a deleted driver's ids are free again"
    );
}

// ---------------------------------------------------------------------------------------------
// Tasks: creation and the company check
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_task_is_created_pending_with_every_key_or_assigned_to_an_active_driver_only() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let company = create_company(&app, &t, "Hill Farm").await;

    let (status, task) = send(app.post(
        "/api/tasks",
        &t,
        json!({"company_id": company, "title": "Morning collection", "scheduled_for": "2026-11-23"}),
    ))
    .await;
    assert_eq!(status, 200, "{task}");
    assert_eq!(keys(&task), TASK_KEYS, "every key is present");
    assert_eq!(task["status"], "pending");
    assert_eq!(task["company_id"], company.as_str());
    assert_eq!(task["title"], "Morning collection");
    assert_eq!(task["scheduled_for"], "2026-11-23");
    assert_eq!(task["version"], 1);
    for unset in [
        "driver_id",
        "notes",
        "window_start",
        "window_end",
        "volume_liters",
        "external_id",
        "completed_at",
        "cancel_reason",
    ] {
        assert_eq!(task[unset], Value::Null, "{unset}");
    }
    assert!(task["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        app.get_json(&format!("/api/tasks/{}", id(&task)), Some(&t))
            .await,
        task
    );

    let full = create_task(
        &app,
        &t,
        &company,
        "Evening collection",
        "2026-11-23",
        json!({
            "notes": "Gate code 1234",
            "window_start": "2026-11-23T16:00:00Z",
            "window_end": "2026-11-23T18:30:00Z",
            "volume_liters": 1500.5,
            "external_id": "C-77",
        }),
    )
    .await;
    assert_eq!(full["notes"], "Gate code 1234");
    assert_eq!(full["window_start"], "2026-11-23T16:00:00Z");
    assert_eq!(full["window_end"], "2026-11-23T18:30:00Z");
    assert_eq!(full["volume_liters"], 1500.5);
    assert_eq!(full["external_id"], "C-77");
    let (status, error) = send(app.post(
        "/api/tasks",
        &t,
        json!({"company_id": company, "title": "Copy", "scheduled_for": "2026-11-23", "external_id": "C-77"}),
    ))
    .await;
    assert_eq!(status, 409, "external_id is unique per tenant: {error}");
    assert_eq!(error["code"], "ALREADY_EXISTS");

    let ann = create_driver(&app, &t, json!({"name": "Ann"})).await;
    let assigned = create_task(
        &app,
        &t,
        &company,
        "Ann's collection",
        "2026-11-24",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    assert_eq!(assigned["status"], "assigned");
    assert_eq!(assigned["driver_id"], ann["id"]);

    let inactive = create_driver(&app, &t, json!({"name": "Ina", "status": "inactive"})).await;
    let deleted = create_driver(&app, &t, json!({"name": "Del"})).await;
    send(app.delete(&format!("/api/drivers/{}", id(&deleted)), &t)).await;
    let elsewhere = create_driver(&app, &token("tenant-b", None), json!({"name": "B"})).await;
    for driver_id in [
        id(&inactive),
        id(&deleted),
        id(&elsewhere),
        uuid::Uuid::new_v4().to_string(),
    ] {
        let (status, error) = send(app.post(
            "/api/tasks",
            &t,
            json!({"company_id": company, "title": "No", "scheduled_for": "2026-11-24", "driver_id": driver_id}),
        ))
        .await;
        assert_eq!(status, PRECONDITION_FAILED, "{error}");
        assert_eq!(error["code"], "FAILED_PRECONDITION");
        assert!(
            error["error"].as_str().unwrap().contains("driver_id"),
            "{error} names driver_id"
        );
    }
    assert_eq!(
        titles(&app, &t, "").await,
        [
            "Morning collection",
            "Evening collection",
            "Ann's collection"
        ],
        "no task was created for a driver who cannot take it"
    );
}

#[tokio::test]
async fn task_input_errors_are_400_naming_each_field_and_bad_ids_are_400() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let company = create_company(&app, &t, "Hill Farm").await;
    let cases = [
        (json!({}), vec!["company_id", "scheduled_for", "title"]),
        (
            json!({"company_id": "farm", "title": " ", "scheduled_for": "23/11/2026"}),
            vec!["company_id", "scheduled_for", "title"],
        ),
        (
            json!({"company_id": company, "title": "x", "scheduled_for": "2026-02-30"}),
            vec!["scheduled_for"],
        ),
        (
            json!({"company_id": company, "title": "x", "scheduled_for": "2026-11-23", "driver_id": "ann"}),
            vec!["driver_id"],
        ),
        (
            json!({"company_id": company, "title": "x", "scheduled_for": "2026-11-23", "volume_liters": -1}),
            vec!["volume_liters"],
        ),
        (
            json!({"company_id": company, "title": "x", "scheduled_for": "2026-11-23",
                   "window_start": "2026-11-23T10:00:00Z", "window_end": "2026-11-23T09:00:00Z"}),
            vec!["window_end"],
        ),
    ];
    for (body, expected) in cases {
        let (status, error) = send(app.post("/api/tasks", &t, body.clone())).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(error["code"], "INVALID_ARGUMENT");
        assert_eq!(fields(&error), expected, "{body}");
    }
    assert!(titles(&app, &t, "").await.is_empty(), "nothing was created");

    for answer in [
        send(app.get("/api/tasks/not-a-uuid", &t)).await,
        send(app.patch("/api/tasks/123", &t, json!({"title": "x"}))).await,
        send(app.delete("/api/tasks/abc", &t)).await,
        transition(&app, &t, "abc", "start", json!({})).await,
        transition(&app, &t, "abc", "complete", json!({})).await,
        transition(&app, &t, "abc", "cancel", json!({"reason": "r"})).await,
        transition(
            &app,
            &t,
            "abc",
            "assign",
            json!({"driver_id": uuid::Uuid::new_v4().to_string()}),
        )
        .await,
    ] {
        assert_eq!(answer.0, 400, "{}", answer.1);
        assert_eq!(fields(&answer.1), ["id"]);
    }
}

#[tokio::test]
async fn a_task_needs_a_live_company_of_the_callers_tenant() {
    let app = spawn_stack().await;
    let a = token("tenant-a", None);
    let b = token("tenant-b", None);
    let deleted = create_company(&app, &a, "Closed Farm").await;
    let (status, _) = send(app.delete(&format!("/api/companies/{deleted}"), &a)).await;
    assert_eq!(status, 200);
    let bs_company = create_company(&app, &b, "B's Farm").await;

    for (company_id, what) in [
        (uuid::Uuid::new_v4().to_string(), "an unknown company"),
        (deleted, "a deleted company"),
        (bs_company, "another tenant's company"),
    ] {
        let (status, error) = send(app.post(
            "/api/tasks",
            &a,
            json!({"company_id": company_id, "title": "Collect", "scheduled_for": "2026-11-23"}),
        ))
        .await;
        assert_eq!(status, PRECONDITION_FAILED, "{what}: {error}");
        assert_eq!(error["code"], "FAILED_PRECONDITION", "{what}");
        assert!(
            error["error"].as_str().unwrap().contains("company_id"),
            "{what}: {error} names company_id"
        );
    }
    assert!(titles(&app, &a, "").await.is_empty(), "nothing was created");

    // Moving a task to a company that is not the tenant's is refused the same way.
    let live = create_company(&app, &a, "Hill Farm").await;
    let task = create_task(&app, &a, &live, "Collect", "2026-11-23", json!({})).await;
    let (status, error) = send(app.patch(
        &format!("/api/tasks/{}", id(&task)),
        &a,
        json!({"company_id": uuid::Uuid::new_v4().to_string()}),
    ))
    .await;
    assert_eq!(status, PRECONDITION_FAILED, "{error}");
    assert_eq!(
        app.get_json(&format!("/api/tasks/{}", id(&task)), Some(&a))
            .await,
        task,
        "the task is unchanged"
    );
    let other = create_company(&app, &a, "Dale Farm").await;
    let (status, moved) = send(app.patch(
        &format!("/api/tasks/{}", id(&task)),
        &a,
        json!({"company_id": other}),
    ))
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["company_id"], other.as_str());

    // A task that does not exist is 404, whichever company it would have moved to.
    let (status, error) = send(app.patch(
        &format!("/api/tasks/{}", uuid::Uuid::new_v4()),
        &a,
        json!({"company_id": uuid::Uuid::new_v4().to_string()}),
    ))
    .await;
    assert_eq!(status, 404, "{error}");
    assert_eq!(error["error"], "Task not found");
}

#[tokio::test]
async fn with_companies_down_creating_a_task_is_503_and_creates_nothing() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let company = create_company(&app, &t, "Hill Farm").await;
    let before = create_task(&app, &t, &company, "Before", "2026-11-23", json!({})).await;

    app.stack.stop_service("companies").unwrap();
    // Wait until the gateway itself can no longer reach Companies.
    let mut down = false;
    for _ in 0..100 {
        let (status, _) = send(app.get("/api/companies", &t)).await;
        if status != 200 {
            down = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(down, "companies never stopped");

    for _ in 0..3 {
        let (status, error) = send(app.post(
            "/api/tasks",
            &t,
            json!({"company_id": company, "title": "During", "scheduled_for": "2026-11-23"}),
        ))
        .await;
        assert_eq!(status, 503, "never a silent accept: {error}");
        assert_eq!(error["code"], "UNAVAILABLE");
    }
    let (status, error) = send(app.patch(
        &format!("/api/tasks/{}", id(&before)),
        &t,
        json!({"company_id": company}),
    ))
    .await;
    assert_eq!(status, 503, "{error}");
    assert_eq!(error["code"], "UNAVAILABLE");

    let (status, list) = send(app.get("/api/tasks", &t)).await;
    assert_eq!(status, 200, "reading tasks does not need Companies");
    assert_eq!(list, json!([before]), "nothing was created or changed");
}

// ---------------------------------------------------------------------------------------------
// The state machine
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_dispatcher_takes_a_task_from_pending_to_assigned_in_progress_and_completed() {
    let app = spawn_stack().await;
    let t = token("tenant-a", Some(Role::Dispatcher));
    let company = create_company(&app, &t, "Hill Farm").await;
    let ann = create_driver(&app, &t, json!({"name": "Ann"})).await;
    let task = create_task(
        &app,
        &t,
        &company,
        "Collect",
        "2026-11-23",
        json!({"notes": "Gate code 1234"}),
    )
    .await;
    let task_id = id(&task);

    let (status, assigned) = transition(
        &app,
        &t,
        &task_id,
        "assign",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(assigned["status"], "assigned");
    assert_eq!(assigned["driver_id"], ann["id"]);
    assert_eq!(assigned["version"], 2);

    let (status, started) = transition(&app, &t, &task_id, "start", json!({})).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "in_progress");
    assert_eq!(started["version"], 3);
    assert_eq!(started["completed_at"], Value::Null);

    let (status, error) =
        transition(&app, &t, &task_id, "complete", json!({"volume_liters": -1})).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(fields(&error), ["volume_liters"]);
    assert_eq!(
        app.get_json(&format!("/api/tasks/{task_id}"), Some(&t))
            .await,
        started,
        "a refused completion changes nothing"
    );

    let (status, completed) = transition(
        &app,
        &t,
        &task_id,
        "complete",
        json!({"volume_liters": 1234.5, "notes": "Tank 2 was full"}),
    )
    .await;
    assert_eq!(status, 200, "{completed}");
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["volume_liters"], 1234.5);
    assert_eq!(completed["notes"], "Tank 2 was full");
    assert_eq!(completed["driver_id"], ann["id"]);
    assert_eq!(completed["version"], 4);
    assert_eq!(completed["cancel_reason"], Value::Null);
    let completed_at = completed["completed_at"].as_str().unwrap();
    assert!(completed_at.ends_with('Z'), "{completed_at}");
    assert_eq!(
        app.get_json(&format!("/api/tasks/{task_id}"), Some(&t))
            .await,
        completed
    );

    // A completed task goes nowhere.
    for (verb, body) in [
        ("assign", json!({"driver_id": ann["id"]})),
        ("start", json!({})),
        ("complete", json!({"volume_liters": 1.0})),
        ("cancel", json!({"reason": "too late"})),
    ] {
        assert_refused(
            &transition(&app, &t, &task_id, verb, body).await,
            "completed",
        );
    }
    assert_eq!(
        app.get_json(&format!("/api/tasks/{task_id}"), Some(&t))
            .await,
        completed,
        "refusals change nothing"
    );
}

#[tokio::test]
async fn every_other_transition_is_refused_naming_the_current_status_and_cancel_needs_a_reason() {
    let app = spawn_stack().await;
    let t = token("tenant-a", Some(Role::Dispatcher));
    let company = create_company(&app, &t, "Hill Farm").await;
    let ann = create_driver(&app, &t, json!({"name": "Ann"})).await;
    let bob = create_driver(&app, &t, json!({"name": "Bob"})).await;
    let ina = create_driver(&app, &t, json!({"name": "Ina", "status": "inactive"})).await;
    let task = create_task(&app, &t, &company, "Collect", "2026-11-23", json!({})).await;
    let task_id = id(&task);
    let path = format!("/api/tasks/{task_id}");

    // pending
    assert_refused(
        &transition(&app, &t, &task_id, "start", json!({})).await,
        "pending",
    );
    assert_refused(
        &transition(&app, &t, &task_id, "complete", json!({})).await,
        "pending",
    );

    // assigned, and assigned again to another driver
    let (status, _) = transition(
        &app,
        &t,
        &task_id,
        "assign",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    assert_eq!(status, 200);
    assert_refused(
        &transition(&app, &t, &task_id, "complete", json!({})).await,
        "assigned",
    );
    let (status, reassigned) = transition(
        &app,
        &t,
        &task_id,
        "assign",
        json!({"driver_id": bob["id"]}),
    )
    .await;
    assert_eq!(status, 200, "{reassigned}");
    assert_eq!(reassigned["driver_id"], bob["id"]);
    let (status, error) = transition(
        &app,
        &t,
        &task_id,
        "assign",
        json!({"driver_id": ina["id"]}),
    )
    .await;
    assert_eq!(status, PRECONDITION_FAILED, "an inactive driver: {error}");
    assert!(
        error["error"].as_str().unwrap().contains("driver_id"),
        "{error}"
    );
    let (status, error) = transition(&app, &t, &task_id, "assign", json!({})).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(fields(&error), ["driver_id"]);
    assert_eq!(app.get_json(&path, Some(&t)).await, reassigned);

    // in_progress
    let (status, _) = transition(&app, &t, &task_id, "start", json!({})).await;
    assert_eq!(status, 200);
    assert_refused(
        &transition(
            &app,
            &t,
            &task_id,
            "assign",
            json!({"driver_id": ann["id"]}),
        )
        .await,
        "in_progress",
    );
    assert_refused(
        &transition(&app, &t, &task_id, "start", json!({})).await,
        "in_progress",
    );

    // cancel needs a reason
    for body in [json!({}), json!({"reason": ""}), json!({"reason": "   "})] {
        let (status, error) = transition(&app, &t, &task_id, "cancel", body.clone()).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(fields(&error), ["reason"], "{body}");
    }
    assert_eq!(app.get_json(&path, Some(&t)).await["status"], "in_progress");

    // in_progress → cancelled, and then nowhere
    let (status, cancelled) = transition(
        &app,
        &t,
        &task_id,
        "cancel",
        json!({"reason": "Tank broke"}),
    )
    .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_reason"], "Tank broke");
    assert_eq!(cancelled["completed_at"], Value::Null);
    for (verb, body) in [
        ("assign", json!({"driver_id": ann["id"]})),
        ("start", json!({})),
        ("complete", json!({})),
        ("cancel", json!({"reason": "again"})),
    ] {
        assert_refused(
            &transition(&app, &t, &task_id, verb, body).await,
            "cancelled",
        );
    }
    assert_eq!(app.get_json(&path, Some(&t)).await, cancelled);

    // pending → cancelled and assigned → cancelled
    let pending = create_task(&app, &t, &company, "Pending", "2026-11-23", json!({})).await;
    let assigned = create_task(
        &app,
        &t,
        &company,
        "Assigned",
        "2026-11-23",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    for task in [pending, assigned] {
        let (status, cancelled) = transition(
            &app,
            &t,
            &id(&task),
            "cancel",
            json!({"reason": "Farm closed"}),
        )
        .await;
        assert_eq!(status, 200, "{} {cancelled}", task["status"]);
        assert_eq!(cancelled["status"], "cancelled");
        assert_eq!(cancelled["cancel_reason"], "Farm closed");
    }
}

#[tokio::test]
async fn patch_honours_the_version_and_never_changes_the_status() {
    let app = spawn_stack().await;
    let t = token("tenant-a", Some(Role::Dispatcher));
    let company = create_company(&app, &t, "Hill Farm").await;
    let task = create_task(
        &app,
        &t,
        &company,
        "Collect",
        "2026-11-23",
        json!({"notes": "n"}),
    )
    .await;
    let path = format!("/api/tasks/{}", id(&task));

    let (status, renamed) =
        send(app.patch(&path, &t, json!({"title": "Collect early", "version": 1}))).await;
    assert_eq!(status, 200, "{renamed}");
    assert_eq!(renamed["title"], "Collect early");
    assert_eq!(renamed["version"], 2, "the version is incremented");
    assert_eq!(renamed["notes"], "n", "absent keys are untouched");
    assert_eq!(renamed["scheduled_for"], "2026-11-23");

    for body in [
        json!({"title": "Lost update", "version": 1}),
        json!({"version": 1}),
    ] {
        let (status, error) = send(app.patch(&path, &t, body.clone())).await;
        assert_eq!(status, 409, "a stale version: {body}: {error}");
        assert_eq!(error["code"], "ABORTED");
    }
    assert_eq!(app.get_json(&path, Some(&t)).await, renamed);

    let (status, moved) = send(app.patch(
        &path,
        &t,
        json!({"scheduled_for": "2026-11-24", "notes": null, "version": 2}),
    ))
    .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["scheduled_for"], "2026-11-24");
    assert_eq!(moved["notes"], Value::Null, "null clears");
    assert_eq!(moved["version"], 3);
    let (status, unversioned) = send(app.patch(&path, &t, json!({"volume_liters": 900}))).await;
    assert_eq!(
        status, 200,
        "without a version the update applies: {unversioned}"
    );
    assert_eq!(unversioned["version"], 4);

    for (body, field) in [
        (json!({"status": "completed"}), "status"),
        (json!({"status": "completed", "version": 4}), "status"),
        (
            json!({"driver_id": uuid::Uuid::new_v4().to_string()}),
            "driver_id",
        ),
        (json!({"cancel_reason": "no"}), "cancel_reason"),
        (json!({"title": null}), "title"),
        (json!({"scheduled_for": "tomorrow"}), "scheduled_for"),
    ] {
        let (status, error) = send(app.patch(&path, &t, body.clone())).await;
        assert_eq!(status, 400, "{body}: {error}");
        assert_eq!(fields(&error), [field], "{body}");
    }
    assert_eq!(
        app.get_json(&path, Some(&t)).await,
        unversioned,
        "refused updates change nothing"
    );

    // A window may not end before it starts, whether both ends or one end changes.
    let (status, error) = send(app.patch(
        &path,
        &t,
        json!({"window_start": "2026-11-24T10:00:00Z", "window_end": "2026-11-24T09:00:00Z"}),
    ))
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(fields(&error), ["window_end"]);
    let (status, windowed) = send(app.patch(
        &path,
        &t,
        json!({"window_start": "2026-11-24T10:00:00Z", "window_end": "2026-11-24T12:00:00Z"}),
    ))
    .await;
    assert_eq!(status, 200, "{windowed}");
    let (status, error) =
        send(app.patch(&path, &t, json!({"window_end": "2026-11-24T09:00:00Z"}))).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(fields(&error), ["window_end"]);
    assert_eq!(app.get_json(&path, Some(&t)).await, windowed);
}

#[tokio::test]
async fn a_deleted_task_answers_404_everywhere_and_leaves_the_list() {
    let app = spawn_stack().await;
    let t = token("tenant-a", Some(Role::Dispatcher));
    let company = create_company(&app, &t, "Hill Farm").await;
    let ann = create_driver(&app, &t, json!({"name": "Ann"})).await;
    let task = create_task(
        &app,
        &t,
        &company,
        "Doomed",
        "2026-11-23",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    let kept = create_task(&app, &t, &company, "Kept", "2026-11-23", json!({})).await;
    let task_id = id(&task);
    let path = format!("/api/tasks/{task_id}");

    let (status, deleted) = send(app.delete(&path, &t)).await;
    assert_eq!(status, 200);
    assert_eq!(deleted, json!({"message": "Task deleted successfully"}));

    let (status, gone) = send(app.get(&path, &t)).await;
    assert_eq!(status, 404);
    assert_eq!(gone["detail"], "Task not found");
    assert_eq!(gone["code"], "NOT_FOUND");
    assert_eq!(app.get_json("/api/tasks", Some(&t)).await, json!([kept]));
    for answer in [
        send(app.delete(&path, &t)).await,
        send(app.patch(&path, &t, json!({"title": "back"}))).await,
        transition(
            &app,
            &t,
            &task_id,
            "assign",
            json!({"driver_id": ann["id"]}),
        )
        .await,
        transition(&app, &t, &task_id, "start", json!({})).await,
        transition(&app, &t, &task_id, "complete", json!({})).await,
        transition(&app, &t, &task_id, "cancel", json!({"reason": "r"})).await,
    ] {
        assert_eq!(answer.0, 404, "{}", answer.1);
        assert_eq!(answer.1["detail"], "Task not found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_and_cancels_of_one_task_leave_exactly_one_cancel() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let company = create_company(&app, &t, "Hill Farm").await;
    let ann = create_driver(&app, &t, json!({"name": "Ann"})).await;

    // Several rounds, each on a fresh assigned task, to give the race more chances.
    for round in 0..3 {
        let task = create_task(
            &app,
            &t,
            &company,
            &format!("Round {round}"),
            "2026-11-23",
            json!({"driver_id": ann["id"]}),
        )
        .await;
        let path = format!("/api/tasks/{}", id(&task));
        let requests = (0..12).map(|i| {
            let (verb, body) = if i % 2 == 0 {
                ("start", json!({}))
            } else {
                ("cancel", json!({"reason": format!("cancel {i}")}))
            };
            let request = app.post(&format!("{path}/{verb}"), &t, body);
            async move { (verb, send(request).await) }
        });
        let answers = futures::future::join_all(requests).await;

        let succeeded = |verb: &str| {
            answers
                .iter()
                .filter(|(v, (status, _))| *v == verb && *status == 200)
                .count()
        };
        assert_eq!(succeeded("cancel"), 1, "round {round}: {answers:?}");
        assert!(succeeded("start") <= 1, "round {round}: {answers:?}");
        for (verb, (status, body)) in &answers {
            assert!(
                *status < 500,
                "round {round}: {verb} answered {status}: {body}"
            );
            if *status != 200 {
                assert_eq!(
                    *status, PRECONDITION_FAILED,
                    "round {round}: {verb} refused with {body}"
                );
                let message = body["error"].as_str().unwrap();
                assert!(
                    message.contains("is in_progress") || message.contains("is cancelled"),
                    "round {round}: {verb}: {message:?} names the status"
                );
            }
        }
        let last = app.get_json(&path, Some(&t)).await;
        assert_eq!(last["status"], "cancelled", "round {round}");
        // Created assigned at version 1; every successful transition adds one.
        let expected_version = task["version"].as_u64().unwrap() + succeeded("start") as u64 + 1;
        assert_eq!(
            last["version"], expected_version,
            "round {round}: one change per success"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_with_the_same_version_let_exactly_one_through() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let company = create_company(&app, &t, "Hill Farm").await;
    let task = create_task(&app, &t, &company, "Collect", "2026-11-23", json!({})).await;
    let path = format!("/api/tasks/{}", id(&task));

    let requests = (0..8).map(|i| {
        let request = app.patch(
            &path,
            &t,
            json!({"title": format!("Edit {i}"), "version": 1}),
        );
        async move { send(request).await }
    });
    let answers = futures::future::join_all(requests).await;
    let winners: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, task)| task)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for (status, body) in &answers {
        assert!(*status == 200 || *status == 409, "{status}: {body}");
    }
    let last = app.get_json(&path, Some(&t)).await;
    assert_eq!(&last, winners[0], "the one accepted edit is the stored one");
    assert_eq!(last["version"], 2);
}

// ---------------------------------------------------------------------------------------------
// Roles and tenancy
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_driver_sees_their_own_record_and_tasks_and_only_starts_and_completes_them() {
    let app = spawn_stack().await;
    let admin = token("tenant-a", None);
    let company = create_company(&app, &admin, "Hill Farm").await;
    let ann = create_driver(&app, &admin, json!({"name": "Ann", "user_id": "ann-login"})).await;
    let bob = create_driver(&app, &admin, json!({"name": "Bob", "user_id": "bob-login"})).await;
    let for_ann = create_task(
        &app,
        &admin,
        &company,
        "For Ann",
        "2026-11-23",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    let for_bob = create_task(
        &app,
        &admin,
        &company,
        "For Bob",
        "2026-11-23",
        json!({"driver_id": bob["id"]}),
    )
    .await;
    let unassigned = create_task(&app, &admin, &company, "Nobody's", "2026-11-23", json!({})).await;
    let as_ann = token_for("ann-login", "tenant-a", Some(Role::Driver));
    let (ann_id, bob_id) = (id(&ann), id(&bob));
    let (ann_task, bob_task) = (id(&for_ann), id(&for_bob));

    // Drivers: their own record only; no writes.
    assert_eq!(
        app.get_json("/api/drivers", Some(&as_ann)).await,
        json!([ann])
    );
    assert_eq!(
        app.get_json(&format!("/api/drivers/{ann_id}"), Some(&as_ann))
            .await,
        ann
    );
    let (status, error) = send(app.get(&format!("/api/drivers/{bob_id}"), &as_ann)).await;
    assert_eq!(status, 404);
    assert_eq!(error["detail"], "Driver not found");
    for answer in [
        send(app.post("/api/drivers", &as_ann, json!({"name": "Me too"}))).await,
        send(app.patch(
            &format!("/api/drivers/{ann_id}"),
            &as_ann,
            json!({"name": "Queen Ann"}),
        ))
        .await,
        send(app.patch(
            &format!("/api/drivers/{bob_id}"),
            &as_ann,
            json!({"status": "inactive"}),
        ))
        .await,
        send(app.delete(&format!("/api/drivers/{ann_id}"), &as_ann)).await,
    ] {
        assert_eq!(answer.0, 403, "{}", answer.1);
        assert_eq!(answer.1["code"], "PERMISSION_DENIED");
    }

    // Tasks: only those assigned to them.
    assert_eq!(titles(&app, &as_ann, "").await, ["For Ann"]);
    assert!(
        titles(&app, &as_ann, &format!("?driver_id={bob_id}"))
            .await
            .is_empty(),
        "a filter does not widen what a driver sees"
    );
    assert_eq!(
        app.get_json(&format!("/api/tasks/{ann_task}"), Some(&as_ann))
            .await,
        for_ann
    );
    for other in [&bob_task, &id(&unassigned)] {
        let (status, error) = send(app.get(&format!("/api/tasks/{other}"), &as_ann)).await;
        assert_eq!(status, 404);
        assert_eq!(error["detail"], "Task not found");
    }
    for answer in [
        send(app.post(
            "/api/tasks",
            &as_ann,
            json!({"company_id": company, "title": "Mine", "scheduled_for": "2026-11-23"}),
        ))
        .await,
        transition(
            &app,
            &as_ann,
            &ann_task,
            "assign",
            json!({"driver_id": ann_id}),
        )
        .await,
        transition(
            &app,
            &as_ann,
            &id(&unassigned),
            "assign",
            json!({"driver_id": ann_id}),
        )
        .await,
        transition(
            &app,
            &as_ann,
            &ann_task,
            "cancel",
            json!({"reason": "tired"}),
        )
        .await,
        send(app.patch(
            &format!("/api/tasks/{ann_task}"),
            &as_ann,
            json!({"title": "x"}),
        ))
        .await,
        send(app.delete(&format!("/api/tasks/{ann_task}"), &as_ann)).await,
    ] {
        assert_eq!(answer.0, 403, "{}", answer.1);
        assert_eq!(answer.1["code"], "PERMISSION_DENIED");
    }

    // Someone else's task is not theirs to start or complete.
    for verb in ["start", "complete"] {
        let (status, error) = transition(&app, &as_ann, &bob_task, verb, json!({})).await;
        assert_eq!(status, 404, "{verb}: {error}");
        assert_eq!(error["detail"], "Task not found");
    }

    // Their own task they start and complete.
    let (status, started) = transition(&app, &as_ann, &ann_task, "start", json!({})).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "in_progress");
    let (status, completed) = transition(
        &app,
        &as_ann,
        &ann_task,
        "complete",
        json!({"volume_liters": 800}),
    )
    .await;
    assert_eq!(status, 200, "{completed}");
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["volume_liters"].as_f64(), Some(800.0));

    // Nothing Ann tried changed anyone else's records.
    assert_eq!(
        app.get_json(&format!("/api/tasks/{bob_task}"), Some(&admin))
            .await,
        for_bob
    );
    assert_eq!(
        app.get_json(&format!("/api/tasks/{}", id(&unassigned)), Some(&admin))
            .await,
        unassigned
    );
    assert_eq!(
        app.get_json("/api/drivers", Some(&admin)).await,
        json!([ann, bob])
    );
}

#[tokio::test]
async fn a_driver_token_that_matches_no_live_driver_sees_nothing() {
    let app = spawn_stack().await;
    let admin = token("tenant-a", None);
    let company = create_company(&app, &admin, "Hill Farm").await;
    let ann = create_driver(&app, &admin, json!({"name": "Ann", "user_id": "ann-login"})).await;
    let task = create_task(
        &app,
        &admin,
        &company,
        "For Ann",
        "2026-11-23",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    let stranger = token_for("nobody-login", "tenant-a", Some(Role::Driver));
    // The same login name in another tenant is another person.
    let ann_in_b = token_for("ann-login", "tenant-b", Some(Role::Driver));
    let as_ann = token_for("ann-login", "tenant-a", Some(Role::Driver));

    let assert_sees_nothing = |who: &'static str, token: String| {
        let app = &app;
        let (ann_id, task_id) = (id(&ann), id(&task));
        async move {
            assert_eq!(
                app.get_json("/api/drivers", Some(&token)).await,
                json!([]),
                "{who}"
            );
            assert_eq!(
                app.get_json("/api/tasks", Some(&token)).await,
                json!([]),
                "{who}"
            );
            for answer in [
                send(app.get(&format!("/api/drivers/{ann_id}"), &token)).await,
                send(app.get(&format!("/api/tasks/{task_id}"), &token)).await,
                transition(app, &token, &task_id, "start", json!({})).await,
                transition(app, &token, &task_id, "complete", json!({})).await,
            ] {
                assert_eq!(answer.0, 404, "{who}: {}", answer.1);
            }
        }
    };
    assert_sees_nothing("a stranger", stranger).await;
    assert_sees_nothing("Ann's login name in tenant B", ann_in_b).await;

    // Once Ann's record is deleted, her login is no one's.
    assert_eq!(titles(&app, &as_ann, "").await, ["For Ann"]);
    let (status, _) = send(app.delete(&format!("/api/drivers/{}", id(&ann)), &admin)).await;
    assert_eq!(status, 200);
    assert_sees_nothing("Ann after her record was deleted", as_ann).await;
    assert_eq!(
        app.get_json(&format!("/api/tasks/{}", id(&task)), Some(&admin))
            .await["status"],
        "assigned",
        "the task was not started"
    );
}

#[tokio::test]
async fn another_tenant_gets_404_for_drivers_and_tasks_on_every_route_and_empty_lists() {
    let app = spawn_stack().await;
    let a = token("tenant-a", None);
    let b = token("tenant-b", None);
    let company = create_company(&app, &a, "A's Farm").await;
    let ann = create_driver(&app, &a, json!({"name": "Ann"})).await;
    let task = create_task(
        &app,
        &a,
        &company,
        "A's collection",
        "2026-11-23",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    let bs_driver = create_driver(&app, &b, json!({"name": "Bea"})).await;
    let driver_path = format!("/api/drivers/{}", id(&ann));
    let task_id = id(&task);
    let task_path = format!("/api/tasks/{task_id}");

    for answer in [
        send(app.get(&driver_path, &b)).await,
        send(app.patch(&driver_path, &b, json!({"name": "Stolen"}))).await,
        send(app.delete(&driver_path, &b)).await,
    ] {
        assert_eq!(answer.0, 404, "{}", answer.1);
        assert_eq!(answer.1["detail"], "Driver not found");
    }
    for answer in [
        send(app.get(&task_path, &b)).await,
        send(app.patch(&task_path, &b, json!({"title": "Stolen"}))).await,
        transition(
            &app,
            &b,
            &task_id,
            "assign",
            json!({"driver_id": bs_driver["id"]}),
        )
        .await,
        transition(&app, &b, &task_id, "start", json!({})).await,
        transition(&app, &b, &task_id, "complete", json!({})).await,
        transition(&app, &b, &task_id, "cancel", json!({"reason": "mine now"})).await,
        send(app.delete(&task_path, &b)).await,
    ] {
        assert_eq!(answer.0, 404, "{}", answer.1);
        assert_eq!(answer.1["detail"], "Task not found");
    }
    assert_eq!(
        app.get_json("/api/drivers", Some(&b)).await,
        json!([bs_driver])
    );
    for query in [
        String::new(),
        format!("?driver_id={}", id(&ann)),
        format!("?company_id={company}"),
    ] {
        assert!(titles(&app, &b, &query).await.is_empty(), "{query}");
    }

    // B cannot hand its own task to A's driver either.
    let bs_company = create_company(&app, &b, "B's Farm").await;
    let bs_task = create_task(&app, &b, &bs_company, "B's", "2026-11-23", json!({})).await;
    let (status, error) = transition(
        &app,
        &b,
        &id(&bs_task),
        "assign",
        json!({"driver_id": ann["id"]}),
    )
    .await;
    assert_eq!(status, PRECONDITION_FAILED, "{error}");
    assert!(
        error["error"].as_str().unwrap().contains("driver_id"),
        "{error}"
    );

    assert_eq!(app.get_json(&driver_path, Some(&a)).await, ann);
    assert_eq!(app.get_json(&task_path, Some(&a)).await, task);
}

// ---------------------------------------------------------------------------------------------
// Listing tasks
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn task_lists_filter_by_status_driver_company_and_inclusive_days_and_paginate() {
    let app = spawn_stack().await;
    let t = token("tenant-a", None);
    let x = create_company(&app, &t, "X Farm").await;
    let y = create_company(&app, &t, "Y Farm").await;
    let d1 = id(&create_driver(&app, &t, json!({"name": "D1"})).await);
    let d2 = id(&create_driver(&app, &t, json!({"name": "D2"})).await);
    create_task(&app, &t, &x, "t1", "2026-11-20", json!({})).await;
    create_task(&app, &t, &x, "t2", "2026-11-21", json!({"driver_id": d1})).await;
    create_task(&app, &t, &y, "t3", "2026-11-22", json!({"driver_id": d2})).await;
    let t4 = create_task(&app, &t, &y, "t4", "2026-11-23", json!({})).await;
    let (status, _) = transition(&app, &t, &id(&t4), "cancel", json!({"reason": "closed"})).await;
    assert_eq!(status, 200);
    // Created last but scheduled earlier: the list is by day, then creation.
    create_task(&app, &t, &x, "t5", "2026-11-21", json!({})).await;

    let cases = [
        (String::new(), vec!["t1", "t2", "t5", "t3", "t4"]),
        ("?status=pending".to_owned(), vec!["t1", "t5"]),
        ("?status=assigned".to_owned(), vec!["t2", "t3"]),
        ("?status=cancelled".to_owned(), vec!["t4"]),
        ("?status=completed".to_owned(), vec![]),
        (format!("?driver_id={d1}"), vec!["t2"]),
        (format!("?company_id={y}"), vec!["t3", "t4"]),
        (format!("?company_id={x}&status=pending"), vec!["t1", "t5"]),
        (
            "?from=2026-11-21&to=2026-11-22".to_owned(),
            vec!["t2", "t5", "t3"],
        ),
        ("?from=2026-11-22".to_owned(), vec!["t3", "t4"]),
        ("?to=2026-11-20".to_owned(), vec!["t1"]),
        ("?from=2026-11-24".to_owned(), vec![]),
        ("?skip=1&limit=2".to_owned(), vec!["t2", "t5"]),
        ("?skip=4".to_owned(), vec!["t4"]),
        ("?limit=1000".to_owned(), vec!["t1", "t2", "t5", "t3", "t4"]),
    ];
    for (query, expected) in cases {
        assert_eq!(titles(&app, &t, &query).await, expected, "{query}");
    }

    for (query, field) in [
        ("?from=2026-13-01", "from"),
        ("?to=yesterday", "to"),
        ("?driver_id=d1", "driver_id"),
        ("?company_id=42", "company_id"),
        ("?skip=-1", "skip"),
        ("?limit=0", "limit"),
    ] {
        let (status, error) = send(app.get(&format!("/api/tasks{query}"), &t)).await;
        assert_eq!(status, 400, "{query}: {error}");
        assert_eq!(fields(&error), [field], "{query}");
    }
    let (status, error) = send(app.get("/api/tasks?status=lost", &t)).await;
    assert_eq!(status, 400, "an unknown status: {error}");
    assert_eq!(fields(&error), ["status"]);
}
