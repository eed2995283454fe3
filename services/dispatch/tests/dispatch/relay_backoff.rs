//! The relay's backoff and sweep (issue 17, item 5), against a stand-in Integrations and the
//! real database:
//! - a failing relay retries after a delay that doubles up to its cap and never exceeds it,
//!   for as long as it fails;
//! - events written while it waits fold into its waiting job without bringing it forward;
//! - a tenant whose relay job died (out of attempts, or gone) has its events relayed by the
//!   periodic sweep, with no new event;
//! - the cap may not be set above a minute.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use director_dispatch::relay::{MAX_RETRY_DELAY, RelayConfig};
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
use uuid::Uuid;

use crate::rows::driver_and_task;

/// A stand-in Integrations: records when it is called and what it accepts; refuses every
/// call while `refusing`.
#[derive(Clone)]
struct Sink {
    calls: Arc<Mutex<Vec<Instant>>>,
    received: Arc<Mutex<Vec<(String, TaskEventKind)>>>,
    refusing: bool,
}

impl Sink {
    fn new(refusing: bool) -> Self {
        Self {
            calls: Arc::default(),
            received: Arc::default(),
            refusing,
        }
    }

    fn calls(&self) -> Vec<Instant> {
        self.calls.lock().unwrap().clone()
    }

    fn received(&self) -> Vec<(String, TaskEventKind)> {
        self.received.lock().unwrap().clone()
    }
}

#[tonic::async_trait]
impl TaskEventSinkService for Sink {
    async fn deliver_task_events(
        &self,
        request: Request<DeliverTaskEventsRequest>,
    ) -> Result<Response<DeliverTaskEventsResponse>, Status> {
        self.calls.lock().unwrap().push(Instant::now());
        if self.refusing {
            return Err(Status::unavailable("down for the test"));
        }
        let tenant = String::from(caller(&request)?.tenant_id);
        let events = request.into_inner().events;
        let mut received = self.received.lock().unwrap();
        for event in &events {
            received.push((
                tenant.clone(),
                TaskEventKind::try_from(event.event_kind).unwrap(),
            ));
        }
        Ok(Response::new(DeliverTaskEventsResponse {
            consumed: i32::try_from(events.len()).unwrap(),
            duplicates: 0,
        }))
    }
}

/// Serves `sink` on a free port with the platform's internal auth; answers its URL.
async fn serve(sink: Sink) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let tokens = Arc::new(director_platform::identity::InternalTokens::new(
        &director_store::testing::INTERNAL_SECRET.into(),
        Duration::from_secs(60),
    ));
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(director_platform::identity::InternalAuthLayer::new(tokens))
            .add_service(TaskEventSinkServiceServer::new(sink))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

/// Writes task changes in tenant transactions, as the service does (the database's owner,
/// switched to the application role).
struct Writer {
    pool: PgPool,
    config: DatabaseConfig,
}

impl Writer {
    async fn new(url: &str) -> Self {
        Self {
            pool: PgPool::connect(url).await.unwrap(),
            config: DatabaseConfig::from_env(
                &Env::from_pairs([("DISPATCH_DATABASE_URL", url)]),
                "dispatch",
            )
            .unwrap(),
        }
    }

