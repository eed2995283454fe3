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

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::{Query, QueryAs};
use sqlx::{FromRow, PgPool, Postgres, Transaction};

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

/// A service's database seen through tenant transactions: each method runs one statement in
/// its own [`begin`] transaction and commits, so a store method is its SQL and nothing else.
///
/// Statements are prepared by name unless the pool is behind pgbouncer in transaction mode
/// (see [`crate::db`]); callers never choose. Work that needs several statements in one
/// transaction takes [`TenantDb::begin`] instead.
#[derive(Debug, Clone)]
pub struct TenantDb {
    pool: PgPool,
    config: DatabaseConfig,
}

impl TenantDb {
    /// Transactions on `pool`, configured by `config`.
    pub fn new(pool: PgPool, config: DatabaseConfig) -> Self {
        Self { pool, config }
    }

    /// The pool, for work outside any tenant (health checks, listeners).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The pool's settings.
    pub fn config(&self) -> &DatabaseConfig {
        &self.config
    }

    /// A tenant transaction for several statements; see [`begin`]. Pass
    /// [`TenantDb::persistent`] to each statement's `.persistent(..)`.
    pub async fn begin(
        &self,
        caller: &Caller,
    ) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        begin(&self.pool, caller, &self.config).await
    }

    /// Whether statements may be prepared by name.
    pub fn persistent(&self) -> bool {
        self.config.persistent_statements()
    }

    /// Every row `query` returns, read in `caller`'s tenant.
    pub async fn fetch_all<'q, O>(
        &self,
        caller: &Caller,
        query: QueryAs<'q, Postgres, O, PgArguments>,
    ) -> Result<Vec<O>, sqlx::Error>
    where
        O: Send + Unpin + for<'r> FromRow<'r, PgRow>,
    {
        let mut tx = self.begin(caller).await?;
        let rows = query
            .persistent(self.persistent())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The first row `query` returns, if any, in `caller`'s tenant.
    pub async fn fetch_optional<'q, O>(
        &self,
        caller: &Caller,
        query: QueryAs<'q, Postgres, O, PgArguments>,
    ) -> Result<Option<O>, sqlx::Error>
    where
        O: Send + Unpin + for<'r> FromRow<'r, PgRow>,
    {
        let mut tx = self.begin(caller).await?;
        let row = query
            .persistent(self.persistent())
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The one row `query` returns (`RowNotFound` when none), in `caller`'s tenant.
    pub async fn fetch_one<'q, O>(
        &self,
        caller: &Caller,
        query: QueryAs<'q, Postgres, O, PgArguments>,
    ) -> Result<O, sqlx::Error>
    where
        O: Send + Unpin + for<'r> FromRow<'r, PgRow>,
    {
        self.fetch_optional(caller, query)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// Runs `query` in `caller`'s tenant; the number of rows it affected.
    pub async fn execute<'q>(
        &self,
        caller: &Caller,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Result<u64, sqlx::Error> {
        let mut tx = self.begin(caller).await?;
        let affected = query
            .persistent(self.persistent())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(affected)
    }
}
