//! `task_event_relay_backlog()`, the relay sweep's one view across tenants (migration 0007),
//! on a real PostgreSQL as the services log in:
//! - it answers the tenants with events that notify past their cursor — no other tenant,
//!   nothing of the events but when the oldest happened;
//! - the worker's session may call it, a tenant transaction may not;
//! - it runs as a role that is no superuser, has no attribute, is a member of no role, and may
//!   read the columns it needs and nothing else.

#![allow(clippy::unwrap_used)]

use director_platform::config::Env;
use director_platform::identity::{Caller, Role};
use director_store::db::DatabaseConfig;
use director_store::tenant;
use director_store::testing::{fresh_database, service_url};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

struct Db {
    owner: PgPool,
    service: PgPool,
    config: DatabaseConfig,
}

impl Db {
    async fn new() -> Self {
        let url = fresh_database("dispatch").await;
        let service = service_url(&url);
        Self {
            owner: PgPool::connect(&url).await.unwrap(),
            service: PgPool::connect(&service).await.unwrap(),
            config: DatabaseConfig::from_env(
                &Env::from_pairs([("DISPATCH_DATABASE_URL", service.as_str())]),
                "dispatch",
            )
            .unwrap(),
        }
    }

    /// A tenant transaction as the services run it: their login, the application role.
    async fn begin(&self, tenant: &str) -> Transaction<'static, Postgres> {
        let caller = Caller::new("user", tenant, Role::Admin);
        tenant::begin(&self.service, &caller, &self.config)
            .await
            .unwrap()
    }

    /// A new task of `tenant` (`created`, which does not notify), assigned when `assign`
    /// (`assigned`, which does). Answers the id of its last event.
    async fn task(&self, tenant: &str, assign: bool) -> i64 {
        let mut tx = self.begin(tenant).await;
        let task: Uuid = sqlx::query_scalar(
            "INSERT INTO tasks (tenant_id, company_id, title, scheduled_for)
             VALUES ($1, gen_random_uuid(), 'collect', '2026-11-23') RETURNING id",
        )
        .bind(tenant)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        if assign {
            let driver: Uuid = sqlx::query_scalar(
                "INSERT INTO drivers (tenant_id, name) VALUES ($1, 'Ann') RETURNING id",
            )
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
            sqlx::query("UPDATE tasks SET status = 'assigned', driver_id = $2 WHERE id = $1")
                .bind(task)
                .bind(driver)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        let last = sqlx::query_scalar("SELECT max(id) FROM task_events")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        last
    }
}

/// The SQLSTATE of a refusal.
fn refused<T: std::fmt::Debug>(result: Result<T, sqlx::Error>) -> String {
    let error = result.expect_err("refused");
    error
        .as_database_error()
        .and_then(|error| error.code())
        .unwrap_or_default()
        .into_owned()
}

#[tokio::test]
async fn the_backlog_answers_only_tenants_with_events_past_their_cursor() {
    let db = Db::new().await;
    db.task("dairy", true).await;
    db.task("dairy", false).await;
    db.task("creamery", false).await; // nothing that notifies
    let relayed = db.task("farm", true).await;
    db.task("farm", false).await; // after its cursor, but does not notify
    let mut tx = db.begin("farm").await;
    sqlx::query("INSERT INTO task_event_relay (tenant_id, last_event_id) VALUES ('farm', $1)")
        .bind(relayed)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The services' login outside any tenant transaction: the worker's session, which
    // itself sees no tenant's events.
    let backlog: Vec<(String, chrono::DateTime<chrono::Utc>)> =
        sqlx::query_as("SELECT tenant_id, oldest_pending FROM task_event_relay_backlog()")
            .fetch_all(&db.service)
            .await
            .unwrap();
    let assigned: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "SELECT occurred_at FROM task_events WHERE tenant_id = 'dairy' AND kind = 'assigned'",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(backlog, [("dairy".to_owned(), assigned)]);
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM task_events")
        .fetch_one(&db.service)
        .await
        .unwrap();
    assert_eq!(visible, 0);

    // Once dairy's cursor is past its event, no one.
    let mut tx = db.begin("dairy").await;
    sqlx::query(
        "INSERT INTO task_event_relay (tenant_id, last_event_id)
         SELECT 'dairy', max(id) FROM task_events WHERE kind = 'assigned'",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let backlog: Vec<String> =
        sqlx::query_scalar("SELECT tenant_id FROM task_event_relay_backlog()")
            .fetch_all(&db.service)
            .await
            .unwrap();
    assert_eq!(backlog, Vec::<String>::new());
}

#[tokio::test]
async fn a_tenant_transaction_cannot_call_it_and_its_role_can_read_nothing_else() {
    let db = Db::new().await;
    db.task("dairy", true).await;

    let mut tx = db.begin("dairy").await;
    let code = refused(
        sqlx::query("SELECT * FROM task_event_relay_backlog()")
            .fetch_all(&mut *tx)
            .await,
    );
    assert_eq!(code, "42501");
    drop(tx);

    let (owner, definer, superuser, attributes, memberships): (String, bool, bool, bool, i64) =
        sqlx::query_as(
            "SELECT r.rolname::text, p.prosecdef, r.rolsuper,
                    r.rolcanlogin OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication
                        OR r.rolbypassrls,
                    (SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)
             FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner
             WHERE p.oid = 'public.task_event_relay_backlog()'::regprocedure",
        )
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(owner, "director_relay_backlog");
    assert!(definer);
    assert!(!superuser && !attributes, "the owner has rights of its own");
    assert_eq!(memberships, 0);

    // Who may call it: the worker's role, nobody else (not PUBLIC, not the application role).
    let callers: Vec<String> = sqlx::query_scalar(
        "SELECT coalesce(grantee::regrole::text, 'PUBLIC')
         FROM pg_proc p, aclexplode(p.proacl) a
         WHERE p.oid = 'public.task_event_relay_backlog()'::regprocedure
           AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(callers, ["director_worker"]);

    // As its role: the columns it needs, and nothing more.
    for (statement, allowed) in [
        (
            "SELECT count(*) FROM (SELECT tenant_id, id, kind, driver_id, origin, occurred_at
                                   FROM task_events) e",
            true,
        ),
        (
            "SELECT count(*) FROM (SELECT tenant_id, last_event_id FROM task_event_relay) r",
            true,
        ),
        (
            "SELECT count(*) FROM (SELECT task FROM task_events) e",
            false,
        ),
        (
            "SELECT count(*) FROM (SELECT task_id FROM task_events) e",
            false,
        ),
        ("SELECT count(*) FROM tasks", false),
        ("SELECT count(*) FROM drivers", false),
        ("UPDATE task_event_relay SET last_event_id = 0", false),
        (
            "INSERT INTO task_event_relay (tenant_id) VALUES ('dairy')",
            false,
        ),
        ("SELECT count(*) FROM graphile_worker._private_jobs", false),
    ] {
        let mut tx = db.owner.begin().await.unwrap();
        sqlx::query("SET LOCAL ROLE director_relay_backlog")
            .execute(&mut *tx)
            .await
            .unwrap();
        let result = sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await;
        if allowed {
            result.unwrap();
        } else {
            assert_eq!(refused(result), "42501", "{statement}");
        }
    }
}
