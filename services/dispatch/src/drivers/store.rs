//! The drivers table. Every statement runs in a tenant transaction (row-level security) and
//! filters by `tenant_id` itself; reads take the caller's driver user id (see
//! [`crate::scope`]) so a driver finds only their own record.

use director_platform::identity::Caller;
use director_platform::validate::Page;
use director_store::tenant::TenantDb;
use sqlx::{Postgres, QueryBuilder};

use crate::domain::{
    DriverId, DriverName, DriverRow, DriverStatus, Email, ExternalId, PhoneE164, UserRef,
};
use crate::scope::driver_user;

/// The columns of a `DriverRow`, as a literal so statements stay `&'static str`.
macro_rules! columns {
    () => {
        "id, name, phone, email, external_id, user_id, status, created_at, updated_at, deleted_at"
    };
}

/// Limits a drivers query to the caller's own record when the caller is a driver, with the
/// driver's user id as `$2`.
macro_rules! own_record_only {
    () => {
        "($2::text IS NULL OR user_id = $2)"
    };
}

/// The validated fields of a new driver.
#[derive(Debug, Clone)]
pub struct NewDriver {
    pub name: DriverName,
    pub phone: Option<PhoneE164>,
    pub email: Option<Email>,
    pub external_id: Option<ExternalId>,
    pub user_id: Option<UserRef>,
    pub status: DriverStatus,
}

/// The validated changes of an update: `None` leaves a column alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct DriverChanges {
    pub name: Option<DriverName>,
    pub phone: Option<Option<PhoneE164>>,
    pub email: Option<Option<Email>>,
    pub external_id: Option<Option<ExternalId>>,
    pub user_id: Option<Option<UserRef>>,
    pub status: Option<DriverStatus>,
}

impl DriverChanges {
    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.phone.is_none()
            && self.email.is_none()
            && self.external_id.is_none()
            && self.user_id.is_none()
            && self.status.is_none()
    }
}

/// Reads and writes drivers for one caller's tenant at a time.
#[derive(Debug, Clone)]
pub struct DriverStore {
    db: TenantDb,
}

impl DriverStore {
    pub fn new(db: TenantDb) -> Self {
        Self { db }
    }

    /// The live drivers the caller sees, oldest first, optionally with one status.
    pub async fn list(
        &self,
        caller: &Caller,
        status: Option<DriverStatus>,
        page: Page,
    ) -> Result<Vec<DriverRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM drivers
             WHERE tenant_id = $1 AND deleted_at IS NULL AND ",
            own_record_only!(),
            " AND ($3::text IS NULL OR status = $3)
             ORDER BY created_at, id
             OFFSET $4 LIMIT $5"
        ))
        .bind(caller.tenant_id.as_str())
        .bind(driver_user(caller))
        .bind(status)
        .bind(page.offset)
        .bind(page.limit);
        self.db.read_all(caller, query, "created_at, id").await
    }

    pub async fn create(&self, caller: &Caller, new: NewDriver) -> Result<DriverRow, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "INSERT INTO drivers (tenant_id, name, phone, email, external_id, user_id, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             RETURNING ",
            columns!()
        ))
        .bind(caller.tenant_id.as_str())
        .bind(new.name)
        .bind(new.phone)
        .bind(new.email)
        .bind(new.external_id)
        .bind(new.user_id)
        .bind(new.status);
        self.db.fetch_one(caller, query).await
    }

    /// The live driver `id`, if the caller sees it.
    pub async fn get(
        &self,
        caller: &Caller,
        id: DriverId,
    ) -> Result<Option<DriverRow>, sqlx::Error> {
        let query = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM drivers WHERE tenant_id = $1 AND ",
            own_record_only!(),
            " AND id = $3 AND deleted_at IS NULL"
        ))
        .bind(caller.tenant_id.as_str())
        .bind(driver_user(caller))
        .bind(id);
        self.db.read_optional(caller, query).await
    }

    /// Applies `changes` to the live driver `id`; `None` when there is no such driver.
    pub async fn update(
        &self,
        caller: &Caller,
        id: DriverId,
        changes: DriverChanges,
    ) -> Result<Option<DriverRow>, sqlx::Error> {
        if changes.is_empty() {
            return self.get(caller, id).await;
        }
        let mut statement = update_statement(caller, id, changes);
        self.db
            .fetch_optional(caller, statement.build_query_as())
            .await
    }

    /// Marks the live driver `id` deleted; `false` when there is no such driver. Its tasks
    /// keep naming it.
    pub async fn soft_delete(&self, caller: &Caller, id: DriverId) -> Result<bool, sqlx::Error> {
        let query = sqlx::query(
            "UPDATE drivers SET deleted_at = now()
             WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(caller.tenant_id.as_str());
        Ok(self.db.execute(caller, query).await? == 1)
    }
}

/// `UPDATE drivers SET <changed columns> ... RETURNING ...` with every value bound.
fn update_statement(
    caller: &Caller,
    id: DriverId,
    changes: DriverChanges,
) -> QueryBuilder<Postgres> {
    let mut query = QueryBuilder::new("UPDATE drivers SET ");
    let mut columns = query.separated(", ");
    if let Some(name) = changes.name {
        columns.push("name = ").push_bind_unseparated(name);
    }
    if let Some(status) = changes.status {
        columns.push("status = ").push_bind_unseparated(status);
    }
    if let Some(phone) = changes.phone {
        columns.push("phone = ").push_bind_unseparated(phone);
    }
    if let Some(email) = changes.email {
        columns.push("email = ").push_bind_unseparated(email);
    }
    if let Some(external_id) = changes.external_id {
        columns
            .push("external_id = ")
            .push_bind_unseparated(external_id);
    }
    if let Some(user_id) = changes.user_id {
        columns.push("user_id = ").push_bind_unseparated(user_id);
    }
    query
        .push(" WHERE id = ")
        .push_bind(id)
        .push(" AND tenant_id = ")
        .push_bind(caller.tenant_id.to_string())
        .push(" AND deleted_at IS NULL RETURNING ")
        .push(columns!());
    query
}
