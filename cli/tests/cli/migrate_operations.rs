//! `director migrate` as a container runs it: JSON log lines under `LOG_FORMAT=json`, no
//! colours when its output is not a terminal, PostgreSQL NOTICEs only at debug, and a
//! database that is not up yet waited for (a bounded time, saying so).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use director_store::db::database_url_for;
use sqlx::postgres::PgConnectOptions;

fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@localhost:5432?sslmode=disable".into())
}

/// The test server's `host:port`.
fn server_address() -> String {
    let options: PgConnectOptions = server_url().parse().unwrap();
    let host = match options.get_host() {
        "localhost" => "127.0.0.1",
        host => host,
    };
    format!("{host}:{}", options.get_port())
}

/// `server_url()` with its host and port replaced by `127.0.0.1:port`, naming `database`.
fn url_via_port(port: u16, database: &str) -> String {
    let options: PgConnectOptions = server_url().parse().unwrap();
    let user = options.get_username();
    format!("postgres://{user}@127.0.0.1:{port}/{database}?sslmode=disable")
}

async fn migrate_companies(env: &[(&str, &str)]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_director"))
        .args(["migrate", "--service", "companies"])
        .env_remove("RUST_LOG")
        .env_remove("LOG_FORMAT")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap()
}

async fn drop_database(name: &str) {
    let admin = sqlx::PgPool::connect(&server_url()).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&admin)
    .await
    .unwrap();
    admin.close().await;
}

/// Every non-empty line of `text`, parsed as JSON; panics naming a line that is not.
fn json_lines(what: &str, text: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(text)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("{what} line is not JSON ({error}): {line:?}"))
        })
        .collect()
}

fn all_json_lines(output: &std::process::Output) -> Vec<serde_json::Value> {
    let mut lines = json_lines("stdout", &output.stdout);
    lines.extend(json_lines("stderr", &output.stderr));
    lines
}

fn notices(lines: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    lines
        .iter()
        .filter(|line| line["target"] == "sqlx::postgres::notice")
        .collect()
}

#[tokio::test]
async fn under_log_format_json_every_line_is_json_and_notices_are_debug_only() {
    let database = format!("test_migrate_json_{}", uuid::Uuid::new_v4().simple());
    let url = database_url_for(&server_url(), &database).unwrap();
    let env = [
        ("COMPANIES_DATABASE_URL", url.as_str()),
        ("LOG_FORMAT", "json"),
    ];

    let first = migrate_companies(&env).await;
    assert!(first.status.success(), "{first:?}");
    let lines = all_json_lines(&first);
    let migrated: Vec<_> = lines
        .iter()
        .filter(|line| line["message"] == "database migrated")
        .collect();
    assert_eq!(migrated.len(), 1, "{lines:#?}");
    assert_eq!(migrated[0]["level"], "INFO");
    assert_eq!(migrated[0]["state"], "created");
    assert_eq!(migrated[0]["database"], database.as_str());

    // Run again: the idempotent statements draw NOTICEs (`… already exists, skipping`),
    // which are not info.
    let again = migrate_companies(&env).await;
    assert!(again.status.success(), "{again:?}");
    let lines = all_json_lines(&again);
    assert!(notices(&lines).is_empty(), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|line| line["message"] == "database migrated" && line["state"] == "exists"),
        "{lines:#?}"
    );

    // At debug they are written, as DEBUG lines.
    let debug = migrate_companies(&[
        env[0],
        env[1],
        ("RUST_LOG", "info,sqlx::postgres::notice=debug"),
    ])
    .await;
    assert!(debug.status.success(), "{debug:?}");
    let lines = all_json_lines(&debug);
    let notices = notices(&lines);
    assert!(!notices.is_empty(), "no notice at debug: {lines:#?}");
    for notice in notices {
        assert_eq!(notice["level"], "DEBUG", "{notice}");
        assert!(
            notice["message"]
                .as_str()
                .is_some_and(|message| message.contains("already exists")),
            "{notice}"
        );
    }

    drop_database(&database).await;
}

