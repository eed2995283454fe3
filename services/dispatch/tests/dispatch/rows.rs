//! Rows the relay tests start from, written straight to the database (as the service's own
//! statements would) so each test drives only the task changes it is about.

use sqlx::PgConnection;
use uuid::Uuid;

/// A new driver and a new pending task of `tenant`, in the caller's tenant transaction:
/// `(driver, task)`. The task's company is made up (Dispatch's table does not check it).
pub async fn driver_and_task(tx: &mut PgConnection, tenant: &str) -> (Uuid, Uuid) {
    let driver: Uuid = sqlx::query_scalar(
        "INSERT INTO drivers (tenant_id, name, phone) VALUES ($1, 'Ann', '+15550100001')
         RETURNING id",
    )
    .bind(tenant)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let task: Uuid = sqlx::query_scalar(
        "INSERT INTO tasks (tenant_id, company_id, title, scheduled_for)
         VALUES ($1, gen_random_uuid(), 'collect', '2026-11-23') RETURNING id",
    )
    .bind(tenant)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    (driver, task)
}
