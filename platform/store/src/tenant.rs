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
//!
//! Round trips are the cost of a request (issue 9 measured a read at four: `BEGIN`, the
//! settings, the query, `COMMIT`), so:
//!
//! - a transaction opens with `BEGIN` and the settings in one simple-protocol message
//!   ([`begin`]; the values travel as quoted literals, see [`literal`]);
//! - a read ([`TenantDb::read_optional`], [`TenantDb::read_one`], and
//!   [`TenantDb::read_all`] with its order) is one statement in PostgreSQL's implicit
//!   transaction, which sets the tenant before it reads ([`scoped_read`]): one round trip. It is used only when row-level security
//!   applies to the login role itself (not a superuser, no BYPASSRLS: the services' role
//!   `director migrate` creates), because a role switch inside a statement comes too late for
//!   the plan, and never behind pgbouncer in transaction mode (see below). It fails closed:
//!   evaluated before the tenant is set, the policies see no tenant and match no row.
//!
//! # Reads behind pgbouncer in transaction mode
//!
//! Behind pgbouncer a read runs in a tenant transaction ([`begin`], the statement, `COMMIT`:
//! four round trips, each a short hold of a server connection), not as one statement. Not
//! for want of a statement timeout — that could come from the login role's defaults — but
//! because one statement outside a transaction is not one exchange there. A named
//! statement would outlive its client on the shared server connection (see [`crate::db`]);
//! an unnamed one sqlx sends in two exchanges, `Parse`+`Describe`+`Sync` then
//! `Bind`+`Execute`+`Sync`, and between them pgbouncer hands the server connection to
//! whichever client asks: the `Bind` may land where another client's statement was just
//! parsed and run *that* statement with this one's parameters (248 of 400 such queries did,
//! 8 clients on one server connection of pgbouncer 1.18:
//! `platform/store/tests/store/pgbouncer.rs`, `unnamed_statements_outside_a_transaction_cross_clients_behind_pgbouncer`).
//! Inside a transaction pgbouncer keeps the server connection for the client, so both
//! exchanges meet the same statement. pgbouncer ≥ 1.21 (`max_prepared_statements`) tracks
//! *named* statements only, so this holds for it too. Work that needs a session of its own
//! (`LISTEN`, the job worker) does not go through pgbouncer at all: [`crate::db`], "Sessions".

use std::sync::Arc;

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::{Query, QueryAs};
use sqlx::{
    Arguments as _, AssertSqlSafe, Execute as _, FromRow, PgConnection, PgPool, Postgres,
    Transaction,
};
use tokio::sync::OnceCell;

use crate::db::DatabaseConfig;
use director_platform::identity::Caller;

/// Begins a transaction in which row-level security sees `caller.tenant_id`, the current
/// role is `db.app_role`, `statement_timeout` is `db.statement_timeout`, and
/// `app.traceparent` is the current span's trace context (see [`current_traceparent`]).
///
/// `BEGIN` and the three settings are one simple-protocol message: one round trip, and no
/// statement for pgbouncer to lose. The session user must be a member of `db.app_role` (a
/// superuser always is).
pub async fn begin(
    pool: &PgPool,
    caller: &Caller,
    db: &DatabaseConfig,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let statement = format!(
        "BEGIN; SELECT set_config('app.tenant_id', {}, true), set_config('role', {}, true), \
         set_config('statement_timeout', '{}', true), set_config('app.traceparent', {}, true)",
        literal(&caller.tenant_id)?,
        literal(&db.app_role)?,
        db.statement_timeout.as_millis(),
        literal(&current_traceparent())?,
    );
    pool.begin_with(AssertSqlSafe(statement)).await
}

