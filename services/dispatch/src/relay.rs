//! The task-event relay: delivers the events that notify (`assigned`, `completed`,
//! `cancelled`) to Integrations, at least once, in order per tenant.
//!
//! A trigger queues a [`RelayTaskEvents`] job for the tenant whenever such an event is
//! written (migrations/dispatch/0004). The job reads the tenant's events after its cursor
//! (`task_event_relay`, locked for the duration so one relay per tenant runs at a time),
//! sends them in batches, and moves the cursor in the same transaction once Integrations has
//! acknowledged each batch. A failure — Integrations down, a timeout — rolls back the cursor
//! and hands the error to the queue, which retries with backoff; Integrations ignores events
//! it has already consumed, so a batch sent twice has its effects once.

use std::time::Duration;

use director_platform::catalog;
use director_platform::client::{CallContext, ServiceClient};
use director_platform::identity::{Caller, Role};
use director_platform::jobs::job_span;
use director_platform::tenant::TenantDb;
use director_proto::internal::integrations::task_event_sink_service_client::TaskEventSinkServiceClient;
use director_proto::internal::integrations::{DeliverTaskEventsRequest, TaskEventDelivery};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool, Row};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::tasks::{TaskRow, task_message};

/// The identity the relay acts with: an admin of the events' tenant.
const SERVICE_USER: &str = "service:dispatch";
/// Events per delivery.
const BATCH: i64 = 200;
/// How often the relay's lag is sampled.
const LAG_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// The age of the oldest event not yet relayed, across tenants: every tenant with pending
/// events has a relay job (queued in the event's transaction, kept while it is retried or
/// dead, and replaced by later events without changing its `created_at`) — the relay's own
/// cursor table is tenant-scoped and not readable across tenants.
const OLDEST_PENDING_RELAY: &str = "
SELECT EXTRACT(EPOCH FROM now() - min(j.created_at))::float8
FROM graphile_worker._private_jobs j
JOIN graphile_worker._private_tasks t ON t.id = j.task_id
WHERE t.identifier = 'dispatch_relay_task_events'";

/// Samples `director_outbox_lag_seconds` (0 when nothing is waiting) every few seconds
/// until `shutdown`.
pub fn spawn_lag_metrics(pool: PgPool, shutdown: CancellationToken, background: &TaskTracker) {
    background.spawn(async move {
        let mut interval = tokio::time::interval(LAG_SAMPLE_INTERVAL);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            match sqlx::query_scalar::<_, Option<f64>>(OLDEST_PENDING_RELAY)
                .fetch_one(&pool)
                .await
            {
                Ok(lag) => metrics::gauge!("director_outbox_lag_seconds").set(lag.unwrap_or(0.0)),
                Err(error) => tracing::debug!(%error, "could not sample the relay's lag"),
            }
        }
    });
}

/// Relays `tenant_id`'s pending events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayTaskEvents {
    pub tenant_id: String,
}

impl TaskHandler for RelayTaskEvents {
    const IDENTIFIER: &'static str = catalog::DISPATCH_RELAY_TASK_EVENTS;

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let Some(relay) = ctx.get_ext::<Relay>().cloned() else {
            return Err("the worker was started without the relay".to_owned());
        };
        let span = job_span(&catalog::DISPATCH, Self::IDENTIFIER, ctx.payload());
        relay.relay(&self.tenant_id).instrument(span).await
    }
}

/// What the relay job needs: the database and a client of Integrations.
#[derive(Debug, Clone)]
pub struct Relay {
    db: TenantDb,
    integrations: ServiceClient,
}

/// One event to send, with its task and driver.
struct PendingEvent {
    id: i64,
    kind: String,
    driver_phone: Option<String>,
    driver_name: Option<String>,
    task: TaskRow,
}

impl<'r> FromRow<'r, PgRow> for PendingEvent {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("event_id")?,
            kind: row.try_get("kind")?,
            driver_phone: row.try_get("driver_phone")?,
            driver_name: row.try_get("driver_name")?,
            task: TaskRow::from_row(row)?,
        })
    }
}

impl Relay {
    pub fn new(db: TenantDb, integrations: ServiceClient) -> Self {
        Self { db, integrations }
    }

    /// Sends every pending event of `tenant_id`, batch by batch.
    pub async fn relay(&self, tenant_id: &str) -> Result<(), String> {
        let caller = Caller::new(SERVICE_USER, tenant_id, Role::Admin);
        loop {
            match self.relay_batch(&caller).await {
                Ok(0) => return Ok(()),
                Ok(sent) => tracing::debug!(tenant_id, sent, "task events relayed"),
                Err(error) => {
                    tracing::warn!(
                        tenant_id,
                        error,
                        "task event relay failed; it will be retried"
                    );
                    return Err(error);
                }
            }
        }
    }

    /// Sends the next batch and moves the cursor past it; answers how many were sent.
    async fn relay_batch(&self, caller: &Caller) -> Result<usize, String> {
        let db_error = |error: sqlx::Error| format!("database: {error}");
        let mut tx = self.db.begin(caller).await.map_err(db_error)?;
        sqlx::query("INSERT INTO task_event_relay (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(&caller.tenant_id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let (cursor,): (i64,) = sqlx::query_as(
            "SELECT last_event_id FROM task_event_relay WHERE tenant_id = $1 FOR UPDATE",
        )
        .bind(&caller.tenant_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?;
        let events: Vec<PendingEvent> = sqlx::query_as(
            "SELECT e.id AS event_id, e.kind, d.phone AS driver_phone, d.name AS driver_name, t.*
             FROM task_events e
             CROSS JOIN LATERAL jsonb_populate_record(NULL::tasks, e.task) t
             LEFT JOIN drivers d ON d.tenant_id = e.tenant_id AND d.id = e.driver_id
             WHERE e.tenant_id = $1 AND e.id > $2
               AND e.kind IN ('assigned', 'completed', 'cancelled')
             ORDER BY e.id
             LIMIT $3",
        )
        .bind(&caller.tenant_id)
        .bind(cursor)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some(last) = events.last().map(|event| event.id) else {
            tx.commit().await.map_err(db_error)?;
            return Ok(0);
        };
        let sent = events.len();
        self.deliver(caller, events).await?;
        sqlx::query("UPDATE task_event_relay SET last_event_id = $2 WHERE tenant_id = $1")
            .bind(&caller.tenant_id)
            .bind(last)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(sent)
    }

    async fn deliver(&self, caller: &Caller, events: Vec<PendingEvent>) -> Result<(), String> {
        let cx = CallContext::for_caller(caller.clone());
        let events = events
            .into_iter()
            .map(|event| TaskEventDelivery {
                event_id: event.id.to_string(),
                kind: event.kind,
                task: Some(task_message(event.task)),
                driver_phone: event.driver_phone,
                driver_name: event.driver_name,
            })
            .collect();
        let request = self
            .integrations
            .request(&cx, DeliverTaskEventsRequest { events })
            .map_err(|status| status.message().to_owned())?;
        TaskEventSinkServiceClient::new(self.integrations.channel())
            .deliver_task_events(request)
            .await
            .map_err(|status| {
                format!(
                    "integrations answered {:?}: {}",
                    status.code(),
                    status.message()
                )
            })?;
        Ok(())
    }
}
