//! Migrations: the shared folder and a service's folder form one version sequence.
#![allow(clippy::unwrap_used)]

use crate::common;

use director_store::migrate::create_and_migrate;

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

/// `migrate --wait`, as a service's init step: it applies nothing and holds until a migration
/// run has brought the database to the newest migration the waiting build ships.
#[tokio::test]
async fn waiting_holds_until_a_run_reaches_the_builds_newest_migration() {
    use std::time::Duration;

    use director_platform::config::Env;
    use director_store::migrate::wait_until_migrated;

    let run = uuid::Uuid::new_v4();
    let older = std::env::temp_dir().join(format!("director-migrate-older-{run}"));
    folder_with(
        &older,
        "shared",
        "0001_base.sql",
        "CREATE TABLE base (id int);",
    );
    let newer = std::env::temp_dir().join(format!("director-migrate-newer-{run}"));
    folder_with(
        &newer,
        "shared",
        "0001_base.sql",
        "CREATE TABLE base (id int);",
    );
    folder_with(&newer, "svc", "0002_own.sql", "CREATE TABLE own (id int);");
    let db = common::TestDb::create().await;
    let env = Env::from_pairs([
        ("SVC_DATABASE_URL", db.url.as_str()),
        ("MIGRATIONS_DIR", newer.to_str().unwrap()),
    ]);
    let poll = Duration::from_millis(100);
    let wait = |timeout: Duration| wait_until_migrated(&env, "svc", timeout, poll);

    let error = wait(Duration::from_secs(1)).await.unwrap_err().to_string();
    assert!(
        error.contains("no migration run has finished yet"),
        "{error}"
    );

    // A run of an older release is not enough for the newer build.
    create_and_migrate(&db.url, &older, "svc").await.unwrap();
    let error = wait(Duration::from_secs(1)).await.unwrap_err().to_string();
    assert!(
        error.contains("at migration 1; this build needs 2"),
        "{error}"
    );

    // The newer release's run, while the build waits, lets it go.
    let waiting = tokio::spawn({
        let env = env.clone();
        async move { wait_until_migrated(&env, "svc", Duration::from_secs(30), poll).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "it waited for the run");
    create_and_migrate(&db.url, &newer, "svc").await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), 2);

    db.drop().await;
}
