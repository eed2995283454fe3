//! A collection task as stored, and as its message: read by the task store, carried by the
//! task events (`jsonb_populate_record(NULL::tasks, …)` gives the same columns) and by the
//! relay.

use chrono::{DateTime, NaiveDate, Utc};
use director_platform::time::to_timestamp;
use director_proto::dispatch as proto;

use super::status::TaskStatus;
use super::values::{ExternalId, Notes, Title};
use super::{CompanyId, DriverId, TaskId};

/// A task as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TaskRow {
    pub id: TaskId,
    pub company_id: CompanyId,
    pub driver_id: Option<DriverId>,
    pub title: Title,
    pub notes: Option<Notes>,
    pub scheduled_for: NaiveDate,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub status: TaskStatus,
    pub volume_liters: Option<f64>,
    pub external_id: Option<ExternalId>,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
}

impl From<TaskRow> for proto::Task {
    fn from(row: TaskRow) -> Self {
        Self {
            id: row.id.to_string(),
            company_id: row.company_id.to_string(),
            driver_id: row.driver_id.map(|id| id.to_string()),
            title: row.title.into_string(),
            notes: row.notes.map(Notes::into_string),
            scheduled_for: row.scheduled_for.format("%Y-%m-%d").to_string(),
            window_start: row.window_start.map(to_timestamp),
            window_end: row.window_end.map(to_timestamp),
            status: proto::TaskStatus::from(row.status) as i32,
            volume_liters: row.volume_liters,
            external_id: row.external_id.map(ExternalId::into_string),
            version: row.version,
            created_at: Some(to_timestamp(row.created_at)),
            updated_at: Some(to_timestamp(row.updated_at)),
            completed_at: row.completed_at.map(to_timestamp),
            cancel_reason: row.cancel_reason,
        }
    }
}
