//! Live task events for `WatchTasks`.
//!
//! The `task_events` table is the source of truth: a trigger appends one row per task change
//! in the change's own transaction, with ids increasing in commit order within a tenant, and
//! sends `NOTIFY director_task_events, '<tenant>'` on commit. Each Dispatch replica keeps one
//! `LISTEN` connection ([`director_platform::notify`]) that wakes its watchers; a woken watcher reads its tenant's rows after the last id it
//! sent. A watcher therefore never depends on a notification's content — a lost one (the
//! listener reconnecting) only delays it until the next wake-up or [`POLL_INTERVAL`] — and
//! resuming from an id is the same query as following live.

use std::time::Duration;

use chrono::{DateTime, Utc};
use director_platform::identity::Caller;
use director_platform::notify::{Notifications, Wake};
use director_platform::tenant::TenantDb;
use director_platform::time::to_timestamp;
use director_proto::dispatch::{TaskEventKind, WatchTasksResponse};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, Row};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::error::DispatchError;
use crate::scope::driver_user;
use crate::tasks::{TaskRow, task_message};

/// The channel the `tasks_record_event` trigger notifies.
const CHANNEL: &str = "director_task_events";
/// Events read per query; a watcher far behind catches up page by page.
const BATCH: i64 = 500;
/// How often an idle watcher looks anyway, in case a notification was lost.
const POLL_INTERVAL: Duration = Duration::from_secs(10);
/// Messages queued for one watcher before its reader waits for the client.
const STREAM_BUFFER: usize = 64;

/// The replica's event fan-out: one LISTEN connection, any number of watchers.
#[derive(Debug, Clone)]
pub struct TaskEvents {
    db: TenantDb,
    notifications: Notifications,
    shutdown: CancellationToken,
}

/// One stored event, with whether the watcher may see it.
struct EventRow {
    id: i64,
    kind: String,
    occurred_at: DateTime<Utc>,
    visible: bool,
    task: TaskRow,
}

impl<'r> FromRow<'r, PgRow> for EventRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("event_id")?,
            kind: row.try_get("kind")?,
            occurred_at: row.try_get("occurred_at")?,
            visible: row.try_get("visible")?,
            task: TaskRow::from_row(row)?,
        })
    }
}

impl TaskEvents {
    /// Starts listening for notifications (in the background, reconnecting as needed) until
    /// `shutdown`, which also ends every watch stream.
    pub fn start(db: TenantDb, shutdown: CancellationToken) -> Self {
        let notifications = Notifications::start(db.pool().clone(), CHANNEL, shutdown.clone());
        Self {
            db,
            notifications,
            shutdown,
        }
    }

    /// The events of `caller`'s tenant after `after` (or from now), then live ones, until the
    /// client goes away or the service shuts down. A driver receives only events of tasks
    /// assigned to them.
    pub async fn watch(
        &self,
        caller: Caller,
        after: Option<i64>,
    ) -> Result<ReceiverStream<Result<WatchTasksResponse, Status>>, DispatchError> {
        // Subscribed before the starting point is read, so nothing committed in between is
        // missed.
        let wake = self.notifications.subscribe();
        let last = match after {
            Some(id) => id,
            None => self.latest_id(&caller).await?,
        };
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        let watcher = Watcher {
            db: self.db.clone(),
            caller,
            last,
            wake,
            sender,
            shutdown: self.shutdown.clone(),
        };
        tokio::spawn(watcher.run());
        Ok(ReceiverStream::new(receiver))
    }

    /// The id of the tenant's latest event (0 when it has none).
    async fn latest_id(&self, caller: &Caller) -> Result<i64, sqlx::Error> {
        let query = sqlx::query_as::<_, (i64,)>(
            "SELECT coalesce(max(id), 0) FROM task_events WHERE tenant_id = $1",
        )
        .bind(&caller.tenant_id);
        Ok(self.db.read_one(caller, query).await?.0)
    }
}

/// One watch stream: reads and sends, then waits to be woken.
struct Watcher {
    db: TenantDb,
    caller: Caller,
    last: i64,
    wake: broadcast::Receiver<Wake>,
    sender: mpsc::Sender<Result<WatchTasksResponse, Status>>,
    shutdown: CancellationToken,
}

impl Watcher {
    async fn run(mut self) {
        loop {
            let batch = match self.read_batch().await {
                Ok(batch) => batch,
                Err(error) => {
                    let _ = self
                        .sender
                        .send(Err(DispatchError::from(error).into()))
                        .await;
                    return;
                }
            };
            let full = batch.len() as i64 == BATCH;
            for event in batch {
                self.last = event.id;
                if !event.visible {
                    continue;
                }
                if self.sender.send(Ok(message(event))).await.is_err() {
                    return;
                }
            }
            if !full && !self.wait().await {
                return;
            }
        }
    }

    /// Waits for a reason to read again; `false` when the stream should end.
    async fn wait(&mut self) -> bool {
        let poll = tokio::time::sleep(POLL_INTERVAL);
        tokio::pin!(poll);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return false,
                () = self.sender.closed() => return false,
                () = &mut poll => return true,
                woken = self.wake.recv() => match woken {
                    Ok(wake) if !wake.concerns(&self.caller.tenant_id) => {}
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => return true,
                    Err(broadcast::error::RecvError::Closed) => return false,
                },
            }
        }
    }

    /// The next events of the tenant after `self.last`, each marked visible or not.
    async fn read_batch(&self) -> Result<Vec<EventRow>, sqlx::Error> {
        let query = sqlx::query_as(
            "SELECT e.id AS event_id, e.kind, e.occurred_at,
                    coalesce($3::text IS NULL OR e.driver_id IN (
                        SELECT d.id FROM drivers d
                        WHERE d.tenant_id = $2 AND d.user_id = $3 AND d.deleted_at IS NULL),
                        false) AS visible,
                    t.*
             FROM task_events e
             CROSS JOIN LATERAL jsonb_populate_record(NULL::tasks, e.task) t
             WHERE e.tenant_id = $2 AND e.id > $1
             ORDER BY e.id
             LIMIT $4",
        )
        .bind(self.last)
        .bind(&self.caller.tenant_id)
        .bind(driver_user(&self.caller))
        .bind(BATCH);
        self.db.fetch_all(&self.caller, query).await
    }
}

fn message(event: EventRow) -> WatchTasksResponse {
    let kind = match event.kind.as_str() {
        "created" => TaskEventKind::Created,
        "updated" => TaskEventKind::Updated,
        "assigned" => TaskEventKind::Assigned,
        "started" => TaskEventKind::Started,
        "completed" => TaskEventKind::Completed,
        "cancelled" => TaskEventKind::Cancelled,
        "deleted" => TaskEventKind::Deleted,
        _ => TaskEventKind::Unspecified,
    };
    WatchTasksResponse {
        event_id: event.id.to_string(),
        kind: kind as i32,
        task: Some(task_message(event.task)),
        occurred_at: Some(to_timestamp(event.occurred_at)),
    }
}