#[tokio::test]
async fn a_failure_under_log_format_json_is_a_json_error_line() {
    let output = migrate_companies(&[
        (
            "COMPANIES_DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/nothing?sslmode=disable",
        ),
        ("LOG_FORMAT", "json"),
        ("DB_WAIT_TIMEOUT_MS", "300"),
    ])
    .await;
    assert!(!output.status.success());
    let lines = all_json_lines(&output);
    assert!(
        lines.iter().any(|line| line["level"] == "ERROR"
            && line["error"]
                .as_str()
                .is_some_and(|error| error.contains("127.0.0.1:1"))),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn an_invalid_setting_under_log_format_json_is_a_json_error_line() {
    let output = migrate_companies(&[
        ("LOG_FORMAT", "json"),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "${OTEL_EXPORTER_OTLP_ENDPOINT:-}",
        ),
    ])
    .await;
    assert!(!output.status.success());
    let lines = all_json_lines(&output);
    assert!(
        lines.iter().any(|line| line["level"] == "ERROR"
            && line["error"]
                .as_str()
                .is_some_and(|error| error.contains("OTEL_EXPORTER_OTLP_ENDPOINT"))),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn pretty_logs_to_a_pipe_have_no_colours() {
    let output = migrate_companies(&[
        (
            "COMPANIES_DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/nothing?sslmode=disable",
        ),
        ("LOG_FORMAT", "pretty"),
        ("RUST_LOG", "debug"),
        ("DB_WAIT_TIMEOUT_MS", "600"),
    ])
    .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("waiting for PostgreSQL to accept connections"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "escape codes in {stderr:?}");
}

/// Forwards connections on `listener` to `target` (PostgreSQL coming up late).
async fn forward(listener: tokio::net::TcpListener, target: String) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let target = target.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

async fn free_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn migrate_started_before_postgresql_waits_for_it_and_succeeds() {
    let database = format!("test_migrate_wait_{}", uuid::Uuid::new_v4().simple());
    let port = free_port().await;
    let url = url_via_port(port, &database);
    let started = Instant::now();
    let migrate = tokio::spawn(async move {
        migrate_companies(&[
            ("COMPANIES_DATABASE_URL", url.as_str()),
            ("LOG_FORMAT", "json"),
        ])
        .await
    });

    // PostgreSQL "comes up" on that port three seconds later.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let forwarder = tokio::spawn(forward(listener, server_address()));

    let output = tokio::time::timeout(Duration::from_secs(60), migrate)
        .await
        .unwrap()
        .unwrap();
    forwarder.abort();
    assert!(output.status.success(), "{output:?}");
    assert!(started.elapsed() >= Duration::from_secs(3));
    let lines = all_json_lines(&output);
    let waiting: Vec<_> = lines
        .iter()
        .filter(|line| line["message"] == "waiting for PostgreSQL to accept connections")
        .collect();
    assert!(!waiting.is_empty(), "{lines:#?}");
    assert_eq!(waiting[0]["postgres"], format!("127.0.0.1:{port}"));
    assert!(
        lines
            .iter()
            .any(|line| line["message"] == "database migrated" && line["state"] == "created"),
        "{lines:#?}"
    );

    drop_database(&database).await;
}

#[tokio::test]
async fn migrate_gives_up_after_db_wait_timeout_saying_what_it_waited_for() {
    let port = free_port().await;
    let url = url_via_port(port, "never");
    let started = Instant::now();
    let output = migrate_companies(&[
        ("COMPANIES_DATABASE_URL", url.as_str()),
        ("DB_WAIT_TIMEOUT_MS", "2000"),
        ("LOG_FORMAT", "pretty"),
    ])
    .await;
    let took = started.elapsed();
    assert!(!output.status.success());
    assert!(took >= Duration::from_secs(2), "gave up after {took:?}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "PostgreSQL at 127.0.0.1:{port} did not accept connections within 2s"
        )),
        "{stderr}"
    );
}
