//! The tasks table. Every statement runs in a tenant transaction (row-level security) and
//! filters by `tenant_id` itself; reads and the driver's own transitions take the caller's
//! driver user id (see [`crate::scope`]).
//!
//! Each transition is one `UPDATE … SET status = <target> … WHERE status = ANY(<allowed>)
//! RETURNING …`, both bound from the domain's [`Transition`]: under
//! concurrency PostgreSQL re-checks the condition against the row a competing transaction
//! committed, so of two conflicting transitions exactly one matches. A statement that matches
//! nothing is explained afterwards by [`TaskStore::state`] (missing, or in which status).
//! Every change writes its task event through the table's trigger, in the same transaction.

use chrono::{DateTime, NaiveDate, Utc};
use director_platform::identity::Caller;
use director_platform::validate::Page;
use director_store::tenant::TenantDb;
use sqlx::{Postgres, QueryBuilder};

use crate::domain::{
    CompanyId, DriverId, ExternalId, Notes, TaskId, TaskRow, TaskStatus, Title, Transition,
};
use crate::scope::{driver_user, own_tasks_only};

/// The columns of a `TaskRow`, as a literal so statements stay `&'static str`.
macro_rules! columns {
    () => {
        "id, company_id, driver_id, title, notes, scheduled_for, window_start, window_end, \
         status, volume_liters, external_id, version, created_at, updated_at, completed_at, \
         cancel_reason"
    };
}

/// The validated fields of a new task.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub company_id: CompanyId,
    pub driver_id: Option<DriverId>,
    pub title: Title,
    pub notes: Option<Notes>,
    pub scheduled_for: NaiveDate,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub volume_liters: Option<f64>,
    pub external_id: Option<ExternalId>,
}

/// The validated changes of an update: `None` leaves a column alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct TaskChanges {
    pub company_id: Option<CompanyId>,
    pub title: Option<Title>,
    pub notes: Option<Option<Notes>>,
    pub scheduled_for: Option<NaiveDate>,
    pub window_start: Option<Option<DateTime<Utc>>>,
    pub window_end: Option<Option<DateTime<Utc>>>,
    pub volume_liters: Option<Option<f64>>,
    /// Refuse the update unless the stored version is this one.
    pub expected_version: Option<i32>,
}

impl TaskChanges {
    fn changes_nothing(&self) -> bool {
        self.company_id.is_none()
            && self.title.is_none()
            && self.notes.is_none()
            && self.scheduled_for.is_none()
            && self.window_start.is_none()
            && self.window_end.is_none()
            && self.volume_liters.is_none()
    }
}

/// The validated filters of a list; all combine with AND.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub driver_id: Option<DriverId>,
    pub company_id: Option<CompanyId>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// Where a task stands, for explaining a statement that matched nothing.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TaskState {
    pub status: TaskStatus,
    pub version: i32,
}

/// Reads and writes tasks for one caller's tenant at a time.
#[derive(Debug, Clone)]
pub struct TaskStore {
    db: TenantDb,
}

impl TaskStore {
    pub fn new(db: TenantDb) -> Self {
        Self { db }
    }

