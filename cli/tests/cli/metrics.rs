//! The services' own Prometheus series, scraped from the stack's one admin listener: a
//! service-to-service call (Dispatch asking Companies about a task's company) is measured on
//! the caller's side, the relay's outbox lag is sampled, an import counts its collections,
//! and job attempts and the job queue (queued, oldest, dead) are reported.
//!
//! The recorder is global to the test process, so each test asserts on the series it makes
//! and on lower bounds rather than totals.

#![allow(clippy::unwrap_used)]

use crate::common;

use director_platform::testing::series_value;
use std::time::Duration;

use common::{TestStack, spawn_stack_with_fakes, token};
use serde_json::{Value, json};

/// How long a job or a sampled gauge may take before a test gives up (gauges are sampled
/// every 5 s).
const PATIENCE: Duration = Duration::from_secs(30);
/// A day the fake Vessey has collections for (it has them for any day).
const DAY: &str = "2026-11-23";

async fn scrape(app: &TestStack) -> String {
    let response = app.http.get(app.stack.metrics_url()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// Scrapes until `check` holds for the text, or fails the test after [`PATIENCE`] with the
/// last text.
async fn scrape_until(app: &TestStack, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let text = scrape(app).await;
        if check(&text) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn post_json(app: &TestStack, path: &str, token: &str, body: Value) -> (u16, Value) {
    let response = app.post(path, token, body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Starts a job with `path` and waits until it is finished; answers its last state.
async fn run_job(app: &TestStack, path: &str, token: &str, body: Value) -> Value {
    let (status, job) = post_json(app, path, token, body).await;
    assert_eq!(status, 200, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let job = app
            .get_json(&format!("/api/integrations/jobs/{id}"), Some(token))
            .await;
        if matches!(job["status"].as_str(), Some("succeeded" | "dead")) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for the job: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_task_created_through_dispatch_measures_its_call_to_companies_on_the_callers_side() {
    let (app, _fakes) = spawn_stack_with_fakes(&[]).await;
    let admin = token("metrics-rpc", None);
    let company = app
        .create_company(&admin, json!({"name": "Metered Farm"}))
        .await;
    let (status, task) = post_json(
        &app,
        "/api/tasks",
        &admin,
        json!({"company_id": company["id"], "title": "Metered collection", "scheduled_for": DAY}),
    )
    .await;
    assert_eq!(status, 200, "{task}");

    let text = scrape(&app).await;
    let labels = [
        ("service_name", "dispatch"),
        ("rpc_service", "director.companies.v1.CompaniesService"),
        ("rpc_method", "GetCompany"),
        ("rpc_grpc_status_code", "0"),
    ];
    assert!(
        series_value(&text, "rpc_client_call_duration_seconds_count", &labels)
            .is_some_and(|count| count >= 1.0),
        "Dispatch's GetCompany call is measured: {text}"
    );
    let mut bucket = labels.to_vec();
    bucket.push(("le", "+Inf"));
    assert!(
        series_value(&text, "rpc_client_call_duration_seconds_bucket", &bucket)
            .is_some_and(|count| count >= 1.0),
        "a histogram with buckets: {text}"
    );
}

#[tokio::test]
async fn the_outbox_lag_of_dispatch_is_sampled() {
    let (app, _fakes) = spawn_stack_with_fakes(&[]).await;
    let text = scrape_until(&app, "director_outbox_lag_seconds", |text| {
        series_value(text, "director_outbox_lag_seconds", &[]).is_some()
    })
    .await;
    let lag = series_value(&text, "director_outbox_lag_seconds", &[]).unwrap();
    assert!(lag >= 0.0, "{text}");
}

#[tokio::test]
async fn an_import_counts_its_collections_and_job_attempts_and_the_queue_are_reported() {
    let (app, fakes) = spawn_stack_with_fakes(&[("JOB_MAX_ATTEMPTS", "2")]).await;
    let admin = token("metrics-jobs", None);
    let collections = director_fakes::VesseyData::sample()
        .all_collections(DAY.parse().unwrap())
        .len();
    assert!(collections > 0);
    let imported_before = series_value(
        &scrape(&app).await,
        "director_import_collections_total",
        &[],
    )
    .unwrap_or(0.0);

    let job = run_job(
        &app,
        "/api/integrations/vessey/collections:import",
        &admin,
        json!({"date": DAY}),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");

    // A job whose Vessey keeps failing: both attempts fail and it goes dead.
    fakes
        .vessey
        .fail_next(1000, http::StatusCode::SERVICE_UNAVAILABLE);
    let job = run_job(
        &app,
        "/api/integrations/vessey/drivers:sync",
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(job["status"], "dead", "{job}");
    assert_eq!(job["attempts"], 2, "{job}");

    let text = scrape(&app).await;
    let imported = series_value(&text, "director_import_collections_total", &[]).unwrap_or(0.0);
    assert!(
        imported - imported_before >= collections as f64,
        "{collections} collections imported, the counter went from {imported_before} to {imported}: {text}"
    );
    let attempts = |outcome: &str| {
        series_value(
            &text,
            "director_job_attempts_total",
            &[
                ("task_identifier", "integrations_run_job"),
                ("outcome", outcome),
            ],
        )
        .unwrap_or(0.0)
    };
    // The import succeeded; both attempts of the failing job failed, the last one leaving it
    // dead in the queue too.
    assert!(attempts("succeeded") >= 1.0, "{text}");
    assert!(attempts("failed") >= 2.0, "{text}");

    // The queue, sampled every 5 s: the dead job is there, and a job of a task nobody runs
    // waits (due a minute ago).
    let mut queue = owner_connection(&app, "INTEGRATIONS_DATABASE_URL").await;
    sqlx::query(
        "SELECT graphile_worker.add_job('metrics_probe_waiting', '{}'::json, \
         run_at => now() - interval '1 minute')",
    )
    .execute(&mut queue)
    .await
    .unwrap();
    let integrations = [("service_name", "integrations")];
    let waiting = [
        ("service_name", "integrations"),
        ("task_identifier", "metrics_probe_waiting"),
    ];
    let text = scrape_until(&app, "the probe jobs to be sampled", |text| {
        series_value(text, "director_jobs_queued", &waiting) == Some(1.0)
            && series_value(text, "director_jobs_dead", &integrations)
                .is_some_and(|dead| dead >= 1.0)
    })
    .await;
    assert!(
        series_value(&text, "director_jobs_oldest_age_seconds", &integrations)
            .is_some_and(|age| age >= 60.0),
        "the oldest waiting job was due a minute ago: {text}"
    );
}

/// A connection to the database of the service whose URL setting is `variable`, as the
/// owner (the queue's tables are not the services' to write).
async fn owner_connection(app: &TestStack, variable: &str) -> sqlx::PgConnection {
    use sqlx::Connection as _;
    let service_url = &app.env.iter().find(|(key, _)| key == variable).unwrap().1;
    let name = service_url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    let owner_url = director_store::db::database_url_for(&common::server_url(), name).unwrap();
    sqlx::PgConnection::connect(&owner_url).await.unwrap()
}
