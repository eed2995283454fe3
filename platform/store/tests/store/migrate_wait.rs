//! `migrate --wait` keeps trying while PostgreSQL does not accept connections, and says so.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use director_platform::config::Env;
use director_store::migrate::wait_until_migrated;

#[tokio::test]
async fn migrate_wait_names_the_postgresql_it_waits_for() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let env = Env::from_pairs([(
        "COMPANIES_DATABASE_URL",
        format!("postgres://nobody@127.0.0.1:{port}/director_companies?sslmode=disable"),
    )]);
    let error = wait_until_migrated(
        &env,
        "companies",
        Duration::from_secs(2),
        Duration::from_millis(300),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        error.contains(&format!(
            "PostgreSQL at 127.0.0.1:{port} does not accept connections yet"
        )),
        "{error}"
    );
}
