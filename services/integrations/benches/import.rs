//! The collections import, end to end, at the size the issue names: 100,000 collections
//! (100 pages of 1,000) over 500 farms, fetched from a local fake Vessey over HTTP, written
//! through Companies and Dispatch (each on its own fresh database) by the Integrations job.
//!
//! Run it in release mode (it needs PostgreSQL at DATABASE_URL, as the tests do):
//!
//! ```text
//! cargo bench -p director-integrations --bench import
//! ```
//!
//! It prints the wall time from the `ImportVesseyCollections` call to the job's `succeeded`,
//! the rate, and a second run of the same day (which must change nothing). The target is
//! ≤ 10 s for the first run on a 2-core machine; the figures are in docs/PERFORMANCE.md.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use director_fakes::{FakeVessey, GeneratedSpec, VesseyData};
use director_platform::identity::{Caller, Role};
use director_proto::integrations::integrations_service_client::IntegrationsServiceClient;
use director_proto::integrations::jobs_service_client::JobsServiceClient;
use director_proto::integrations::{GetJobRequest, ImportVesseyCollectionsRequest, Job, JobStatus};
use director_store::testing::{TestService, spawn_service};
use sqlx::Connection;

const DAY: &str = "2026-11-23";

#[tokio::main]
async fn main() {
    let spec = GeneratedSpec::default();
    let collections = spec.collections_per_day;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = FakeVessey::sample().with_data(VesseyData::generated(spec));
    let api_key = fake.api_key().to_owned();
    let vessey = fake.start(listener).unwrap();

    let companies = spawn_service(&director_companies::SERVICE, &[]).await;
    let companies_url = format!("http://{}", companies.addr);
    let dispatch = spawn_service(
        &director_dispatch::SERVICE,
        &[("COMPANIES_URL", companies_url.as_str())],
    )
    .await;
    let dispatch_url = format!("http://{}", dispatch.addr);
    let integrations = spawn_service(
        &director_integrations::SERVICE,
        &[
            ("COMPANIES_URL", companies_url.as_str()),
            ("DISPATCH_URL", dispatch_url.as_str()),
            ("VESSEY_API_URL", vessey.url()),
            ("VESSEY_API_KEY", api_key.as_str()),
            ("JOB_POLL_INTERVAL_MS", "100"),
        ],
    )
    .await;
    let caller = Caller::new("bench-user", "bench-tenant", Role::Admin);

    println!(
        "importing {collections} collections ({} pages of {}, {} farms)",
        collections / spec.page_size,
        spec.page_size,
        spec.farms
    );
    let (first, job) = import(&integrations, &caller).await;
    println!(
        "first run:  {:>6.2} s  {:>8.0} collections/s  (job {} {:?}, {} done)",
        first.as_secs_f64(),
        f64::from(collections) / first.as_secs_f64(),
        job.id,
        JobStatus::try_from(job.status).unwrap_or(JobStatus::Unspecified),
        job.progress.unwrap_or_default().done,
    );
    let (second, _) = import(&integrations, &caller).await;
    println!(
        "second run: {:>6.2} s  (same day again: nothing changes)",
        second.as_secs_f64()
    );

    let mut db = sqlx::PgConnection::connect(&dispatch.database_url)
        .await
        .unwrap();
    let (tasks, versions): (i64, i64) =
        sqlx::query_as("SELECT count(*), coalesce(max(version), 0)::bigint FROM tasks")
            .fetch_one(&mut db)
            .await
            .unwrap();
    println!("tasks stored: {tasks}, highest version: {versions} (1 = never rewritten)");
    assert_eq!(tasks, i64::from(collections));
}

/// Runs one import and answers its wall time and final state.
async fn import(integrations: &TestService, caller: &Caller) -> (Duration, Job) {
    let channel = integrations.channel().await;
    let started = Instant::now();
    let job = IntegrationsServiceClient::new(channel.clone())
        .import_vessey_collections(integrations.request(
            caller,
            ImportVesseyCollectionsRequest {
                date: DAY.to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let mut jobs = JobsServiceClient::new(channel);
    loop {
        let now = jobs
            .get_job(integrations.request(caller, GetJobRequest { id: job.id.clone() }))
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        if now.status == JobStatus::Succeeded as i32 {
            return (started.elapsed(), now);
        }
        assert_ne!(
            now.status,
            JobStatus::Dead as i32,
            "the import died: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
