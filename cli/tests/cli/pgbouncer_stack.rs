//! The whole stack — gateway and the three services — behind a real pgbouncer in
//! `pool_mode = transaction` (issue 20, point 5), with fewer server connections per database
//! (`default_pool_size` 2) than each service opens client connections, as Supabase's pooler
//! or a pgbouncer in front of a small database gives them: request traffic goes through
//! pgbouncer (`DB_PGBOUNCER_TRANSACTION_MODE`), LISTEN and the job workers through each
//! service's session URL (`<SERVICE>_SESSION_DATABASE_URL`), PostgreSQL directly.
//!
//! CRUD through REST (concurrently, so clients share server connections), a task watch
//! (Server-Sent Events), a collections import from the fake Vessey, and the SMS and Slack
//! notifications the relay triggers all succeed.
//!
//! Without the session URLs the stack does not start (the configuration is refused); were
//! that check gone, the listeners would be pgbouncer's: the watch would see its event only
//! at the hub's 10 s poll (this test allows 5 s), and the workers' named statements would
//! collide on shared server connections (`platform/store/tests/store/pgbouncer.rs` shows both).

#![allow(clippy::unwrap_used)]

use crate::common;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use common::sse::SseStream;
use common::{TestStack, spawn_stack_with_fakes_behind_pgbouncer, token};
use director_store::roles::{DEV_SERVICE_PASSWORD, SERVICE_ROLE};
use director_store::testing::eventually;
use director_store::testing::pgbouncer::{BouncerSettings, PgBouncer};
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;

