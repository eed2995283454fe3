//! A job survives its process being killed mid-way: another worker — here a second process,
//! as after a crash and a restart on another node — finishes it, and the work it redoes
//! creates no duplicate rows.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use director_fakes::{FakeVessey, GeneratedSpec, VesseyData};
use director_platform::identity::{Caller, Role};
use director_proto::integrations::integrations_service_client::IntegrationsServiceClient;
use director_proto::integrations::jobs_service_client::JobsServiceClient;
use director_proto::integrations::{GetJobRequest, ImportVesseyCollectionsRequest, Job, JobStatus};
use director_store::testing::{
    INTERNAL_SECRET, TestService, fresh_database, service_url, spawn_service,
};
use sqlx::Connection;
use tokio::process::{Child, Command};
use tonic::transport::Channel;

const DAY: &str = "2026-11-23";
const PAGES: u32 = 12;
const PAGE_SIZE: u32 = 50;

/// A free loopback address for a child process to listen on.
fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The real `director-integrations` binary, as a separate process.
fn start_integrations(addr: std::net::SocketAddr, env: &[(String, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_director-integrations"))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("INTEGRATIONS_ADDR", addr.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn channel(addr: std::net::SocketAddr) -> Channel {
    for _ in 0..100 {
        if let Ok(channel) = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
        {
            return channel;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("integrations never listened on {addr}");
}

async fn get_job(service: &TestService, channel: &Channel, caller: &Caller, id: &str) -> Job {
    JobsServiceClient::new(channel.clone())
        .get_job(service.request(caller, GetJobRequest { id: id.to_owned() }))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap()
}

#[tokio::test]
async fn an_import_whose_process_is_killed_mid_way_is_finished_by_another_worker_without_duplicates()
 {
    let companies = spawn_service(&director_companies::SERVICE, &[]).await;
    let companies_url = format!("http://{}", companies.addr);
    let dispatch = spawn_service(
        &director_dispatch::SERVICE,
        &[("COMPANIES_URL", companies_url.as_str())],
    )
    .await;
    let data = VesseyData::generated(GeneratedSpec {
        collections_per_day: PAGES * PAGE_SIZE,
        page_size: PAGE_SIZE,
        farms: 30,
        drivers: 10,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = FakeVessey::sample().with_data(data);
    let api_key = fake.api_key().to_owned();
    let vessey = fake.start(listener).unwrap();
    // Slow pages: the first process is killed while it is still importing.
    vessey.delay_next(PAGES as usize, Duration::from_millis(400));

    // The process logs in as the services' least-privilege role, as deployed.
    let database_url = service_url(&fresh_database("integrations").await);
    let env: Vec<(String, String)> = [
        ("INTEGRATIONS_DATABASE_URL", database_url.as_str()),
        ("INTERNAL_TOKEN_SECRET", INTERNAL_SECRET),
        ("COMPANIES_URL", companies_url.as_str()),
        ("DISPATCH_URL", &format!("http://{}", dispatch.addr)),
        ("VESSEY_API_URL", vessey.url()),
        ("VESSEY_API_KEY", api_key.as_str()),
        ("JOB_POLL_INTERVAL_MS", "200"),
        ("JOB_HEARTBEAT_MS", "300"),
        ("JOB_RECOVERY_AFTER_MS", "1500"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();

    let first_addr = free_addr();
    let mut first = start_integrations(first_addr, &env);
    let first_channel = channel(first_addr).await;
    let caller = Caller::new("user-1", "acme", Role::Admin);
    let job = IntegrationsServiceClient::new(first_channel.clone())
        .import_vessey_collections(dispatch.request(
            &caller,
            ImportVesseyCollectionsRequest {
                date: DAY.to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();

    // Kill it (SIGKILL: no drain, no release of its job) once it has written something.
    for _ in 0..200 {
        let now = get_job(&dispatch, &first_channel, &caller, &job.id).await;
        if now.progress.unwrap_or_default().done > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before_kill = get_job(&dispatch, &first_channel, &caller, &job.id).await;
    let done_before = before_kill.progress.unwrap_or_default().done;
    assert!(
        done_before > 0 && done_before < i32::try_from(PAGES * PAGE_SIZE).unwrap(),
        "killed mid-way: {before_kill:?}"
    );
    first.kill().await.unwrap();

    let second_addr = free_addr();
    let _second = start_integrations(second_addr, &env);
    let second_channel = channel(second_addr).await;
    let mut finished = None;
    for _ in 0..300 {
        let now = get_job(&dispatch, &second_channel, &caller, &job.id).await;
        if now.status == JobStatus::Succeeded as i32 || now.status == JobStatus::Dead as i32 {
            finished = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let finished = finished.expect("the job was not finished by the second process");
    assert_eq!(finished.status, JobStatus::Succeeded as i32, "{finished:?}");
    assert_eq!(finished.attempts, 2, "the run cut short by the kill counts");
    let total = i32::try_from(PAGES * PAGE_SIZE).unwrap();
    assert_eq!(finished.progress.unwrap().done, total);

    let mut db = sqlx::PgConnection::connect(&dispatch.database_url)
        .await
        .unwrap();
    let (tasks, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT external_id) FROM tasks")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!((tasks, distinct), (i64::from(total), i64::from(total)));
    let mut db = sqlx::PgConnection::connect(&companies.database_url)
        .await
        .unwrap();
    let (farms,): (i64,) = sqlx::query_as("SELECT count(DISTINCT external_id) FROM companies")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let (companies_count,): (i64,) = sqlx::query_as("SELECT count(*) FROM companies")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(farms, companies_count, "no farm was created twice");
}