    /// The live tasks the caller sees, by scheduled day then creation.
    pub async fn list(
        &self,
        caller: &Caller,
        filter: TaskFilter,
        page: Page,
    ) -> Result<Vec<TaskRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM tasks
             WHERE tenant_id = $2 AND deleted_at IS NULL AND ",
            own_tasks_only!(),
            " AND ($4::text IS NULL OR status = $4)
               AND ($5::uuid IS NULL OR driver_id = $5)
               AND ($6::uuid IS NULL OR company_id = $6)
               AND ($7::date IS NULL OR scheduled_for >= $7)
               AND ($8::date IS NULL OR scheduled_for <= $8)
             ORDER BY scheduled_for, created_at, id
             OFFSET $9 LIMIT $1"
        ))
        .bind(page.limit)
        .bind(caller.tenant_id.as_str())
        .bind(driver_user(caller))
        .bind(filter.status)
        .bind(filter.driver_id)
        .bind(filter.company_id)
        .bind(filter.from)
        .bind(filter.to)
        .bind(page.offset);
        self.db
            .read_all(caller, query, "scheduled_for, created_at, id")
            .await
    }

    /// The live task `id`, if the caller sees it.
    pub async fn get(&self, caller: &Caller, id: TaskId) -> Result<Option<TaskRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM tasks WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL AND ",
            own_tasks_only!()
        ))
        .bind(id)
        .bind(caller.tenant_id.as_str())
        .bind(driver_user(caller));
        self.db.read_optional(caller, query).await
    }

    /// Where the live task `id` stands, if the caller sees it.
    pub async fn state(
        &self,
        caller: &Caller,
        id: TaskId,
    ) -> Result<Option<TaskState>, sqlx::Error> {
        let query = sqlx::query_as::<_, TaskState>(concat!(
            "SELECT status, version FROM tasks
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL AND ",
            own_tasks_only!()
        ))
        .bind(id)
        .bind(caller.tenant_id.as_str())
        .bind(driver_user(caller));
        self.db.fetch_optional(caller, query).await
    }

    /// Whether `driver_id` is a live, active driver of the caller's tenant.
    pub async fn driver_is_assignable(
        &self,
        caller: &Caller,
        driver_id: DriverId,
    ) -> Result<bool, sqlx::Error> {
        let query = sqlx::query_as::<_, (bool,)>(
            "SELECT EXISTS (
                 SELECT 1 FROM drivers
                 WHERE id = $1 AND tenant_id = $2 AND status = 'active' AND deleted_at IS NULL)",
        )
        .bind(driver_id)
        .bind(caller.tenant_id.as_str());
        Ok(self.db.read_one(caller, query).await?.0)
    }

    /// Creates a task, assigned when `new.driver_id` is set; `None` when that driver is not a
    /// live, active driver of the tenant (nothing is written then).
    pub async fn create(
        &self,
        caller: &Caller,
        new: NewTask,
    ) -> Result<Option<TaskRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "INSERT INTO tasks (tenant_id, company_id, driver_id, status, title, notes,
                                scheduled_for, window_start, window_end, volume_liters, external_id)
             SELECT $1, $2, $3, CASE WHEN $3::uuid IS NULL THEN 'pending' ELSE 'assigned' END,
                    $4, $5, $6, $7, $8, $9, $10
             WHERE $3::uuid IS NULL OR EXISTS (
                 SELECT 1 FROM drivers d
                 WHERE d.id = $3 AND d.tenant_id = $1 AND d.status = 'active'
                   AND d.deleted_at IS NULL)
             RETURNING ",
            columns!()
        ))
        .bind(caller.tenant_id.as_str())
        .bind(new.company_id)
        .bind(new.driver_id)
        .bind(new.title)
        .bind(new.notes)
        .bind(new.scheduled_for)
        .bind(new.window_start)
        .bind(new.window_end)
        .bind(new.volume_liters)
        .bind(new.external_id);
        self.db.fetch_optional(caller, query).await
    }

    /// Applies `changes` to the live task `id` when its version is the expected one (if
    /// any); `None` when no row matched (missing, or another version: see [`Self::state`]).
    pub async fn update(
        &self,
        caller: &Caller,
        id: TaskId,
        changes: TaskChanges,
    ) -> Result<Option<TaskRow>, sqlx::Error> {
        if changes.changes_nothing() {
            let row = self.get(caller, id).await?;
            return Ok(row.filter(|row| {
                changes
                    .expected_version
                    .is_none_or(|version| version == row.version)
            }));
        }
        let mut statement = update_statement(caller, id, changes);
        self.db
            .fetch_optional(caller, statement.build_query_as())
            .await
    }

    /// Marks the live task `id` deleted; `false` when there is no such task.
    pub async fn soft_delete(&self, caller: &Caller, id: TaskId) -> Result<bool, sqlx::Error> {
        let query = sqlx::query(
            "UPDATE tasks SET deleted_at = now()
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(caller.tenant_id.as_str());
        Ok(self.db.execute(caller, query).await? == 1)
    }

    /// pending/assigned → assigned to `driver_id`, if that driver is live and active.
    pub async fn assign(
        &self,
        caller: &Caller,
        id: TaskId,
        driver_id: DriverId,
    ) -> Result<Option<TaskRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "UPDATE tasks SET status = $4, driver_id = $3
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL AND status = ANY($5)
               AND EXISTS (
                   SELECT 1 FROM drivers d
                   WHERE d.id = $3 AND d.tenant_id = $2 AND d.status = 'active'
                     AND d.deleted_at IS NULL)
             RETURNING ",
            columns!()
        ))
        .bind(id)
        .bind(caller.tenant_id.as_str())
        .bind(driver_id)
        .bind(Transition::Assign.target())
        .bind(Transition::Assign.allowed_from());
        self.db.fetch_optional(caller, query).await
    }

    /// assigned → in_progress; a driver only starts their own tasks.
    pub async fn start(&self, caller: &Caller, id: TaskId) -> Result<Option<TaskRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "UPDATE tasks SET status = $4
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL AND status = ANY($5)
               AND ",
            own_tasks_only!(),
            " RETURNING ",
            columns!()
        ))
        .bind(id)
        .bind(caller.tenant_id.as_str())
        .bind(driver_user(caller))
        .bind(Transition::Start.target())
        .bind(Transition::Start.allowed_from());
        self.db.fetch_optional(caller, query).await
    }

    /// in_progress → completed, stamping `completed_at`; the volume and notes replace the
    /// task's when given. A driver only completes their own tasks.
    pub async fn complete(
        &self,
        caller: &Caller,
        id: TaskId,
        volume_liters: Option<f64>,
        notes: Option<Notes>,
    ) -> Result<Option<TaskRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "UPDATE tasks SET status = $6, completed_at = now(),
                    volume_liters = coalesce($4, volume_liters), notes = coalesce($5, notes)
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL AND status = ANY($7)
               AND ",
            own_tasks_only!(),
            " RETURNING ",
            columns!()
        ))
        .bind(id)
        .bind(caller.tenant_id.as_str())
        .bind(driver_user(caller))
        .bind(volume_liters)
        .bind(notes)
        .bind(Transition::Complete.target())
        .bind(Transition::Complete.allowed_from());
        self.db.fetch_optional(caller, query).await
    }

    /// pending/assigned/in_progress → cancelled, with `reason`.
    pub async fn cancel(
        &self,
        caller: &Caller,
        id: TaskId,
        reason: String,
    ) -> Result<Option<TaskRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "UPDATE tasks SET status = $4, cancel_reason = $3
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL AND status = ANY($5)
             RETURNING ",
            columns!()
        ))
        .bind(id)
        .bind(caller.tenant_id.as_str())
        .bind(reason)
        .bind(Transition::Cancel.target())
        .bind(Transition::Cancel.allowed_from());
        self.db.fetch_optional(caller, query).await
    }
}