/// Server connections pgbouncer keeps per database (each service opens up to 10 clients).
const SERVER_CONNECTIONS: u32 = 2;
/// How long a live event may take to reach a watcher here: well under the hub's poll
/// (`POLL_INTERVAL`, 10 s), so only a notification delivers it in time.
const LIVE: Duration = Duration::from_secs(5);
/// A day the fake Vessey has collections for (it has them for any day).
const DAY: &str = "2026-11-23";

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The names of the services' databases, from their session URLs.
fn service_databases(stack: &TestStack) -> Vec<String> {
    stack
        .env
        .iter()
        .filter(|(name, _)| name.ends_with("_SESSION_DATABASE_URL"))
        .map(|(_, url)| {
            PgConnectOptions::from_str(url)
                .unwrap()
                .get_database()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Backends per database of the stack's services that serve request traffic (not the
/// session pools, named `director-<service>-session`).
async fn request_backends(stack: &TestStack) -> BTreeMap<String, i64> {
    let server = sqlx::PgPool::connect(&common::server_url()).await.unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT datname::text, count(*) FROM pg_stat_activity
         WHERE datname = ANY($1) AND application_name NOT LIKE '%-session'
         GROUP BY datname",
    )
    .bind(service_databases(stack))
    .fetch_all(&server)
    .await
    .unwrap();
    server.close().await;
    rows.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_stack_works_behind_pgbouncer_in_transaction_mode() {
    let bouncer = PgBouncer::start(
        &common::server_url(),
        &[(SERVICE_ROLE, DEV_SERVICE_PASSWORD)],
        &BouncerSettings {
            default_pool_size: SERVER_CONNECTIONS,
            ..BouncerSettings::default()
        },
    )
    .await;
    let (stack, fakes) = spawn_stack_with_fakes_behind_pgbouncer(&[], &bouncer).await;
    let admin = token("pgbouncer-dairy", None);

    // CRUD: twenty companies created at once (more clients than server connections), each
    // read, listed, patched and one deleted.
    let created: Vec<Value> = futures::future::join_all((0..20).map(|n| {
        let (stack, admin) = (&stack, &admin);
        async move {
            let (status, company) = send(stack.post(
                "/api/companies",
                admin,
                json!({"name": format!("Farm {n:02}")}),
            ))
            .await;
            assert_eq!(status, 200, "{company}");
            company
        }
    }))
    .await;
    let reads = futures::future::join_all(created.iter().map(|company| {
        send(stack.get(
            &format!("/api/companies/{}", company["id"].as_str().unwrap()),
            &admin,
        ))
    }))
    .await;
    for (company, (status, read)) in created.iter().zip(reads) {
        assert_eq!(status, 200, "{read}");
        assert_eq!(&read, company);
    }
    let (status, list) = send(stack.get("/api/companies?limit=100", &admin)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 20, "{list}");
    let first = created[0]["id"].as_str().unwrap().to_owned();
    let (status, patched) = send(stack.patch(
        &format!("/api/companies/{first}"),
        &admin,
        json!({"address": "1 Farm Road"}),
    ))
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["address"], "1 Farm Road");
    let last = created[19]["id"].as_str().unwrap();
    let (status, deleted) = send(stack.delete(&format!("/api/companies/{last}"), &admin)).await;
    assert_eq!(status, 200, "{deleted}");
    let (status, _) = send(stack.get(&format!("/api/companies/{last}"), &admin)).await;
    assert_eq!(status, 404);
    // The requests went through pgbouncer: no more server connections than it keeps.
    for (database, backends) in request_backends(&stack).await {
        assert!(
            backends <= i64::from(SERVER_CONNECTIONS),
            "{database} has {backends} request backends; pgbouncer keeps {SERVER_CONNECTIONS}"
        );
    }

    // A task watch: the watcher sees a task created and assigned, live.
    let mut watcher = SseStream::open(&stack, "/api/tasks/watch", &admin, None).await;
    let (status, driver) = send(stack.post(
        "/api/drivers",
        &admin,
        json!({"name": "Ada", "phone": "+15550100042"}),
    ))
    .await;
    assert_eq!(status, 200, "{driver}");
    let (status, task) = send(stack.post(
        "/api/tasks",
        &admin,
        json!({"company_id": first, "title": "Morning pickup", "scheduled_for": DAY}),
    ))
    .await;
    assert_eq!(status, 200, "{task}");
    let seen = watcher
        .next(LIVE)
        .await
        .expect("the created event within 5 s (a notification, not the 10 s poll)");
    assert_eq!(seen.data["kind"], "created", "{:?}", seen.data);
    assert_eq!(seen.data["task"]["id"], task["id"]);
    let task_path = format!("/api/tasks/{}", task["id"].as_str().unwrap());
    let (status, body) = send(stack.post(
        &format!("{task_path}/assign"),
        &admin,
        json!({"driver_id": driver["id"]}),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let seen = watcher
        .next(LIVE)
        .await
        .expect("the assigned event within 5 s");
    assert_eq!(seen.data["kind"], "assigned", "{:?}", seen.data);

    // Notifications: the relay (Dispatch's worker) tells Integrations, whose worker texts
    // the driver; completing the task posts to Slack.
    let texts = eventually("the driver's SMS", || async {
        let texts = fakes.twilio.received();
        (!texts.is_empty()).then_some(texts)
    })
    .await;
    assert_eq!(texts[0].form_field("To"), Some("+15550100042"));
    for step in ["start", "complete"] {
        let (status, body) =
            send(stack.post(&format!("{task_path}/{step}"), &admin, json!({}))).await;
        assert_eq!(status, 200, "{step}: {body}");
    }
    eventually("the Slack message", || async {
        (!fakes.slack.received().is_empty()).then_some(())
    })
    .await;

    // An import job: Integrations' worker fetches the fake Vessey's collections and upserts
    // them into Dispatch and Companies.
    let (status, job) = send(stack.post(
        "/api/integrations/vessey/collections:import",
        &admin,
        json!({"date": DAY}),
    ))
    .await;
    assert_eq!(status, 200, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let job = eventually("the import to finish", || async {
        let (_, job) = send(stack.get(&format!("/api/integrations/jobs/{id}"), &admin)).await;
        matches!(job["status"].as_str(), Some("succeeded" | "dead")).then_some(job)
    })
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let imported = job["result"]["created"].as_i64().unwrap();
    assert!(imported > 0, "{job}");
    let (status, tasks) = send(stack.get("/api/tasks?limit=500", &admin)).await;
    assert_eq!(status, 200, "{tasks}");
    assert_eq!(
        tasks.as_array().unwrap().len(),
        usize::try_from(imported).unwrap() + 1,
        "the imported tasks and the one created by hand"
    );

    drop(watcher);
    stack.stack.stop().await.unwrap();
    drop(bouncer);
}
