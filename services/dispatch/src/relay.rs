//! The task-event relay: delivers the events that notify (`assigned`, `completed`,
//! `cancelled`, and `created` with a driver, by a person's request: SQL
//! `task_event_notifies`, migrations/dispatch/0008 — an import's events do not, the import
//! sends each driver one summary) to Integrations, at least once, in order per tenant, none
//! waiting for another.
//!
//! A trigger queues a [`RelayTaskEvents`] job for the tenant whenever such an event is
//! written (`queue_task_event_relay`, migrations/dispatch/0004 and 0007): one pending job per
//! tenant, which later events fold into. The job reads the tenant's events after its cursor
//! (`task_event_relay`, locked for the duration so one relay per tenant runs at a time),
//! sends them in batches, and moves the cursor in the same transaction once Integrations has
//! acknowledged each batch. Integrations ignores events it has already consumed, so a batch
//! sent twice has its effects once.
//!
//! # When it fails
//!
//! A failure — Integrations down, a timeout — rolls back the cursor, and the relay schedules
//! its own retry instead of handing the failure to the queue. graphile_worker's backoff did
//! not suit it: a job's backoff lives in its `attempts`, which a new event folding into the
//! job resets (and `preserve_run_at` keeps a job's `run_at` only while it has never been
//! attempted), so each event made a failing relay retry at once; without events the delay
//! grew to about 6 hours; and once its attempts were spent the events waited for the tenant's
//! next one. Capping graphile_worker's delays alone would leave the resets; so the relay
//! keeps the tenant's consecutive failures (`task_event_relay.failures`, and `last_error`)
//! beside its cursor, queues its next attempt as a fresh job due after
//! [`RelayConfig::retry_delay`] — `RELAY_RETRY_BASE_MS` (1 s) doubled per failure, at most
//! `RELAY_RETRY_MAX_MS` (a minute, which it may not exceed) — and ends the failed run
//! successfully. That job has never been attempted, so events arriving while it waits fold
//! into it without moving it; it never runs out of attempts; and a success sets the count
//! back to 0. (Should even the scheduling fail — the database — the failure goes to the
//! queue, whose retry delay Dispatch's worker caps at the same maximum.)
//!
//! # The sweep
//!
//! Every `RELAY_SWEEP_INTERVAL_MS` (15 s) each Dispatch process queues a relay, in that
//! tenant's transaction as the trigger does, for every tenant with events that notify past
//! its cursor and no relay job queued or running — whatever lost or killed it — so no event
//! waits for another. The tenants come from `task_event_relay_backlog()` (migration 0007):
//! the events and cursors are private to their tenant, so that function alone reads across
//! tenants, as a role that may read those columns and nothing else, and answers tenant ids
//! and the age of each one's oldest pending event; only the worker's role may call it. The
//! queue's side (which tenants have a relay job) the worker's own rights read.

use std::time::Duration;

use director_platform::catalog;
use director_platform::client::{CallContext, ServiceClient};
use director_platform::config::{ConfigError, Env};
use director_platform::identity::{Caller, Role, TenantId};
use director_proto::dispatch as proto;
use director_proto::internal::integrations::task_event_sink_service_client::TaskEventSinkServiceClient;
use director_proto::internal::integrations::{DeliverTaskEventsRequest, TaskEventDelivery};
use director_store::jobs::{self, NewJob, job_span};
use director_store::tenant::TenantDb;
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use serde::{Deserialize, Serialize};
use sqlx::{FromRow, PgPool};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::domain::{DriverName, PhoneE164, TaskEventKind, TaskRow};

/// The identity the relay acts with: an admin of the events' tenant.
const SERVICE_USER: &str = "service:dispatch";
/// Events per delivery.
const BATCH: i64 = 200;
/// How often the relay's lag is sampled.
const LAG_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// The attempts of a relay job, as the trigger queues it (migration 0007). The relay's own
/// retries never fail to the queue, so these count only failures of the retry's scheduling.
const RELAY_JOB_MAX_ATTEMPTS: i16 = 25;
/// The longest [`RelayConfig::retry_delay`] may be.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// The most of an error kept in `task_event_relay.last_error`.
const LAST_ERROR_CHARS: usize = 1_000;

/// The age of the oldest event not yet relayed, across tenants (see the module docs, "The
/// sweep").
const OLDEST_PENDING_EVENT: &str = "
SELECT EXTRACT(EPOCH FROM now() - min(oldest_pending))::float8 FROM task_event_relay_backlog()";