/// `UPDATE tasks SET <changed columns> ... [AND version = v] RETURNING ...`, every value
/// bound.
fn update_statement(caller: &Caller, id: TaskId, changes: TaskChanges) -> QueryBuilder<Postgres> {
    let mut query = QueryBuilder::new("UPDATE tasks SET ");
    let mut columns = query.separated(", ");
    if let Some(company_id) = changes.company_id {
        columns
            .push("company_id = ")
            .push_bind_unseparated(company_id);
    }
    if let Some(title) = changes.title {
        columns.push("title = ").push_bind_unseparated(title);
    }
    if let Some(notes) = changes.notes {
        columns.push("notes = ").push_bind_unseparated(notes);
    }
    if let Some(day) = changes.scheduled_for {
        columns.push("scheduled_for = ").push_bind_unseparated(day);
    }
    for (column, value) in [
        ("window_start", changes.window_start),
        ("window_end", changes.window_end),
    ] {
        if let Some(value) = value {
            columns
                .push(format_args!("{column} = "))
                .push_bind_unseparated(value);
        }
    }
    if let Some(volume) = changes.volume_liters {
        columns
            .push("volume_liters = ")
            .push_bind_unseparated(volume);
    }
    query
        .push(" WHERE id = ")
        .push_bind(id)
        .push(" AND tenant_id = ")
        .push_bind(caller.tenant_id.to_string())
        .push(" AND deleted_at IS NULL");
    if let Some(version) = changes.expected_version {
        query.push(" AND version = ").push_bind(version);
    }
    query.push(" RETURNING ").push(columns!());
    query
}
