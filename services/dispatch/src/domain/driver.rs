//! A driver as stored, and as its message.

use chrono::{DateTime, Utc};
use director_platform::time::to_timestamp;
use director_proto::dispatch as proto;

use super::DriverId;
use super::status::DriverStatus;
use super::values::{DriverName, Email, ExternalId, PhoneE164, UserRef};

/// A driver as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DriverRow {
    pub id: DriverId,
    pub name: DriverName,
    pub phone: Option<PhoneE164>,
    pub email: Option<Email>,
    pub external_id: Option<ExternalId>,
    pub user_id: Option<UserRef>,
    pub status: DriverStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<DriverRow> for proto::Driver {
    fn from(row: DriverRow) -> Self {
        Self {
            id: row.id.to_string(),
            name: row.name.into_string(),
            phone: row.phone.map(PhoneE164::into_string),
            email: row.email.map(Email::into_string),
            external_id: row.external_id.map(ExternalId::into_string),
            user_id: row.user_id.map(UserRef::into_string),
            status: proto::DriverStatus::from(row.status) as i32,
            created_at: Some(to_timestamp(row.created_at)),
            updated_at: Some(to_timestamp(row.updated_at)),
            deleted_at: row.deleted_at.map(to_timestamp),
        }
    }
}
