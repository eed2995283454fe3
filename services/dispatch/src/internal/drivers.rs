//! `UpsertDrivers`: Vessey's drivers into the tenant's, matched by `external_id`.

use director_platform::identity::Caller;
use director_platform::validate::{self, Violations};
use director_proto::internal::dispatch::DriverUpsert;
use director_store::tenant::TenantDb;
use tonic::Status;

use super::{MAX_BATCH, Written};
use crate::domain::{DriverName, DriverStatus, Email, ExternalId, PhoneE164};

/// A checked batch, as column arrays.
#[derive(Debug, Default)]
pub(super) struct DriverColumns {
    external_ids: Vec<ExternalId>,
    names: Vec<DriverName>,
    phones: Vec<Option<PhoneE164>>,
    emails: Vec<Option<Email>>,
    statuses: Vec<DriverStatus>,
}

impl DriverColumns {
    pub(super) fn len(&self) -> usize {
        self.external_ids.len()
    }
}

/// The batch checked and normalised, or INVALID_ARGUMENT naming every bad field. A phone or
/// e-mail Vessey holds in a form Director cannot use is dropped, not refused: the data is
/// Vessey's, and the driver is still worth having.
pub(super) fn checked(drivers: &[DriverUpsert]) -> Result<DriverColumns, Status> {
    let mut violations = Violations::new();
    let mut columns = DriverColumns::default();
    if validate::batch_size(&mut violations, "drivers", drivers.len(), MAX_BATCH) {
        // Every item's key, blank where it is refused, for finding repeats by position.
        let mut keys = Vec::with_capacity(drivers.len());
        for (index, driver) in drivers.iter().enumerate() {
            let field = |name: &str| format!("drivers[{index}].{name}");
            let external_id = violations.check(
                &field("external_id"),
                ExternalId::parse(&driver.external_id),
            );
            let name = violations.check(&field("name"), DriverName::parse(&driver.name));
            keys.push(
                external_id
                    .as_ref()
                    .map(ExternalId::to_string)
                    .unwrap_or_default(),
            );
            // A refused item refuses the batch: only checked items become columns.
            let (Some(external_id), Some(name)) = (external_id, name) else {
                continue;
            };
            columns.external_ids.push(external_id);
            columns.names.push(name);
            columns.phones.push(
                driver
                    .phone
                    .as_deref()
                    .and_then(|phone| PhoneE164::parse(phone).ok()),
            );
            columns.emails.push(
                driver
                    .email
                    .as_deref()
                    .and_then(|email| Email::parse(email).ok()),
            );
            columns.statuses.push(if driver.active {
                DriverStatus::Active
            } else {
                DriverStatus::Inactive
            });
        }
        validate::distinct_keys(
            &mut violations,
            "drivers",
            "external_id",
            keys.iter().map(String::as_str),
        );
    }
    violations.into_result()?;
    Ok(columns)
}

/// Creates the unknown drivers and updates the ones that differ, in one statement.
pub(super) async fn upsert(
    db: &TenantDb,
    caller: &Caller,
    columns: DriverColumns,
) -> Result<Written, sqlx::Error> {
    let query = sqlx::query_as(
        "WITH input AS (
             SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                 AS i(external_id, name, phone, email, status)
         ), written AS (
             INSERT INTO drivers (tenant_id, external_id, name, phone, email, status)
             SELECT $1, external_id, name, phone, email, status FROM input
             ON CONFLICT (tenant_id, external_id)
                 WHERE deleted_at IS NULL AND external_id IS NOT NULL
             DO UPDATE SET name = EXCLUDED.name, phone = EXCLUDED.phone,
                           email = EXCLUDED.email, status = EXCLUDED.status
             WHERE (drivers.name, drivers.phone, drivers.email, drivers.status)
                   IS DISTINCT FROM
                   (EXCLUDED.name, EXCLUDED.phone, EXCLUDED.email, EXCLUDED.status)
             RETURNING xmax = 0 AS inserted
         )
         SELECT count(*) FILTER (WHERE inserted) AS created,
                count(*) FILTER (WHERE NOT inserted) AS updated
         FROM written",
    )
    .bind(caller.tenant_id.as_str())
    .bind(&columns.external_ids)
    .bind(&columns.names)
    .bind(&columns.phones)
    .bind(&columns.emails)
    .bind(&columns.statuses);
    db.fetch_one(caller, query).await
}