/// Tenants with events past their cursor and no relay job queued or running (a job out of
/// attempts is neither; a locked one is running, or will be handed back by the recovery of
/// its dead worker), oldest backlog first.
const STRANDED_TENANTS: &str = "
SELECT b.tenant_id
FROM task_event_relay_backlog() b
WHERE NOT EXISTS (
    SELECT 1
    FROM graphile_worker._private_jobs j
    JOIN graphile_worker._private_tasks t ON t.id = j.task_id
    WHERE t.identifier = $1 AND j.payload ->> 'tenant_id' = b.tenant_id
      AND (j.locked_at IS NOT NULL OR j.attempts < j.max_attempts))
ORDER BY b.oldest_pending";

/// Why a run of the relay failed; its text is what `task_event_relay.last_error` keeps.
#[derive(thiserror::Error)]
pub enum RelayError {
    /// The worker runs jobs without the relay (a wiring mistake).
    #[error("the worker was started without the relay")]
    NotWired,
    /// Reading or moving the cursor, or queueing the retry, failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The delivery to Integrations could not be made (no time left, no token).
    #[error("{}", .0.message())]
    Request(tonic::Status),
    /// Integrations did not acknowledge the batch.
    #[error("integrations answered {:?}: {}", .0.code(), .0.message())]
    Integrations(tonic::Status),
}

/// The same text as `Display`: the job queue keeps a failed job's error in its `last_error`
/// by `Debug`, which should read as `task_event_relay.last_error` does (and not carry a
/// status's metadata).
impl std::fmt::Debug for RelayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// How the relay retries and sweeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// The delay after a first failure, doubled with each further one
    /// (`RELAY_RETRY_BASE_MS`, default 1 s).
    pub retry_base: Duration,
    /// The longest delay between attempts (`RELAY_RETRY_MAX_MS`, default and at most a
    /// minute).
    pub retry_max: Duration,
    /// How often each process sweeps for tenants left without a relay
    /// (`RELAY_SWEEP_INTERVAL_MS`, default 15 s).
    pub sweep_interval: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            retry_base: Duration::from_secs(1),
            retry_max: MAX_RETRY_DELAY,
            sweep_interval: Duration::from_secs(15),
        }
    }
}

impl RelayConfig {
    /// Reads and validates the `RELAY_*` settings.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let retry_base = env.millis_or("RELAY_RETRY_BASE_MS", 1_000)?;
        let retry_max = env.millis_or("RELAY_RETRY_MAX_MS", 60_000)?;
        let sweep_interval = env.millis_or("RELAY_SWEEP_INTERVAL_MS", 15_000)?;
        if retry_base.is_zero() {
            return Err(ConfigError::invalid(
                "RELAY_RETRY_BASE_MS",
                "1 or more",
                "0",
            ));
        }
        if retry_max > MAX_RETRY_DELAY {
            return Err(ConfigError::invalid(
                "RELAY_RETRY_MAX_MS",
                "at most 60000 (a minute)",
                &retry_max.as_millis().to_string(),
            ));
        }
        if retry_max < retry_base {
            return Err(ConfigError::new(
                "RELAY_RETRY_MAX_MS",
                "must be at least RELAY_RETRY_BASE_MS",
            ));
        }
        if sweep_interval.is_zero() {
            return Err(ConfigError::invalid(
                "RELAY_SWEEP_INTERVAL_MS",
                "1 or more",
                "0",
            ));
        }
        Ok(Self {
            retry_base,
            retry_max,
            sweep_interval,
        })
    }

    /// How long the relay waits after `failures` consecutive failures (1 for the first):
    /// `retry_base · 2^(failures − 1)`, at most `retry_max`.
    pub fn retry_delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.retry_base
            .saturating_mul(1_u32 << doublings)
            .min(self.retry_max)
    }
}

/// The tenant's relay job, as the trigger queues it: the same key, so it is the one job
/// events fold into.
fn relay_job(tenant_id: &TenantId) -> NewJob<'static> {
    let mut job = NewJob::for_tenant(catalog::DISPATCH_RELAY_TASK_EVENTS, tenant_id);
    job.job_key = Some(format!(
        "{}/{tenant_id}",
        catalog::DISPATCH_RELAY_TASK_EVENTS
    ));
    job.max_attempts = Some(RELAY_JOB_MAX_ATTEMPTS);
    job
}

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
            match sqlx::query_scalar::<_, Option<f64>>(OLDEST_PENDING_EVENT)
                .persistent(false)
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
    pub tenant_id: TenantId,
}