    async fn begin(&self, tenant: &str) -> sqlx::Transaction<'static, sqlx::Postgres> {
        let caller = Caller::new("user", tenant, Role::Admin);
        tenant::begin(&self.pool, &caller, &self.config)
            .await
            .unwrap()
    }

    /// A task of `tenant` assigned to a new driver: one event that notifies (`assigned`).
    async fn assign(&self, tenant: &str) -> Uuid {
        let mut tx = self.begin(tenant).await;
        let (driver, task) = driver_and_task(&mut tx, tenant).await;
        tx.commit().await.unwrap();
        let mut tx = self.begin(tenant).await;
        sqlx::query("UPDATE tasks SET status = 'assigned', driver_id = $2 WHERE id = $1")
            .bind(task)
            .bind(driver)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        task
    }

    /// Cancels `task`: another event that notifies.
    async fn cancel(&self, tenant: &str, task: Uuid) {
        let mut tx = self.begin(tenant).await;
        sqlx::query("UPDATE tasks SET status = 'cancelled', cancel_reason = 'rain' WHERE id = $1")
            .bind(task)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

/// `tenant`'s relay jobs not running: id, seconds until due, attempts.
async fn waiting_relay_jobs(pool: &PgPool, tenant: &str) -> Vec<(i64, f64, i16)> {
    sqlx::query_as(
        "SELECT j.id, EXTRACT(EPOCH FROM j.run_at - now())::float8, j.attempts
         FROM graphile_worker._private_jobs j
         JOIN graphile_worker._private_tasks t ON t.id = j.task_id
         WHERE t.identifier = 'dispatch_relay_task_events'
           AND j.payload ->> 'tenant_id' = $1 AND j.locked_at IS NULL
           AND j.attempts < j.max_attempts
         ORDER BY j.id",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn wait_for(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_relay_backs_off_to_its_cap_and_new_events_do_not_bring_it_forward() {
    let url = fresh_database("dispatch").await;
    let sink = Sink::new(true);
    let sink_url = serve(sink.clone()).await;
    let _dispatch = spawn_service_on(
        &director_dispatch::SERVICE,
        url.clone(),
        &[
            ("INTEGRATIONS_URL", sink_url.as_str()),
            ("JOB_POLL_INTERVAL_MS", "100"),
            ("RELAY_RETRY_BASE_MS", "200"),
            ("RELAY_RETRY_MAX_MS", "1600"),
        ],
    )
    .await;
    let writer = Writer::new(&url).await;
    writer.assign("dairy").await;

    // 200, 400, 800, then 1600 ms apart, for as long as it fails.
    wait_for("seven attempts", Duration::from_secs(40), async || {
        sink.calls().len() >= 7
    })
    .await;
    let calls = sink.calls();
    let gaps: Vec<Duration> = calls.windows(2).map(|pair| pair[1] - pair[0]).collect();
    assert!(gaps[0] < Duration::from_millis(1_000), "{gaps:?}");
    for gap in &gaps {
        assert!(
            *gap < Duration::from_millis(2_600),
            "over the cap: {gaps:?}"
        );
    }
    for gap in &gaps[4..] {
        assert!(
            *gap > Duration::from_millis(1_300),
            "not backing off: {gaps:?}"
        );
    }
    let (failures, last_error): (i32, Option<String>) = sqlx::query_as(
        "SELECT failures, last_error FROM task_event_relay WHERE tenant_id = 'dairy'",
    )
    .fetch_one(&writer.pool)
    .await
    .unwrap();
    assert!(failures >= 6, "{failures}");
    assert!(
        last_error
            .as_deref()
            .unwrap_or_default()
            .contains("down for the test"),
        "{last_error:?}"
    );

    // Just after a failure the next attempt is a waiting job, never attempted, due within
    // the cap. Events written now fold into it and leave it due when it was.
    let mut waiting = Vec::new();
    wait_for(
        "a relay job waiting out its delay",
        Duration::from_secs(10),
        async || {
            waiting = waiting_relay_jobs(&writer.pool, "dairy").await;
            waiting.len() == 1 && waiting[0].1 > 1.0
        },
    )
    .await;
    let (job, due_in, attempts) = waiting[0];
    assert_eq!(attempts, 0);
    assert!(due_in <= 1.6, "due in {due_in} s");
    let calls_before = sink.calls().len();
    let task = writer.assign("dairy").await;
    writer.cancel("dairy", task).await;
    let after = waiting_relay_jobs(&writer.pool, "dairy").await;
    assert_eq!(after.len(), 1, "{after:?}");
    let (same_job, still_due_in, attempts) = after[0];
    assert_eq!((same_job, attempts), (job, 0));
    assert!(
        still_due_in > 0.3 && still_due_in <= due_in,
        "moved from {due_in} s to {still_due_in} s"
    );
    let due = Instant::now() + Duration::from_secs_f64(still_due_in);
    wait_for("the next attempt", Duration::from_secs(10), async || {
        sink.calls().len() > calls_before
    })
    .await;
    let next = sink.calls()[calls_before];
    assert!(
        next + Duration::from_millis(150) >= due,
        "tried {:?} before it was due",
        due - next
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_whose_relay_job_died_is_relayed_by_the_sweep_without_a_new_event() {
    let url = fresh_database("dispatch").await;
    let writer = Writer::new(&url).await;
    for tenant in ["dairy", "creamery"] {
        let task = writer.assign(tenant).await;
        writer.cancel(tenant, task).await;
    }
    // Before any worker runs them: dairy's job spent its attempts, creamery's is gone.
    let killed = sqlx::query(
        "UPDATE graphile_worker._private_jobs SET attempts = max_attempts, last_error = 'killed'
         WHERE payload ->> 'tenant_id' = 'dairy'",
    )
    .execute(&writer.pool)
    .await
    .unwrap();
    assert_eq!(killed.rows_affected(), 1);
    let removed = sqlx::query(
        "DELETE FROM graphile_worker._private_jobs WHERE payload ->> 'tenant_id' = 'creamery'",
    )
    .execute(&writer.pool)
    .await
    .unwrap();
    assert_eq!(removed.rows_affected(), 1);

    let sink = Sink::new(false);
    let sink_url = serve(sink.clone()).await;
    let _dispatch = spawn_service_on(
        &director_dispatch::SERVICE,
        url.clone(),
        &[
            ("INTEGRATIONS_URL", sink_url.as_str()),
            ("JOB_POLL_INTERVAL_MS", "100"),
            ("RELAY_SWEEP_INTERVAL_MS", "300"),
        ],
    )
    .await;
    wait_for(
        "both tenants' events",
        Duration::from_secs(20),
        async || sink.received().len() >= 4,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut received = sink.received();
    received.sort();
    let expected: Vec<(String, TaskEventKind)> = [
        ("creamery", TaskEventKind::Assigned),
        ("creamery", TaskEventKind::Cancelled),
        ("dairy", TaskEventKind::Assigned),
        ("dairy", TaskEventKind::Cancelled),
    ]
    .into_iter()
    .map(|(tenant, kind)| (tenant.to_owned(), kind))
    .collect();
    assert_eq!(received, expected);
    // Caught up: nothing left for the sweep.
    let backlog: i64 = sqlx::query_scalar("SELECT count(*) FROM task_event_relay_backlog()")
        .fetch_one(&writer.pool)
        .await
        .unwrap();
    assert_eq!(backlog, 0);
}

#[test]
fn the_retry_delay_doubles_up_to_a_cap_of_a_minute_at_most() {
    let defaults = RelayConfig::from_env(&Env::from_pairs::<&str, &str>([])).unwrap();
    assert_eq!(defaults, RelayConfig::default());
    let delays: Vec<u64> = (1..=8)
        .map(|failures| defaults.retry_delay(failures).as_secs())
        .collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
    for failures in [0, 9, 31, 32, 33, 1_000, u32::MAX] {
        assert!(
            defaults.retry_delay(failures) <= MAX_RETRY_DELAY,
            "{failures}"
        );
    }
    for (variable, value) in [
        ("RELAY_RETRY_MAX_MS", "60001"),
        ("RELAY_RETRY_BASE_MS", "0"),
        ("RELAY_SWEEP_INTERVAL_MS", "0"),
    ] {
        let error =
            RelayConfig::from_env(&Env::from_pairs([(variable, value)])).expect_err("refused");
        assert!(error.to_string().contains(variable), "{error}");
    }
    let error = RelayConfig::from_env(&Env::from_pairs([
        ("RELAY_RETRY_BASE_MS", "5000"),
        ("RELAY_RETRY_MAX_MS", "1000"),
    ]))
    .expect_err("refused");
    assert!(error.to_string().contains("RELAY_RETRY_MAX_MS"), "{error}");
}
