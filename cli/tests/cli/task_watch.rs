//! `WatchTasks` end to end through the gateway, on every protocol a client may use: Server-Sent
//! Events over REST, native gRPC and gRPC-Web. Events arrive live, only for the watcher's
//! tenant (and, for a driver, only for their tasks); a client that reconnects with the last
//! event id it saw misses nothing; streams end when Dispatch shuts down.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::sse::SseStream;
use common::{TestStack, spawn_stack, token, token_for};
use director_platform::identity::Role;
use director_proto::dispatch::tasks_service_client::TasksServiceClient;
use director_proto::dispatch::{TaskEventKind, WatchTasksRequest, WatchTasksResponse};
use prost::Message;
use serde_json::{Value, json};
use tonic::codec::Streaming;

/// How long a live event may take to reach a watcher.
const LIVE: Duration = Duration::from_secs(1);

/// A company, and a pending task at it, of `token`'s tenant.
async fn create_task(app: &TestStack, token: &str, title: &str) -> Value {
    let company = app
        .create_company(token, json!({"name": format!("Farm for {title}")}))
        .await;
    let response = app
        .post(
            "/api/tasks",
            token,
            json!({"company_id": company["id"], "title": title, "scheduled_for": "2026-11-23"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn create_driver(app: &TestStack, token: &str, body: Value) -> Value {
    let response = app.post("/api/drivers", token, body).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn assign(app: &TestStack, token: &str, task: &Value, driver: &Value) {
    let response = app
        .post(
            &format!("/api/tasks/{}/assign", task["id"].as_str().unwrap()),
            token,
            json!({"driver_id": driver["id"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// A native gRPC `WatchTasks` call through the gateway.
async fn grpc_watch(app: &TestStack, token: &str, after: &str) -> Streaming<WatchTasksResponse> {
    let channel = tonic::transport::Channel::from_shared(app.base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(WatchTasksRequest {
        after_event_id: after.to_owned(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    TasksServiceClient::new(channel)
        .watch_tasks(request)
        .await
        .unwrap()
        .into_inner()
}

async fn next_grpc(stream: &mut Streaming<WatchTasksResponse>) -> WatchTasksResponse {
    tokio::time::timeout(LIVE, stream.message())
        .await
        .expect("no event within a second")
        .unwrap()
        .expect("the stream ended")
}

#[tokio::test]
async fn an_sse_watcher_sees_created_and_assigned_live_and_another_tenant_sees_nothing() {
    let app = spawn_stack().await;
    let dairy = token("dairy", None);
    let rival = token("rival", None);
    let mut watcher = SseStream::open(&app, "/api/tasks/watch", &dairy, None).await;
    let mut outsider = SseStream::open(&app, "/api/tasks/watch", &rival, None).await;

    let task = create_task(&app, &dairy, "Morning collection").await;
    let created = watcher.next(LIVE).await.expect("created within a second");
    assert_eq!(created.data["kind"], "created");
    assert_eq!(created.data["task"]["id"], task["id"]);
    assert_eq!(created.data["task"]["status"], "pending");

    let driver = create_driver(&app, &dairy, json!({"name": "Ann"})).await;
    assign(&app, &dairy, &task, &driver).await;
    let assigned = watcher.next(LIVE).await.expect("assigned within a second");
    assert_eq!(assigned.data["kind"], "assigned");
    assert_eq!(assigned.data["task"]["driver_id"], driver["id"]);
    assert_eq!(assigned.data["task"]["status"], "assigned");
    assert_eq!(assigned.data["task"]["version"], 2);

    // SSE ids are the event ids, increasing.
    let first: i64 = created.id.clone().unwrap().parse().unwrap();
    let second: i64 = assigned.id.clone().unwrap().parse().unwrap();
    assert!(second > first, "{first} then {second}");
    assert_eq!(assigned.data["event_id"], assigned.id.unwrap());

    assert!(
        outsider.next(Duration::from_millis(1500)).await.is_none(),
        "another tenant's watcher saw an event"
    );
}

#[tokio::test]
async fn an_sse_client_reconnecting_with_last_event_id_or_after_event_id_misses_nothing() {
    let app = spawn_stack().await;
    let dairy = token("dairy", None);
    let mut watcher = SseStream::open(&app, "/api/tasks/watch", &dairy, None).await;
    let first = create_task(&app, &dairy, "first").await;
    let seen = watcher.next(LIVE).await.unwrap();
    assert_eq!(seen.data["task"]["id"], first["id"]);
    drop(watcher);

    // While nobody watches, two more tasks.
    let second = create_task(&app, &dairy, "second").await;
    let third = create_task(&app, &dairy, "third").await;

    let last_id = seen.id.unwrap();
    let mut resumed = SseStream::open(&app, "/api/tasks/watch", &dairy, Some(&last_id)).await;
    for expected in [&second, &third] {
        let event = resumed.next(LIVE).await.expect("a missed event");
        assert_eq!(event.data["task"]["id"], expected["id"]);
    }
    // ...and then live ones.
    let fourth = create_task(&app, &dairy, "fourth").await;
    assert_eq!(
        resumed.next(LIVE).await.unwrap().data["task"]["id"],
        fourth["id"]
    );

    // The query parameter does the same.
    let path = format!("/api/tasks/watch?after_event_id={last_id}");
    let mut by_query = SseStream::open(&app, &path, &dairy, None).await;
    for expected in [&second, &third, &fourth] {
        assert_eq!(
            by_query.next(LIVE).await.unwrap().data["task"]["id"],
            expected["id"]
        );
    }

    let response = app
        .get("/api/tasks/watch?after_event_id=yesterday", &dairy)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["fields"][0]["field"], "after_event_id", "{body}");
}

#[tokio::test]
async fn a_native_grpc_watcher_resumes_after_the_last_event_id_without_a_gap() {
    let app = spawn_stack().await;
    let dairy = token("dairy", None);
    let mut stream = grpc_watch(&app, &dairy, "").await;
    let first = create_task(&app, &dairy, "first").await;
    let event = next_grpc(&mut stream).await;
    assert_eq!(event.kind(), TaskEventKind::Created);
    assert_eq!(
        event.task.as_ref().unwrap().id,
        first["id"].as_str().unwrap()
    );
    drop(stream);

    let missed: Vec<Value> =
        futures::future::join_all(["a", "b", "c"].map(|title| create_task(&app, &dairy, title)))
            .await;
    let mut resumed = grpc_watch(&app, &dairy, &event.event_id).await;
    let mut received = Vec::new();
    for _ in 0..missed.len() {
        received.push(next_grpc(&mut resumed).await);
    }
    let mut received_ids: Vec<String> = received
        .iter()
        .map(|event| event.task.as_ref().unwrap().id.clone())
        .collect();
    let mut missed_ids: Vec<String> = missed
        .iter()
        .map(|task| task["id"].as_str().unwrap().to_owned())
        .collect();
    received_ids.sort();
    missed_ids.sort();
    assert_eq!(received_ids, missed_ids);
    let event_ids: Vec<i64> = received
        .iter()
        .map(|event| event.event_id.parse().unwrap())
        .collect();
    assert!(
        event_ids.windows(2).all(|pair| pair[0] < pair[1]),
        "{event_ids:?}"
    );
}

#[tokio::test]
async fn a_driver_watching_sees_only_events_of_tasks_assigned_to_them() {
    let app = spawn_stack().await;
    let admin = token("dairy", None);
    let ann = create_driver(&app, &admin, json!({"name": "Ann", "user_id": "ann-login"})).await;
    let bob = create_driver(&app, &admin, json!({"name": "Bob", "user_id": "bob-login"})).await;
    let ann_token = token_for("ann-login", "dairy", Some(Role::Driver));
    let mut ann_watch = SseStream::open(&app, "/api/tasks/watch", &ann_token, None).await;

    let for_bob = create_task(&app, &admin, "for Bob").await;
    assign(&app, &admin, &for_bob, &bob).await;
    let for_ann = create_task(&app, &admin, "for Ann").await;
    assign(&app, &admin, &for_ann, &ann).await;

    let event = ann_watch.next(LIVE).await.expect("Ann's assignment");
    assert_eq!(event.data["kind"], "assigned", "{}", event.data);
    assert_eq!(event.data["task"]["id"], for_ann["id"]);
    assert!(
        ann_watch.next(Duration::from_millis(800)).await.is_none(),
        "Ann saw an event of someone else's task"
    );
}

/// gRPC-Web frames: a flag byte (0 data, 0x80 trailers), a 4-byte big-endian length, the
/// payload.
fn grpc_web_frame(message: &impl Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut frame = vec![0];
    frame.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(&payload);
    frame
}

#[tokio::test]
async fn a_grpc_web_watcher_receives_events_as_binary_frames() {
    let app = spawn_stack().await;
    let dairy = token("dairy", None);
    let mut response = app
        .http
        .post(app.url("/director.dispatch.v1.TasksService/WatchTasks"))
        .bearer_auth(&dairy)
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(grpc_web_frame(&WatchTasksRequest::default()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let task = create_task(&app, &dairy, "over gRPC-Web").await;

    let mut buffer: Vec<u8> = Vec::new();
    let event = tokio::time::timeout(LIVE, async {
        loop {
            if buffer.len() >= 5 {
                let length = u32::from_be_bytes(buffer[1..5].try_into().unwrap()) as usize;
                if buffer.len() >= 5 + length {
                    assert_eq!(buffer[0], 0, "a data frame comes first");
                    return WatchTasksResponse::decode(&buffer[5..5 + length]).unwrap();
                }
            }
            let chunk = response.chunk().await.unwrap().expect("the stream ended");
            buffer.extend_from_slice(&chunk);
        }
    })
    .await
    .expect("no gRPC-Web event within a second");
    assert_eq!(event.kind(), TaskEventKind::Created);
    assert_eq!(event.task.unwrap().id, task["id"].as_str().unwrap());
}

#[tokio::test]
async fn open_streams_end_cleanly_when_dispatch_shuts_down() {
    let app = spawn_stack().await;
    let dairy = token("dairy", None);
    let mut sse = SseStream::open(&app, "/api/tasks/watch", &dairy, None).await;
    let mut grpc = grpc_watch(&app, &dairy, "").await;
    create_task(&app, &dairy, "before shutdown").await;
    assert!(sse.next(LIVE).await.is_some());
    next_grpc(&mut grpc).await;

    app.stack.stop_service("dispatch").unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(3), grpc.message())
        .await
        .expect("the gRPC stream did not end within 3 s");
    assert!(
        matches!(ended, Ok(None)),
        "the gRPC stream ended with {ended:?} instead of OK"
    );
    assert!(
        sse.ends_within(Duration::from_secs(3)).await,
        "the SSE stream did not end within 3 s"
    );
    assert!(!sse.buffer.contains("event: error"), "{}", sse.buffer);
}
