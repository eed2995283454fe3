//! The task-event relay to Integrations: the events that notify reach the sink in order, at
//! least once, and nothing is lost while the sink is down — the relay job is retried until it
//! gets through, and the cursor moves only past acknowledged events.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use director_platform::config::Env;
use director_platform::identity::{Caller, Role, caller};
use director_proto::dispatch::TaskEventKind;
use director_proto::internal::integrations::task_event_sink_service_server::{
    TaskEventSinkService, TaskEventSinkServiceServer,
};
use director_proto::internal::integrations::{DeliverTaskEventsRequest, DeliverTaskEventsResponse};
use director_store::db::DatabaseConfig;
use director_store::tenant;
use director_store::testing::{fresh_database, spawn_service_on};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::rows::driver_and_task;

/// A stand-in Integrations that records what it is sent, refusing the first `refuse` calls.
#[derive(Clone, Default)]
struct RecordingSink {
    received: Arc<Mutex<Vec<(String, String, TaskEventKind)>>>,
    refuse: Arc<Mutex<usize>>,
}

#[tonic::async_trait]
impl TaskEventSinkService for RecordingSink {
    async fn deliver_task_events(
        &self,
        request: Request<DeliverTaskEventsRequest>,
    ) -> Result<Response<DeliverTaskEventsResponse>, Status> {
        {
            let mut refuse = self.refuse.lock().unwrap();
            if *refuse > 0 {
                *refuse -= 1;
                return Err(Status::unavailable("not yet"));
            }
        }
        let tenant = String::from(caller(&request)?.tenant_id);
        let events = request.into_inner().events;
        let mut received = self.received.lock().unwrap();
        for event in &events {
            let kind = TaskEventKind::try_from(event.event_kind).unwrap();
            received.push((tenant.clone(), event.event_id.clone(), kind));
        }
        Ok(Response::new(DeliverTaskEventsResponse {
            consumed: i32::try_from(events.len()).unwrap(),
            duplicates: 0,
        }))
    }
}

/// Serves `sink` on `addr` with the platform's internal auth, until the test ends.
async fn serve_sink(addr: SocketAddr, sink: RecordingSink) {
    let tokens = Arc::new(director_platform::identity::InternalTokens::new(
        &director_store::testing::INTERNAL_SECRET.into(),
        Duration::from_secs(60),
    ));
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(director_platform::identity::InternalAuthLayer::new(tokens))
            .add_service(TaskEventSinkServiceServer::new(sink))
            .serve(addr),
    );
}

async fn write_events(pool: &PgPool, url: &str, tenant: &str) {
    let config = DatabaseConfig::from_env(
        &Env::from_pairs([("DISPATCH_DATABASE_URL", url)]),
        "dispatch",
    )
    .unwrap();
    let caller = Caller::new("user", tenant, Role::Admin);
    let mut tx = tenant::begin(pool, &caller, &config).await.unwrap();
    let (driver, task) = driver_and_task(&mut tx, tenant).await;
    tx.commit().await.unwrap();
    // Three transitions in three transactions: assigned, started (not relayed), cancelled.
    for change in [
        "UPDATE tasks SET status = 'assigned', driver_id = $2 WHERE id = $1",
        "UPDATE tasks SET status = 'in_progress' WHERE id = $1 AND $2::uuid IS NOT NULL",
        "UPDATE tasks SET status = 'cancelled', cancel_reason = 'rain' WHERE id = $1 AND $2::uuid IS NOT NULL",
    ] {
        let mut tx = tenant::begin(pool, &caller, &config).await.unwrap();
        sqlx::query(change)
            .bind(task)
            .bind(driver)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn events_written_while_integrations_is_down_are_delivered_in_order_once_it_is_up() {
    let url = fresh_database("dispatch").await;
    let sink_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let sink_url = format!("http://{sink_addr}");
    let _dispatch = spawn_service_on(
        &director_dispatch::SERVICE,
        url.clone(),
        &[
            ("INTEGRATIONS_URL", sink_url.as_str()),
            ("JOB_POLL_INTERVAL_MS", "100"),
        ],
    )
    .await;
    let pool = PgPool::connect(&url).await.unwrap();
    write_events(&pool, &url, "dairy").await;
    write_events(&pool, &url, "creamery").await;

    // Integrations is down for the first attempts; then up, refusing once more.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sink = RecordingSink::default();
    *sink.refuse.lock().unwrap() = 1;
    serve_sink(sink_addr, sink.clone()).await;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        if sink.received.lock().unwrap().len() >= 4 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not delivered: {:?}",
            sink.received.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let any duplicate run show up before judging.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = sink.received.lock().unwrap().clone();
    for tenant in ["dairy", "creamery"] {
        let kinds: Vec<TaskEventKind> = received
            .iter()
            .filter(|(t, _, _)| t == tenant)
            .map(|(_, _, kind)| *kind)
            .collect();
        assert_eq!(
            kinds,
            [TaskEventKind::Assigned, TaskEventKind::Cancelled],
            "{tenant}: {received:?}"
        );
        let ids: Vec<i64> = received
            .iter()
            .filter(|(t, _, _)| t == tenant)
            .map(|(_, id, _)| id.parse().unwrap())
            .collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
    }
    let (cursors,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM task_event_relay WHERE last_event_id > 0")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(cursors, 2, "each tenant's cursor moved past its events");
}
