//! The statements behind `WatchTasks`, and an event as the watchers of a tenant share it.
//!
//! Three reads, each one scoped statement ([`TenantDb::read_all`]) in the tenant of the
//! caller it is given:
//!
//! - [`latest_id`]: where a tenant's events stand, once when its hub starts;
//! - [`follow`]: every event of a tenant after an id, with the `user_id` of the live driver
//!   each one's task is assigned to, so the hub can decide in memory which driver watcher
//!   may see it — one read serves admins, dispatchers and drivers alike;
//! - [`replay`]: only the events the caller may see between two ids, for a client resuming
//!   with `after_event_id` and for a watcher that fell behind its hub. Admins and
//!   dispatchers read the tenant's events by `task_events_tenant_id_idx`; a driver reads
//!   only their own by `task_events_tenant_driver_idx` (migrations/dispatch/0006), never the
//!   rest of the tenant's history. Two statements rather than one with
//!   `$driver IS NULL OR …`, so a cached generic plan cannot fall back to the tenant-wide
//!   scan for drivers.

use chrono::{DateTime, Utc};
use director_platform::identity::Caller;
use director_platform::time::to_timestamp;
use director_proto::dispatch::{self as proto, WatchTasksResponse};
use director_store::tenant::TenantDb;
use sqlx::FromRow;
use sqlx::postgres::PgRow;

use crate::domain::{TaskEventKind, TaskRow, UserRef};
use crate::scope::driver_user;

/// Every event of tenant `$2` after id `$1`, oldest first, at most `$3`; `driver_user` is
/// the `user_id` of the live driver the task is assigned to after the event (if any).
pub const FOLLOW: &str = "
SELECT e.id AS event_id, e.kind, e.occurred_at, d.user_id AS driver_user, t.*
FROM task_events e
LEFT JOIN drivers d
       ON d.tenant_id = e.tenant_id AND d.id = e.driver_id AND d.deleted_at IS NULL
CROSS JOIN LATERAL jsonb_populate_record(NULL::tasks, e.task) t
WHERE e.tenant_id = $2 AND e.id > $1
ORDER BY e.id
LIMIT $3";

/// The events of tenant `$2` with ids in (`$1`, `$3`], oldest first, at most `$4`: what an
/// admin or a dispatcher replays.
pub const REPLAY_ALL: &str = "
SELECT e.id AS event_id, e.kind, e.occurred_at, NULL::text AS driver_user, t.*
FROM task_events e
CROSS JOIN LATERAL jsonb_populate_record(NULL::tasks, e.task) t
WHERE e.tenant_id = $2 AND e.id > $1 AND e.id <= $3
ORDER BY e.id
LIMIT $4";

/// The events of tenant `$2` with ids in (`$1`, `$3`] of tasks assigned to the live driver
/// whose `user_id` is `$5`, oldest first, at most `$4`: what a driver replays. The driver is
/// one row (`drivers_tenant_user_id_key`), so the scan is an index range of
/// `task_events_tenant_driver_idx`.
pub const REPLAY_DRIVER: &str = "
SELECT e.id AS event_id, e.kind, e.occurred_at, $5::text AS driver_user, t.*
FROM task_events e
CROSS JOIN LATERAL jsonb_populate_record(NULL::tasks, e.task) t
WHERE e.tenant_id = $2
  AND e.driver_id = (SELECT d.id FROM drivers d
                     WHERE d.tenant_id = $2 AND d.user_id = $5 AND d.deleted_at IS NULL)
  AND e.id > $1 AND e.id <= $3
ORDER BY e.id
LIMIT $4";

/// One event, ready to send, shared (behind an `Arc`) by every watcher of its tenant in the
/// process.
#[derive(Debug)]
pub struct Event {
    pub id: i64,
    /// The `user_id` of the live driver the task is assigned to after the event: the one
    /// driver who may see it.
    driver_user: Option<UserRef>,
    pub message: WatchTasksResponse,
}

impl Event {
    /// Whether a watcher limited to `driver_user`'s tasks (`None`: an admin or a
    /// dispatcher, no limit) may see this event.
    pub fn visible_to(&self, driver_user: Option<&str>) -> bool {
        driver_user.is_none_or(|user| self.driver_user.as_ref().map(UserRef::as_str) == Some(user))
    }
}

/// An event as the statements above read it.
#[derive(Debug, FromRow)]
struct EventRow {
    event_id: i64,
    kind: TaskEventKind,
    occurred_at: DateTime<Utc>,
    driver_user: Option<UserRef>,
    #[sqlx(flatten)]
    task: TaskRow,
}

impl From<EventRow> for Event {
    fn from(row: EventRow) -> Self {
        Self {
            id: row.event_id,
            driver_user: row.driver_user,
            message: WatchTasksResponse {
                event_id: row.event_id.to_string(),
                kind: proto::TaskEventKind::from(row.kind) as i32,
                task: Some(proto::Task::from(row.task)),
                occurred_at: Some(to_timestamp(row.occurred_at)),
            },
        }
    }
}

impl<'r> FromRow<'r, PgRow> for Event {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        EventRow::from_row(row).map(Self::from)
    }
}

/// The id of the latest event of `caller`'s tenant (0 when it has none).
pub async fn latest_id(db: &TenantDb, caller: &Caller) -> Result<i64, sqlx::Error> {
    let query = sqlx::query_as::<_, (i64,)>(
        "SELECT coalesce(max(id), 0) AS latest FROM task_events WHERE tenant_id = $1",
    )
    .bind(caller.tenant_id.as_str());
    Ok(db.read_one(caller, query).await?.0)
}

/// Up to `limit` events of `caller`'s tenant after `after`, oldest first, whoever may see
/// them ([`FOLLOW`]).
pub async fn follow(
    db: &TenantDb,
    caller: &Caller,
    after: i64,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    let query = sqlx::query_as(FOLLOW)
        .bind(after)
        .bind(caller.tenant_id.as_str())
        .bind(limit);
    db.read_all(caller, query, "event_id").await
}

/// Up to `limit` events with ids in (`after`, `through`] that `caller` may see, oldest first
/// ([`REPLAY_ALL`], or [`REPLAY_DRIVER`] for a driver).
pub async fn replay(
    db: &TenantDb,
    caller: &Caller,
    after: i64,
    through: i64,
    limit: i64,
) -> Result<Vec<Event>, sqlx::Error> {
    let query = match driver_user(caller) {
        None => sqlx::query_as(REPLAY_ALL)
            .bind(after)
            .bind(caller.tenant_id.as_str())
            .bind(through)
            .bind(limit),
        Some(user) => sqlx::query_as(REPLAY_DRIVER)
            .bind(after)
            .bind(caller.tenant_id.as_str())
            .bind(through)
            .bind(limit)
            .bind(user.to_owned()),
    };
    db.read_all(caller, query, "event_id").await
}