impl TaskHandler for RelayTaskEvents {
    const IDENTIFIER: &'static str = catalog::DISPATCH_RELAY_TASK_EVENTS;

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let Some(relay) = ctx.get_ext::<Relay>().cloned() else {
            return Err(RelayError::NotWired);
        };
        let span = job_span(&catalog::DISPATCH, Self::IDENTIFIER, ctx.payload());
        relay.run(&self.tenant_id).instrument(span).await
    }
}

/// Every `interval` until `shutdown`, queues a relay for each tenant left without one
/// ([`sweep`]).
pub fn spawn_sweep(
    db: TenantDb,
    interval: Duration,
    shutdown: CancellationToken,
    background: &TaskTracker,
) {
    background.spawn(async move {
        let mut interval = tokio::time::interval(interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            match sweep(&db).await {
                Ok(queued) if !queued.is_empty() => {
                    tracing::info!(
                        ?queued,
                        "task event relays queued for tenants left without one"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "could not sweep for task events left behind"),
            }
        }
    });
}

/// Queues a relay, in the tenant's transaction, for each tenant with events that notify past
/// its cursor and no relay job queued or running; answers those tenants. A tenant whose
/// queueing fails is skipped (and logged) until the next sweep.
pub async fn sweep(db: &TenantDb) -> Result<Vec<String>, sqlx::Error> {
    let tenants: Vec<String> = sqlx::query_scalar(STRANDED_TENANTS)
        .bind(catalog::DISPATCH_RELAY_TASK_EVENTS)
        .persistent(false)
        .fetch_all(db.pool())
        .await?;
    let mut queued = Vec::with_capacity(tenants.len());
    for tenant_id in tenants {
        let caller = Caller::new(SERVICE_USER, &tenant_id, Role::Admin);
        let result = async {
            let mut tx = db.begin(&caller).await?;
            sqlx::query("SELECT queue_task_event_relay($1)")
                .bind(&tenant_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        }
        .await;
        match result {
            Ok(()) => queued.push(tenant_id),
            Err(error) => {
                tracing::warn!(%error, tenant_id, "could not queue the relay of a tenant left behind");
            }
        }
    }
    Ok(queued)
}

/// What the relay job needs: the database, a client of Integrations, and its settings.
#[derive(Debug, Clone)]
pub struct Relay {
    db: TenantDb,
    integrations: ServiceClient,
    config: RelayConfig,
}

/// One event to send, with its task and driver.
#[derive(Debug, FromRow)]
struct PendingEvent {
    #[sqlx(rename = "event_id")]
    id: i64,
    kind: TaskEventKind,
    driver_phone: Option<PhoneE164>,
    driver_name: Option<DriverName>,
    /// `import` when a Vessey import made the change.
    #[sqlx(rename = "event_origin")]
    origin: Option<String>,
    #[sqlx(flatten)]
    task: TaskRow,
}

impl Relay {
    /// The relay with the default [`RelayConfig`].
    pub fn new(db: TenantDb, integrations: ServiceClient) -> Self {
        Self {
            db,
            integrations,
            config: RelayConfig::default(),
        }
    }

    /// This relay with `config`.
    #[must_use]
    pub fn with_config(mut self, config: RelayConfig) -> Self {
        self.config = config;
        self
    }

    /// One run of `tenant_id`'s relay job: relays, and on a failure queues the next attempt
    /// after the tenant's backoff and ends well (see the module docs, "When it fails"). Only
    /// when that cannot be done does the failure go to the queue.
    pub async fn run(&self, tenant_id: &TenantId) -> Result<(), RelayError> {
        let Err(error) = self.relay(tenant_id).await else {
            return Ok(());
        };
        match self.retry_later(tenant_id, &error).await {
            Ok((failures, delay)) => {
                tracing::warn!(
                    %tenant_id,
                    %error,
                    failures,
                    retry_in_ms = delay.as_millis(),
                    "task event relay failed; it will be retried"
                );
                Ok(())
            }
            Err(scheduling) => {
                tracing::warn!(
                    %tenant_id,
                    %error,
                    %scheduling,
                    "task event relay failed and its retry could not be queued; the job queue retries it"
                );
                Err(error)
            }
        }
    }

    /// Sends every pending event of `tenant_id`, batch by batch, up to the first failure.
    pub async fn relay(&self, tenant_id: &TenantId) -> Result<(), RelayError> {
        let caller = Caller::new(SERVICE_USER, tenant_id.as_str(), Role::Admin);
        loop {
            match self.relay_batch(&caller).await? {
                0 => return Ok(()),
                sent => tracing::debug!(%tenant_id, sent, "task events relayed"),
            }
        }
    }

    /// Counts the failure of `tenant_id`'s relay and queues its next attempt after the
    /// delay that follows; answers the tenant's consecutive failures and that delay.
    async fn retry_later(
        &self,
        tenant_id: &TenantId,
        error: &RelayError,
    ) -> Result<(u32, Duration), RelayError> {
        let caller = Caller::new(SERVICE_USER, tenant_id.as_str(), Role::Admin);
        let last_error: String = error.to_string().chars().take(LAST_ERROR_CHARS).collect();
        let mut tx = self.db.begin(&caller).await?;
        let failures: i32 = sqlx::query_scalar(
            "INSERT INTO task_event_relay (tenant_id, failures, last_error) VALUES ($1, 1, $2)
             ON CONFLICT (tenant_id) DO UPDATE
             SET failures = task_event_relay.failures + 1, last_error = EXCLUDED.last_error
             RETURNING failures",
        )
        .bind(tenant_id.as_str())
        .bind(&last_error)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        let failures = u32::try_from(failures).unwrap_or(u32::MAX);
        let delay = self.config.retry_delay(failures);
        jobs::enqueue_after(self.db.pool(), &relay_job(tenant_id), delay).await?;
        Ok((failures, delay))
    }

    /// Sends the next batch and moves the cursor past it; answers how many were sent.
    async fn relay_batch(&self, caller: &Caller) -> Result<usize, RelayError> {
        let mut tx = self.db.begin(caller).await?;
        sqlx::query("INSERT INTO task_event_relay (tenant_id) VALUES ($1) ON CONFLICT DO NOTHING")
            .bind(caller.tenant_id.as_str())
            .execute(&mut *tx)
            .await?;
        let (cursor, failures): (i64, i32) = sqlx::query_as(
            "SELECT last_event_id, failures FROM task_event_relay WHERE tenant_id = $1 FOR UPDATE",
        )
        .bind(caller.tenant_id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let events: Vec<PendingEvent> = sqlx::query_as(
            "SELECT e.id AS event_id, e.kind, e.origin AS event_origin, d.phone AS driver_phone,
                    d.name AS driver_name, t.*
             FROM task_events e
             CROSS JOIN LATERAL jsonb_populate_record(NULL::tasks, e.task) t
             LEFT JOIN drivers d ON d.tenant_id = e.tenant_id AND d.id = e.driver_id
             WHERE e.tenant_id = $1 AND e.id > $2
               AND task_event_notifies(e.kind, e.driver_id, e.origin)
             ORDER BY e.id
             LIMIT $3",
        )
        .bind(caller.tenant_id.as_str())
        .bind(cursor)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let Some(last) = events.last().map(|event| event.id) else {
            if failures > 0 {
                // Caught up (another run delivered): no longer failing.
                sqlx::query(
                    "UPDATE task_event_relay SET failures = 0, last_error = NULL
                     WHERE tenant_id = $1",
                )
                .bind(caller.tenant_id.as_str())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            return Ok(0);
        };
        let sent = events.len();
        self.deliver(caller, events).await?;
        sqlx::query(
            "UPDATE task_event_relay SET last_event_id = $2, failures = 0, last_error = NULL
             WHERE tenant_id = $1",
        )
        .bind(caller.tenant_id.as_str())
        .bind(last)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(sent)
    }

    async fn deliver(&self, caller: &Caller, events: Vec<PendingEvent>) -> Result<(), RelayError> {
        let cx = CallContext::for_caller(caller.clone());
        let events = events
            .into_iter()
            .map(|event| TaskEventDelivery {
                event_id: event.id.to_string(),
                event_kind: proto::TaskEventKind::from(event.kind) as i32,
                task: Some(proto::Task::from(event.task)),
                driver_phone: event.driver_phone.map(PhoneE164::into_string),
                driver_name: event.driver_name.map(DriverName::into_string),
                origin: event.origin,
            })
            .collect();
        let request = self
            .integrations
            .request(&cx, DeliverTaskEventsRequest { events })
            .map_err(RelayError::Request)?;
        TaskEventSinkServiceClient::new(self.integrations.channel())
            .deliver_task_events(request)
            .await
            .map_err(RelayError::Integrations)?;
        Ok(())
    }
}
