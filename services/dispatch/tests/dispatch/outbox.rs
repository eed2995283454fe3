//! The task-event outbox as the database keeps it, checked on a real PostgreSQL with the
//! service's migrations and its tenant transactions:
//! - every change of a task writes exactly one event in the same transaction, and a refused
//!   or rolled-back change writes none;
//! - a tenant's writers are serialised from their first task statement to commit, so event
//!   ids follow commit order (a reader resuming from an id misses nothing), while other
//!   tenants are not held up;
//! - row-level security keeps tenants apart even for a query that forgets its filter.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use director_platform::config::Env;
use director_platform::identity::{Caller, Role};
use director_store::db::DatabaseConfig;
use director_store::tenant;
use director_store::testing::fresh_database;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

struct Db {
    pool: PgPool,
    config: DatabaseConfig,
}

async fn database() -> Db {
    let url = fresh_database("dispatch").await;
    let config = DatabaseConfig::from_env(
        &Env::from_pairs([("DISPATCH_DATABASE_URL", url.as_str())]),
        "dispatch",
    )
    .unwrap();
    Db {
        pool: PgPool::connect(&url).await.unwrap(),
        config,
    }
}

impl Db {
    async fn begin(&self, tenant: &str) -> Transaction<'static, Postgres> {
        let caller = Caller::new("user", tenant, Role::Admin);
        tenant::begin(&self.pool, &caller, &self.config)
            .await
            .unwrap()
    }
}

async fn insert_task(tx: &mut Transaction<'static, Postgres>, tenant: &str) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO tasks (tenant_id, company_id, title, scheduled_for)
         VALUES ($1, gen_random_uuid(), 'collect', '2026-11-23') RETURNING id",
    )
    .bind(tenant)
    .fetch_one(&mut **tx)
    .await
    .unwrap()
}

async fn events(db: &Db, tenant: &str) -> Vec<(i64, Uuid, String)> {
    let mut tx = db.begin(tenant).await;
    let rows = sqlx::query_as("SELECT id, task_id, kind FROM task_events ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rows
}

#[tokio::test]
async fn each_change_writes_one_event_and_a_refused_or_rolled_back_one_writes_none() {
    let db = database().await;
    let mut tx = db.begin("dairy").await;
    let task = insert_task(&mut tx, "dairy").await;
    let driver: Uuid = sqlx::query_scalar(
        "INSERT INTO drivers (tenant_id, name) VALUES ('dairy', 'Ann') RETURNING id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE tasks SET status = 'assigned', driver_id = $1 WHERE id = $2")
        .bind(driver)
        .bind(task)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    // The trigger refuses assigned → completed whatever the statement says.
    let mut tx = db.begin("dairy").await;
    let refused =
        sqlx::query("UPDATE tasks SET status = 'completed', completed_at = now() WHERE id = $1")
            .bind(task)
            .execute(&mut *tx)
            .await
            .unwrap_err();
    let constraint = refused
        .as_database_error()
        .and_then(|error| error.constraint().map(str::to_owned));
    assert_eq!(constraint.as_deref(), Some("tasks_status_transition"));
    drop(tx);

    // A change rolled back leaves no event behind.
    let mut tx = db.begin("dairy").await;
    sqlx::query("UPDATE tasks SET title = 'renamed' WHERE id = $1")
        .bind(task)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let kinds: Vec<String> = events(&db, "dairy")
        .await
        .into_iter()
        .map(|(_, task_id, kind)| {
            assert_eq!(task_id, task);
            kind
        })
        .collect();
    assert_eq!(kinds, ["created", "assigned"]);
}

#[tokio::test]
async fn a_tenants_event_ids_follow_commit_order_and_other_tenants_are_not_held_up() {
    let db = database().await;

    // A writer of "dairy" that has not committed yet...
    let mut slow = db.begin("dairy").await;
    insert_task(&mut slow, "dairy").await;

    // ...holds up a second writer of "dairy" until it commits...
    let second = {
        let pool = db.pool.clone();
        let config = db.config.clone();
        tokio::spawn(async move {
            let caller = Caller::new("user", "dairy", Role::Admin);
            let mut tx = tenant::begin(&pool, &caller, &config).await.unwrap();
            insert_task(&mut tx, "dairy").await;
            tx.commit().await.unwrap();
        })
    };
    // ...but not a writer of another tenant.
    let mut other = db.begin("rival").await;
    tokio::time::timeout(Duration::from_secs(2), insert_task(&mut other, "rival"))
        .await
        .expect("another tenant's writer waited");
    other.commit().await.unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "the second writer did not wait");
    assert!(
        events(&db, "dairy").await.is_empty(),
        "uncommitted events are visible"
    );

    slow.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("the second writer never finished")
        .unwrap();

    // The slow writer committed first, so its event has the smaller id: a reader that saw
    // only the first event resumes from its id and gets the second.
    let dairy = events(&db, "dairy").await;
    assert_eq!(dairy.len(), 2);
    assert!(dairy[0].0 < dairy[1].0);
}

#[tokio::test]
async fn row_level_security_hides_other_tenants_tasks_drivers_and_events() {
    let db = database().await;
    for tenant in ["dairy", "rival"] {
        let mut tx = db.begin(tenant).await;
        insert_task(&mut tx, tenant).await;
        sqlx::query("INSERT INTO drivers (tenant_id, name) VALUES ($1, 'Ann')")
            .bind(tenant)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }

    let mut tx = db.begin("dairy").await;
    for table in ["tasks", "drivers", "task_events"] {
        // No tenant filter in the query: only the policy stands between tenants.
        let tenants: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT tenant_id FROM {table}"
        )))
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        assert_eq!(tenants, ["dairy"], "{table}");
    }
    let smuggled = sqlx::query(
        "INSERT INTO tasks (tenant_id, company_id, title, scheduled_for)
         VALUES ('rival', gen_random_uuid(), 'x', '2026-11-23')",
    )
    .execute(&mut *tx)
    .await;
    assert!(smuggled.is_err(), "wrote a task of another tenant");
}

#[tokio::test]
async fn a_task_cannot_name_a_driver_of_another_tenant() {
    let db = database().await;
    let mut tx = db.begin("rival").await;
    let rivals_driver: Uuid = sqlx::query_scalar(
        "INSERT INTO drivers (tenant_id, name) VALUES ('rival', 'Eve') RETURNING id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut tx = db.begin("dairy").await;
    let error = sqlx::query(
        "INSERT INTO tasks (tenant_id, company_id, driver_id, status, title, scheduled_for)
         VALUES ('dairy', gen_random_uuid(), $1, 'assigned', 'x', '2026-11-23')",
    )
    .bind(rivals_driver)
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(
        error.as_database_error().and_then(|e| e.constraint()),
        Some("tasks_driver_of_tenant")
    );
}
