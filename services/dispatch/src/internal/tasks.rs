//! `UpsertTasks`: a day's Vessey collections into the tenant's tasks, matched by
//! `external_id`.
//!
//! A new task is `assigned` when the collection names a live, active driver of the tenant
//! (resolved by the driver's `external_id` in the same statement), else `pending`. An
//! existing task is only touched while it is still `pending` or `assigned` — one that has
//! started, been completed or cancelled is history and keeps what it has — and then only
//! where something differs: its descriptive fields, and its driver when it was pending and
//! the collection now names a known driver.

use chrono::{DateTime, NaiveDate, Utc};
use director_platform::identity::Caller;
use director_platform::time::from_timestamp;
use director_platform::validate::{self, Violations};
use director_proto::internal::dispatch::TaskUpsert;
use director_store::tenant::TenantDb;
use serde::{Deserialize, Deserializer};
use tonic::Status;

use super::{MAX_BATCH, Written};
use crate::domain::{CompanyId, DriverId, ExternalId, Title};

/// A checked batch, as column arrays.
#[derive(Debug, Default)]
pub(super) struct TaskColumns {
    external_ids: Vec<ExternalId>,
    company_ids: Vec<CompanyId>,
    driver_external_ids: Vec<Option<ExternalId>>,
    titles: Vec<Title>,
    days: Vec<NaiveDate>,
    window_starts: Vec<Option<DateTime<Utc>>>,
    window_ends: Vec<Option<DateTime<Utc>>>,
    volumes: Vec<Option<f64>>,
}

impl TaskColumns {
    pub(super) fn len(&self) -> usize {
        self.external_ids.len()
    }
}

/// The batch checked, or INVALID_ARGUMENT naming every bad field.
pub(super) fn checked(tasks: &[TaskUpsert]) -> Result<TaskColumns, Status> {
    let mut violations = Violations::new();
    let mut columns = TaskColumns::default();
    if validate::batch_size(&mut violations, "tasks", tasks.len(), MAX_BATCH) {
        // Every item's key, blank where it is refused, for finding repeats by position.
        let mut keys = Vec::with_capacity(tasks.len());
        for (index, task) in tasks.iter().enumerate() {
            let field = |name: &str| format!("tasks[{index}].{name}");
            let external_id =
                violations.check(&field("external_id"), ExternalId::parse(&task.external_id));
            let company_id = violations.check(
                &field("company_id"),
                validate::uuid(&task.company_id).map(CompanyId::from_uuid),
            );
            let driver = task
                .driver_external_id
                .as_deref()
                .filter(|id| !id.trim().is_empty())
                .and_then(|id| {
                    violations.check(&field("driver_external_id"), ExternalId::parse(id))
                });
            let title = violations.check(&field("title"), Title::parse(&task.title));
            let day =
                violations.check(&field("scheduled_for"), validate::date(&task.scheduled_for));
            let mut instant = |name: &str, value: &Option<prost_types::Timestamp>| {
                value.as_ref().and_then(|timestamp| {
                    violations.check(
                        &field(name),
                        from_timestamp(timestamp).ok_or_else(|| "must be a valid time".to_owned()),
                    )
                })
            };
            let window_start = instant("window_start", &task.window_start);
            let window_end = instant("window_end", &task.window_end);
            if let (Some(start), Some(end)) = (window_start, window_end)
                && end < start
            {
                violations.add(&field("window_end"), "must not be before window_start");
            }
            let volume = task.volume_liters.and_then(|volume| {
                violations.check(&field("volume_liters"), validate::non_negative(volume))
            });
            keys.push(
                external_id
                    .as_ref()
                    .map(ExternalId::to_string)
                    .unwrap_or_default(),
            );
            // A refused item refuses the batch: only checked items become columns.
            let (Some(external_id), Some(company_id), Some(title), Some(day)) =
                (external_id, company_id, title, day)
            else {
                continue;
            };
            columns.external_ids.push(external_id);
            columns.company_ids.push(company_id);
            columns.driver_external_ids.push(driver);
            columns.titles.push(title);
            columns.days.push(day);
            columns.window_starts.push(window_start);
            columns.window_ends.push(window_end);
            columns.volumes.push(volume);
        }
        validate::distinct_keys(
            &mut violations,
            "tasks",
            "external_id",
            keys.iter().map(String::as_str),
        );
    }
    violations.into_result()?;
    Ok(columns)
}

/// What one task upsert did, how many of the rows it wrote have a driver, and which drivers
/// it newly assigned tasks to.
#[derive(Debug, sqlx::FromRow)]
struct TaskWritten {
    created: i64,
    updated: i64,
    assigned: i64,
    new_assignments: sqlx::types::Json<Vec<NewAssignments>>,
}

/// The tasks one upsert newly assigned to one driver.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(super) struct NewAssignments {
    #[serde(deserialize_with = "driver_id")]
    pub driver_id: DriverId,
    pub phone: Option<String>,
    pub tasks: i64,
    pub first_window_start: Option<DateTime<Utc>>,
    pub first_title: String,
}

/// A driver id as the statement's JSON writes it.
fn driver_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DriverId, D::Error> {
    uuid::Uuid::deserialize(deserializer).map(DriverId::from_uuid)
}

