//! Real constraint violations from PostgreSQL become gRPC statuses without SQL in them.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::TestDb;
use director_store::error::{DbFailure, classify, status_from_sqlx};
use sqlx::PgPool;
use tonic::Code;

async fn schema(pool: &PgPool) {
    sqlx::raw_sql(
        "CREATE TABLE companies (
             id int PRIMARY KEY,
             email text NOT NULL CONSTRAINT companies_email_key UNIQUE,
             name text CONSTRAINT companies_name_not_blank CHECK (btrim(name) <> '')
         );
         CREATE TABLE tasks (
             id int PRIMARY KEY,
             company_id int NOT NULL CONSTRAINT tasks_company_fk REFERENCES companies (id)
         );",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// What a client must never read in a status message.
fn assert_no_internals(message: &str) {
    let lowered = message.to_lowercase();
    for leak in [
        "duplicate key",
        "violates",
        "constraint",
        "companies_",
        "tasks_",
        "insert",
        "sqlstate",
        "23505",
        "23503",
        "key (",
    ] {
        assert!(
            !lowered.contains(leak),
            "status message {message:?} leaks {leak:?}"
        );
    }
}

#[tokio::test]
async fn a_unique_violation_is_already_exists_without_sql_in_the_message() {
    let db = TestDb::create().await;
    let pool = db.superuser_pool().await;
    schema(&pool).await;

    let insert = "INSERT INTO companies (id, email, name) VALUES ($1, 'a@example.com', 'A')";
    sqlx::query(insert).bind(1).execute(&pool).await.unwrap();
    let error = sqlx::query(insert)
        .bind(2)
        .execute(&pool)
        .await
        .unwrap_err();

    assert_eq!(
        classify(&error),
        DbFailure::UniqueViolation {
            constraint: Some("companies_email_key".to_owned())
        }
    );
    let status = status_from_sqlx(&error);
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(!status.message().is_empty());
    assert_no_internals(status.message());
    assert!(status.details().is_empty());

    pool.close().await;
    db.drop().await;
}

#[tokio::test]
async fn a_foreign_key_violation_is_failed_precondition() {
    let db = TestDb::create().await;
    let pool = db.superuser_pool().await;
    schema(&pool).await;

    let error = sqlx::query("INSERT INTO tasks (id, company_id) VALUES (1, $1)")
        .bind(42)
        .execute(&pool)
        .await
        .unwrap_err();

    assert_eq!(
        classify(&error),
        DbFailure::ForeignKeyViolation {
            constraint: Some("tasks_company_fk".to_owned())
        }
    );
    let status = status_from_sqlx(&error);
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_no_internals(status.message());

    pool.close().await;
    db.drop().await;
}

#[tokio::test]
async fn check_and_not_null_violations_are_failed_precondition() {
    let db = TestDb::create().await;
    let pool = db.superuser_pool().await;
    schema(&pool).await;

    let blank_name =
        sqlx::query("INSERT INTO companies (id, email, name) VALUES (1, 'b@x.io', $1)")
            .bind("  ")
            .execute(&pool)
            .await
            .unwrap_err();
    assert_eq!(
        classify(&blank_name),
        DbFailure::CheckViolation {
            constraint: Some("companies_name_not_blank".to_owned())
        }
    );
    assert_eq!(
        status_from_sqlx(&blank_name).code(),
        Code::FailedPrecondition
    );
    assert_no_internals(status_from_sqlx(&blank_name).message());

    let missing_email = sqlx::query("INSERT INTO companies (id, email) VALUES (2, NULL)")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(matches!(
        classify(&missing_email),
        DbFailure::CheckViolation { .. }
    ));
    assert_eq!(
        status_from_sqlx(&missing_email).code(),
        Code::FailedPrecondition
    );

    pool.close().await;
    db.drop().await;
}

#[tokio::test]
async fn a_statement_timeout_is_deadline_exceeded_and_a_syntax_error_is_internal() {
    let db = TestDb::create().await;
    let pool = db.superuser_pool().await;

    let mut tx = pool.begin().await.unwrap();
    sqlx::raw_sql("SET LOCAL statement_timeout = 50")
        .execute(&mut *tx)
        .await
        .unwrap();
    let timeout = sqlx::raw_sql("SELECT pg_sleep(2)")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(classify(&timeout), DbFailure::Other);
    assert_eq!(status_from_sqlx(&timeout).code(), Code::DeadlineExceeded);
    drop(tx);

    let syntax = sqlx::raw_sql("SELEC 1").execute(&pool).await.unwrap_err();
    let status = status_from_sqlx(&syntax);
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(status.message(), "internal error");

    pool.close().await;
    db.drop().await;
}

#[tokio::test]
async fn a_value_the_database_cannot_store_is_invalid_argument_not_internal() {
    let db = TestDb::create().await;
    let pool = db.superuser_pool().await;
    schema(&pool).await;

    // "\u0000" is a valid JSON and protobuf string, but Postgres text cannot hold it.
    let nul = sqlx::query("INSERT INTO companies (id, email, name) VALUES (1, 'n@x.io', $1)")
        .bind("Acme\u{0}Farm")
        .execute(&pool)
        .await
        .unwrap_err();
    let status = status_from_sqlx(&nul);
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_no_internals(status.message());
    assert!(!status.message().to_lowercase().contains("0x00"));

    // A Timestamp chrono accepts but timestamptz cannot hold (year 200000 BC).
    let ancient = chrono::DateTime::from_timestamp(-6_400_000_000_000, 0).unwrap();
    let out_of_range = sqlx::query("SELECT $1::timestamptz")
        .bind(ancient)
        .execute(&pool)
        .await
        .unwrap_err();
    let status = status_from_sqlx(&out_of_range);
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        !status
            .message()
            .to_lowercase()
            .contains("out of range for type")
    );

    pool.close().await;
    db.drop().await;
}
