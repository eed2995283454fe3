//! Transactions scoped to the caller's tenant.
//!
//! Every query already filters by `tenant_id`; row-level security is the net under that. The
//! policies read `current_setting('app.tenant_id', true)`, and they must apply even though
//! the pool may log in as a superuser (superusers and table owners bypass RLS unless the
//! table has `FORCE ROW LEVEL SECURITY` *and* the current role is not a superuser). So each
//! transaction switches to the non-superuser application role and sets the tenant, both with
//! `set_config(.., true)` — transaction-local, undone at COMMIT/ROLLBACK, so a pooled
//! connection (or a pgbouncer server connection) never carries one tenant into the next
//! transaction.

use sqlx::{PgPool, Postgres, Transaction};

use crate::db::DatabaseConfig;
use crate::identity::Caller;

/// Begins a transaction in which row-level security sees `caller.tenant_id`, the current
/// role is `db.app_role`, and `statement_timeout` is `db.statement_timeout`.
///
/// The three settings go in one statement after `BEGIN` (one round trip); it is an unnamed
/// statement behind pgbouncer. The session user must be a member of `db.app_role` (a
/// superuser always is).
pub async fn begin(
    pool: &PgPool,
    caller: &Caller,
    db: &DatabaseConfig,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "SELECT set_config('app.tenant_id', $1, true), \
                set_config('role', $2, true), \
                set_config('statement_timeout', $3, true)",
    )
    .bind(&caller.tenant_id)
    .bind(&db.app_role)
    .bind(db.statement_timeout.as_millis().to_string())
    .persistent(db.persistent_statements())
    .execute(&mut *tx)
    .await?;
    Ok(tx)
}
