//! Migrations: the shared folder and a service's folder form one version sequence.
#![allow(clippy::unwrap_used)]

mod common;

use director_platform::migrate::create_and_migrate;

fn folder_with(root: &std::path::Path, folder: &str, file: &str, sql: &str) {
    let dir = root.join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file), sql).unwrap();
}

#[tokio::test]
async fn shared_and_service_migrations_are_applied_in_one_sequence_and_only_once() {
    let root = std::env::temp_dir().join(format!("director-migrate-{}", uuid::Uuid::new_v4()));
    folder_with(
        &root,
        "shared",
        "0001_base.sql",
        "CREATE TABLE base (id int);",
    );
    folder_with(
        &root,
        "svc",
        "0002_own.sql",
        "CREATE TABLE own (base_id int);",
    );
    let db = common::TestDb::create().await;

    let first = create_and_migrate(&db.url, &root, "svc").await.unwrap();
    assert_eq!((first.known, first.applied), (2, 2));
    let again = create_and_migrate(&db.url, &root, "svc").await.unwrap();
    assert_eq!((again.known, again.applied), (2, 0));
    // A service without a folder of its own gets the shared migrations alone.
    let bare = common::TestDb::create().await;
    let shared_only = create_and_migrate(&bare.url, &root, "absent")
        .await
        .unwrap();
    assert_eq!((shared_only.known, shared_only.applied), (1, 1));

    std::fs::remove_dir_all(&root).unwrap();
    db.drop().await;
    bare.drop().await;
}

#[tokio::test]
async fn a_service_migration_reusing_a_shared_version_is_refused() {
    let root = std::env::temp_dir().join(format!("director-migrate-{}", uuid::Uuid::new_v4()));
    folder_with(&root, "shared", "0001_base.sql", "SELECT 1;");
    folder_with(&root, "svc", "0001_clash.sql", "SELECT 2;");
    let db = common::TestDb::create().await;

    let error = create_and_migrate(&db.url, &root, "svc").await.unwrap_err();
    assert!(error.to_string().contains("version 1 of svc"), "{error}");

    std::fs::remove_dir_all(&root).unwrap();
    db.drop().await;
}
