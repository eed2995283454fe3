//! `director up` itself: with nothing but PostgreSQL it migrates, generates the secrets it
//! lacks and says so, serves the printed URL, accepts the printed dev token, runs the
//! services as the least-privilege `director_service` role, serves every part's metrics at
//! the printed URL, and stops cleanly on Ctrl-C (SIGINT). Its JSON logs, our crates' debug
//! lines included, carry no phone number, e-mail address or token.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::process::Stdio;
use std::time::Duration;

use director_platform::catalog;
use director_store::db::database_url_for;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Our own crates at debug, everything else at info.
const DEBUG_OUR_CRATES: &str = "info,director=debug,director_platform=debug,director_store=debug,director_gateway=debug,\
     director_companies=debug,director_dispatch=debug,director_integrations=debug";
const PHONE: &str = "+1 555 010 0001";
const PHONE_E164: &str = "+15550100001";
const EMAIL: &str = "ann.driver@example.com";

#[tokio::test]
async fn director_up_serves_the_printed_url_with_the_printed_token_and_stops_on_ctrl_c() {
    let prefix = format!("test_up_{}", uuid::Uuid::new_v4().simple());
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_director"));
    command
        .arg("up")
        .env("GATEWAY_ADDR", "127.0.0.1:0")
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env_remove("SUPABASE_JWT_SECRET")
        .env_remove("INTERNAL_TOKEN_SECRET")
        .env_remove("MIGRATION_DATABASE_URL")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", DEBUG_OUR_CRATES)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for spec in catalog::SERVICES {
        command.env(spec.addr_var(), "127.0.0.1:0").env(
            format!("{}_DATABASE_URL", spec.env_prefix()),
            database_url_for(&common::server_url(), &format!("{prefix}_{}", spec.name)).unwrap(),
        );
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    let mut printed = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains("Ctrl-C stops everything");
            printed.push(line);
            if done {
                break;
            }
        }
    })
    .await
    .expect("director up never said it was up");
    let said = |needle: &str| printed.iter().any(|line| line.contains(needle));
    assert!(
        said("SUPABASE_JWT_SECRET was not set: generated"),
        "{printed:#?}"
    );
    assert!(
        said("INTERNAL_TOKEN_SECRET was not set: generated"),
        "{printed:#?}"
    );

    let api = printed
        .iter()
        .find_map(|line| line.trim().strip_prefix("REST API"))
        .unwrap()
        .trim()
        .to_owned();
    // Log lines of the running services may interleave with the banner: take the first JWT
    // printed after the "Dev token" heading.
    let token = printed
        .iter()
        .skip_while(|line| !line.starts_with("Dev token"))
        .find_map(|line| {
            line.trim()
                .starts_with("eyJ")
                .then(|| line.trim().to_owned())
        })
        .unwrap();

    let http = reqwest::Client::new();
    let companies = http
        .get(format!("{api}/companies"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(companies.status(), 200);
    assert_eq!(
        companies.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!([])
    );

    // The services are connected (companies answered; dispatch's and integrations' job
    // workers hold connections) and none of their connections is privileged.
    let admin = sqlx::PgPool::connect(&common::server_url()).await.unwrap();
    let like = format!("{prefix}%");
    let mut connected: Vec<String> = Vec::new();
    for _ in 0..100 {
        connected = sqlx::query_scalar(
            "SELECT DISTINCT datname::text FROM pg_stat_activity \
             WHERE datname LIKE $1 AND application_name LIKE 'director-%' ORDER BY 1",
        )
        .bind(&like)
        .fetch_all(&admin)
        .await
        .unwrap();
        if connected.len() == catalog::SERVICES.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(connected.len(), catalog::SERVICES.len(), "{connected:?}");
    let privileged: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity s JOIN pg_roles r ON r.rolname = s.usename \
         WHERE s.datname LIKE $1 AND (r.rolsuper OR r.rolbypassrls)",
    )
    .bind(&like)
    .fetch_one(&admin)
    .await
    .unwrap();
    assert_eq!(
        privileged, 0,
        "services hold superuser or BYPASSRLS connections"
    );
    let users: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT usename::text FROM pg_stat_activity WHERE datname LIKE $1",
    )
    .bind(&like)
    .fetch_all(&admin)
    .await
    .unwrap();
    assert_eq!(users, ["director_service"]);

    // The one admin listener serves every part's metrics: the gateway's request just made
    // (by route template), the services' pools.
    let metrics_url = printed
        .iter()
        .find_map(|line| line.trim().strip_prefix("Metrics"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(metrics_url.ends_with("/metrics"), "{metrics_url}");
    let metrics = http.get(&metrics_url).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.lines().any(
            |line| line.starts_with("http_server_request_duration_seconds_count{")
                && line.contains(r#"http_route="/api/companies""#)
                && line.contains(r#"http_request_method="GET""#)
                && line.contains(r#"http_response_status_code="200""#)
        ),
        "{metrics}"
    );
    for spec in catalog::SERVICES {
        assert!(
            metrics
                .lines()
                .any(|line| line.starts_with("db_client_connection_max{")
                    && line.contains(&format!(
                        r#"db_client_connection_pool_name="{}""#,
                        spec.name
                    ))),
            "{metrics}"
        );
    }

    // Personal data and tokens in requests, accepted and refused, never reach the logs.
    let driver = http
        .post(format!("{api}/drivers"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "Ann", "phone": PHONE, "email": EMAIL}))
        .send()
        .await
        .unwrap();
    assert_eq!(driver.status(), 200);
    let refused = http
        .post(format!("{api}/drivers"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"name": "", "phone": PHONE, "email": EMAIL}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "a driver needs a name");
    let forged = format!("{token}x");
    let unauthorized = http
        .get(format!("{api}/drivers"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let rest_of_the_log = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    });

    let pid = child.id().unwrap().to_string();
    let interrupted = tokio::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(interrupted.success());
    let exit = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("director up did not stop after SIGINT")
        .unwrap();
    assert!(exit.success(), "exit status {exit}");
    let logged: Vec<String> = printed
        .iter()
        .cloned()
        .chain(rest_of_the_log.await.unwrap())
        .filter(|line| line.starts_with('{'))
        .collect();
    assert!(
        logged.iter().any(|line| line.contains("/api/drivers")),
        "the requests were logged: {logged:#?}"
    );
    for line in &logged {
        for secret in [PHONE, PHONE_E164, EMAIL, &token, &forged] {
            assert!(!line.contains(secret), "{secret} logged: {line}");
        }
    }

    for spec in catalog::SERVICES {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{prefix}_{}\" WITH (FORCE)",
            spec.name
        )))
        .execute(&admin)
        .await
        .unwrap();
    }
}
