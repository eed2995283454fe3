//! The domain's stored values against a real PostgreSQL with Dispatch's migrations: each
//! enum's names are exactly those its column's `CHECK` allows, every value binds as `text`
//! and decodes back, a name we did not write is a decoding error (never a default), and ids
//! travel as `uuid`.

#![allow(clippy::unwrap_used)]

use director_dispatch::domain::{DriverId, DriverStatus, TaskEventKind, TaskId, TaskStatus};
use director_store::testing::fresh_database;
use sqlx::PgPool;

async fn pool() -> PgPool {
    PgPool::connect(&fresh_database("dispatch").await)
        .await
        .unwrap()
}

/// The names the `CHECK (column IN (…))` constraint `name` allows, as the migrations wrote
/// them.
async fn allowed_names(pool: &PgPool, constraint: &str) -> Vec<String> {
    let definition: String = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1",
    )
    .bind(constraint)
    .fetch_one(pool)
    .await
    .unwrap();
    // CHECK ((status = ANY (ARRAY['pending'::text, …])))
    let mut names: Vec<String> = definition
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

fn sorted(names: impl IntoIterator<Item = &'static str>) -> Vec<String> {
    let mut names: Vec<String> = names.into_iter().map(str::to_owned).collect();
    names.sort();
    names
}

#[tokio::test]
async fn each_enum_names_exactly_what_its_column_allows() {
    let pool = pool().await;
    assert_eq!(
        allowed_names(&pool, "tasks_status_check").await,
        sorted(TaskStatus::ALL.iter().map(|status| status.as_str()))
    );
    assert_eq!(
        allowed_names(&pool, "drivers_status_check").await,
        sorted(DriverStatus::ALL.iter().map(|status| status.as_str()))
    );
    assert_eq!(
        allowed_names(&pool, "task_events_kind_check").await,
        sorted(TaskEventKind::ALL.iter().map(|kind| kind.as_str()))
    );
}

#[tokio::test]
async fn values_bind_as_text_and_decode_back() {
    let pool = pool().await;
    for status in TaskStatus::ALL {
        let (text, back): (String, TaskStatus) = sqlx::query_as("SELECT $1::text, $1")
            .bind(status)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!((text.as_str(), back), (status.as_str(), *status));
    }
    // As an array, the way the bulk upserts bind their columns.
    let statuses: Vec<DriverStatus> = sqlx::query_scalar("SELECT unnest($1::text[])")
        .bind(DriverStatus::ALL)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(statuses, DriverStatus::ALL);
    let kind: Option<TaskEventKind> = sqlx::query_scalar("SELECT NULL::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kind, None);
}

#[tokio::test]
async fn a_name_we_did_not_write_is_an_error() {
    let pool = pool().await;
    let error = sqlx::query_scalar::<_, TaskStatus>("SELECT 'archived'::text")
        .fetch_one(&pool)
        .await
        .unwrap_err();
    assert!(
        matches!(error, sqlx::Error::ColumnDecode { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("archived"), "{error}");
}

#[tokio::test]
async fn ids_travel_as_uuids() {
    let pool = pool().await;
    let task = TaskId::new_random();
    let (text, back): (String, TaskId) = sqlx::query_as("SELECT $1::uuid::text, $1::uuid")
        .bind(task)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((text, back), (task.to_string(), task));
    let drivers = vec![DriverId::new_random(), DriverId::new_random()];
    let back: Vec<DriverId> = sqlx::query_scalar("SELECT unnest($1::uuid[])")
        .bind(&drivers)
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(back, drivers);
}