/// What [`upsert`] answers.
#[derive(Debug)]
pub(super) struct TasksWritten {
    pub written: Written,
    pub assigned: i64,
    pub new_assignments: Vec<NewAssignments>,
}

/// Creates the unknown tasks and updates the ones that differ, in one statement; answers
/// the counts, how many of the written tasks are assigned, and per driver the tasks that
/// became theirs (new and assigned, or pending until this statement: `before` reads the
/// tasks as they were when the statement began).
pub(super) async fn upsert(
    db: &TenantDb,
    caller: &Caller,
    columns: TaskColumns,
) -> Result<TasksWritten, sqlx::Error> {
    let query = sqlx::query_as(
        "WITH origin AS (
             -- Marks this statement's task events as an import's (read by their trigger).
             SELECT set_config('app.task_event_origin', 'import', true) AS origin
         ), input AS (
             SELECT i.*, d.id AS driver_id
             FROM unnest($2::text[], $3::uuid[], $4::text[], $5::text[], $6::date[],
                         $7::timestamptz[], $8::timestamptz[], $9::float8[])
                 AS i(external_id, company_id, driver_external_id, title, scheduled_for,
                      window_start, window_end, volume_liters)
             LEFT JOIN drivers d
                 ON d.tenant_id = $1 AND d.external_id = i.driver_external_id
                AND d.deleted_at IS NULL AND d.status = 'active'
             CROSS JOIN origin
         ), before AS (
             SELECT t.external_id, t.status
             FROM tasks t
             WHERE t.tenant_id = $1 AND t.deleted_at IS NULL AND t.external_id = ANY($2)
         ), written AS (
             INSERT INTO tasks (tenant_id, external_id, company_id, driver_id, status, title,
                                scheduled_for, window_start, window_end, volume_liters)
             SELECT $1, external_id, company_id, driver_id,
                    CASE WHEN driver_id IS NULL THEN 'pending' ELSE 'assigned' END,
                    title, scheduled_for, window_start, window_end, volume_liters
             FROM input
             ON CONFLICT (tenant_id, external_id)
                 WHERE deleted_at IS NULL AND external_id IS NOT NULL
             DO UPDATE SET
                 company_id = EXCLUDED.company_id, title = EXCLUDED.title,
                 scheduled_for = EXCLUDED.scheduled_for, window_start = EXCLUDED.window_start,
                 window_end = EXCLUDED.window_end, volume_liters = EXCLUDED.volume_liters,
                 driver_id = CASE WHEN tasks.status = 'pending'
                                  THEN coalesce(EXCLUDED.driver_id, tasks.driver_id)
                                  ELSE tasks.driver_id END,
                 status = CASE WHEN tasks.status = 'pending' AND EXCLUDED.driver_id IS NOT NULL
                               THEN 'assigned' ELSE tasks.status END
             WHERE tasks.status IN ('pending', 'assigned')
               AND ((tasks.company_id, tasks.title, tasks.scheduled_for, tasks.window_start,
                     tasks.window_end, tasks.volume_liters)
                    IS DISTINCT FROM
                    (EXCLUDED.company_id, EXCLUDED.title, EXCLUDED.scheduled_for,
                     EXCLUDED.window_start, EXCLUDED.window_end, EXCLUDED.volume_liters)
                    OR (tasks.status = 'pending' AND EXCLUDED.driver_id IS NOT NULL))
             RETURNING xmax = 0 AS inserted, external_id, driver_id, window_start, title
         ), newly_assigned AS (
             SELECT w.driver_id, count(*) AS tasks, min(w.window_start) AS first_window_start,
                    (array_agg(w.title ORDER BY w.window_start NULLS LAST, w.title))[1]
                        AS first_title
             FROM written w
             LEFT JOIN before b ON b.external_id = w.external_id
             WHERE w.driver_id IS NOT NULL AND (w.inserted OR b.status = 'pending')
             GROUP BY w.driver_id
         )
         SELECT (SELECT count(*) FROM written WHERE inserted) AS created,
                (SELECT count(*) FROM written WHERE NOT inserted) AS updated,
                (SELECT count(*) FROM written WHERE driver_id IS NOT NULL) AS assigned,
                (SELECT coalesce(json_agg(json_build_object(
                            'driver_id', n.driver_id, 'phone', d.phone, 'tasks', n.tasks,
                            'first_window_start', n.first_window_start,
                            'first_title', n.first_title)
                        ORDER BY n.driver_id), '[]'::json)
                 FROM newly_assigned n
                 JOIN drivers d ON d.tenant_id = $1 AND d.id = n.driver_id) AS new_assignments",
    )
    .bind(caller.tenant_id.as_str())
    .bind(&columns.external_ids)
    .bind(&columns.company_ids)
    .bind(&columns.driver_external_ids)
    .bind(&columns.titles)
    .bind(&columns.days)
    .bind(&columns.window_starts)
    .bind(&columns.window_ends)
    .bind(&columns.volumes);
    let written: TaskWritten = db.fetch_one(caller, query).await?;
    Ok(TasksWritten {
        written: Written {
            created: written.created,
            updated: written.updated,
        },
        assigned: written.assigned,
        new_assignments: written.new_assignments.0,
    })
}