/// The W3C `traceparent` of the current span (empty outside a trace): jobs that triggers
/// queue in the transaction copy it from `app.traceparent` into their payload, so their
/// spans link to the request that queued them, as [`crate::jobs::enqueue`]'s do.
fn current_traceparent() -> String {
    let mut headers = http::HeaderMap::new();
    director_platform::telemetry::inject_context(&mut headers);
    headers
        .get(director_platform::telemetry::TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Runs one database operation of `service` (its `service.name`) on `database` inside an
/// OpenTelemetry client span (`db.system.name`
/// postgresql, `db.namespace` the database, `db.operation.name`), and records its duration
/// in `db_client_operation_duration_seconds` labelled `db_operation_name`. The operation is
/// what the platform did (`read`: one scoped statement, `query`, `execute`, `begin`), not
/// the SQL text, which can carry personal data.
async fn observed<T>(
    service: &str,
    database: &str,
    operation: &'static str,
    work: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    use tracing::Instrument as _;
    let span = tracing::info_span!(
        "db",
        otel.name = operation,
        otel.kind = "client",
        db.system.name = "postgresql",
        db.namespace = database,
        db.operation.name = operation,
        "error.type" = tracing::field::Empty,
    );
    director_platform::telemetry::name_service(&span, service);
    let started = std::time::Instant::now();
    let result = work.instrument(span.clone()).await;
    if let Err(error) = &result {
        span.record("error.type", error_type(error));
    }
    metrics::histogram!("db_client_operation_duration_seconds", "db_operation_name" => operation)
        .record(started.elapsed().as_secs_f64());
    result
}

/// A low-cardinality name for a database error, for spans.
fn error_type(error: &sqlx::Error) -> &'static str {
    match error {
        sqlx::Error::Database(_) => "database",
        sqlx::Error::PoolTimedOut => "pool_timed_out",
        sqlx::Error::RowNotFound => "row_not_found",
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => "connection",
        _ => "other",
    }
}

/// `value` as an SQL string literal: an escape string (`E'…'`) with quotes and backslashes
/// doubled, which reads back exactly whatever `standard_conforming_strings` says. A NUL,
/// which no PostgreSQL text can hold, is refused.
pub fn literal(value: &str) -> Result<String, sqlx::Error> {
    if value.contains('\0') {
        return Err(sqlx::Error::Protocol(
            "a tenant setting cannot contain a NUL character".to_owned(),
        ));
    }
    let mut quoted = String::with_capacity(value.len() + 3);
    quoted.push_str("E'");
    for character in value.chars() {
        if matches!(character, '\'' | '\\') {
            quoted.push(character);
        }
        quoted.push(character);
    }
    quoted.push('\'');
    Ok(quoted)
}

/// `sql`, whose parameters are `$1..$n`, as one statement that first sets the tenant to
/// parameter `$n+1`, then runs `sql` for it.
///
/// The scope is a materialized CTE; the query is a lateral subquery that depends on it and
/// cannot be flattened (`OFFSET 0`), so the plan scans the scope (setting the tenant) before
/// it runs the query, whose row-level-security checks then see the tenant. The setting is
/// transaction-local and the statement is its own transaction, so it ends with the statement.
pub fn scoped_read(sql: &str, parameters: usize) -> String {
    scoped_read_ordered(sql, parameters, None)
}

/// [`scoped_read`] for a query of many rows: the outer statement orders them by `order_by`
/// (the query's own `ORDER BY`, in terms of its output columns), since the order of a
/// subquery's rows is not guaranteed to survive the statement around it.
pub fn scoped_read_ordered(sql: &str, parameters: usize, order_by: Option<&str>) -> String {
    let tenant = parameters + 1;
    let mut statement = format!(
        "WITH director_scope AS MATERIALIZED \
           (SELECT set_config('app.tenant_id', ${tenant}, true) AS director_tenant) \
         SELECT director_row.* FROM director_scope CROSS JOIN LATERAL \
           (SELECT * FROM ({sql}) AS director_query \
            WHERE director_scope.director_tenant IS NOT NULL OFFSET 0) AS director_row"
    );
    if let Some(order_by) = order_by {
        statement.push_str(" ORDER BY ");
        statement.push_str(order_by);
    }
    statement
}

/// `query` rewritten by [`scoped_read_ordered`] for `caller`'s tenant, its arguments kept.
fn scoped<'q, O>(
    mut query: QueryAs<'q, Postgres, O, PgArguments>,
    caller: &Caller,
    order_by: Option<&str>,
) -> Result<QueryAs<'q, Postgres, O, PgArguments>, sqlx::Error>
where
    O: Send + Unpin + for<'r> FromRow<'r, PgRow>,
{
    let mut arguments = query
        .take_arguments()
        .map_err(sqlx::Error::Encode)?
        .unwrap_or_default();
    let sql = scoped_read_ordered(query.sql().as_str(), arguments.len(), order_by);
    arguments
        .add(caller.tenant_id.as_str())
        .map_err(sqlx::Error::Encode)?;
    Ok(sqlx::query_as_with::<_, O, _>(
        AssertSqlSafe(sql),
        arguments,
    ))
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
    /// Whether row-level security applies to the login role itself, so a one-statement read
    /// may set the tenant without switching role; learned from the first read.
    login_is_policed: Arc<OnceCell<bool>>,
    /// The database's name, for spans.
    database: Arc<str>,
}

impl TenantDb {
    /// Transactions on `pool`, configured by `config`.
    pub fn new(pool: PgPool, config: DatabaseConfig) -> Self {
        Self {
            pool,
            database: config.database_name().unwrap_or_default().into(),
            config,
            login_is_policed: Arc::new(OnceCell::new()),
        }
    }

    /// Whether a read may be one scoped statement (see the module docs): never behind
    /// pgbouncer in transaction mode, where its two exchanges could meet different server
    /// connections.
    async fn reads_in_one_statement(&self) -> Result<bool, sqlx::Error> {
        if self.config.pgbouncer_transaction_mode {
            return Ok(false);
        }
        let policed = self
            .login_is_policed
            .get_or_try_init(|| async {
                sqlx::query_scalar::<_, bool>(
                    "SELECT NOT (rolsuper OR rolbypassrls) FROM pg_roles \
                     WHERE rolname = session_user",
                )
                .fetch_optional(&self.pool)
                .await
                .map(|policed| policed.unwrap_or(false))
            })
            .await?;
        Ok(*policed)
    }

    /// [`observed`] for this service's database.
    async fn observed<T>(
        &self,
        operation: &'static str,
        work: impl std::future::Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        observed(
            &self.config.application_name,
            &self.database,
            operation,
            work,
        )
        .await
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
        self.observed("begin", begin(&self.pool, caller, &self.config))
            .await
    }

    /// `work` in a tenant transaction of `caller`, committed when it succeeds; observed as
    /// `operation`.
    async fn in_transaction<T>(
        &self,
        caller: &Caller,
        operation: &'static str,
        work: impl AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        self.observed(operation, async {
            let mut tx = begin(&self.pool, caller, &self.config).await?;
            let value = work(&mut tx).await?;
            tx.commit().await?;
            Ok(value)
        })
        .await
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
        let persistent = self.persistent();
        self.in_transaction(caller, "query", async |connection| {
            query.persistent(persistent).fetch_all(connection).await
        })
        .await
    }

    /// Every row the read-only `query` (a `SELECT`) returns in `caller`'s tenant, ordered by
    /// `order_by` — the query's own `ORDER BY` in terms of its output columns, e.g.
    /// `"created_at, id"`: in one round trip when the login role is policed (see the module
    /// docs), else like [`TenantDb::fetch_all`].
    pub async fn read_all<'q, O>(
        &self,
        caller: &Caller,
        query: QueryAs<'q, Postgres, O, PgArguments>,
        order_by: &'static str,
    ) -> Result<Vec<O>, sqlx::Error>
    where
        O: Send + Unpin + for<'r> FromRow<'r, PgRow>,
    {
        if !self.reads_in_one_statement().await? {
            return self.fetch_all(caller, query).await;
        }
        let read = scoped(query, caller, Some(order_by))?;
        self.observed("read", read.fetch_all(&self.pool)).await
    }

    /// The first row the read-only `query` (a `SELECT`) returns, if any, in `caller`'s
    /// tenant: in one round trip when the login role is policed (see the module docs), else
    /// like [`TenantDb::fetch_optional`].
    pub async fn read_optional<'q, O>(
        &self,
        caller: &Caller,
        query: QueryAs<'q, Postgres, O, PgArguments>,
    ) -> Result<Option<O>, sqlx::Error>
    where
        O: Send + Unpin + for<'r> FromRow<'r, PgRow>,
    {
        if !self.reads_in_one_statement().await? {
            return self.fetch_optional(caller, query).await;
        }
        let read = scoped(query, caller, None)?;
        self.observed("read", read.fetch_optional(&self.pool)).await
    }

    /// The one row the read-only `query` returns (`RowNotFound` when none); see
    /// [`TenantDb::read_optional`].
    pub async fn read_one<'q, O>(
        &self,
        caller: &Caller,
        query: QueryAs<'q, Postgres, O, PgArguments>,
    ) -> Result<O, sqlx::Error>
    where
        O: Send + Unpin + for<'r> FromRow<'r, PgRow>,
    {
        self.read_optional(caller, query)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
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
        let persistent = self.persistent();
        self.in_transaction(caller, "query", async |connection| {
            query
                .persistent(persistent)
                .fetch_optional(connection)
                .await
        })
        .await
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
        let persistent = self.persistent();
        self.in_transaction(caller, "execute", async |connection| {
            let done = query.persistent(persistent).execute(connection).await?;
            Ok(done.rows_affected())
        })
        .await
    }
}
