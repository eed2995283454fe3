//! Job attempts and retry delays on a real PostgreSQL, with workers that are really killed
//! (issue 17, items 5 and 7):
//! - a run cut short by its worker's death counts: recovered by another worker, the job's
//!   second run reads `attempts: 2` (graphile_worker alone handed it back reading 1);
//! - a last attempt cut short gets one more run, once: its handler reads the attempt as its
//!   last, and a job that kills that run's worker too is left out of attempts;
//! - a service's cap on retry delays holds (graphile_worker's own grow as `e^attempts` s);
//! - `enqueue_after` holds a job back for its delay, with the enqueue function's checks.
//!
//! A killed worker is one whose Tokio runtime is dropped mid-job: its tasks are never polled
//! again and its connections close, as when its process is killed; nothing of it tells the
//! queue. Another worker's sweep finds it silent past `JOB_RECOVERY_AFTER_MS`.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use director_platform::config::Env;
use director_platform::identity::{Caller, Role, TenantId};
use director_store::db::{DatabaseConfig, with_login};
use director_store::jobs::{self, JobsConfig, NewJob};
use director_store::migrate::create_and_migrate;
use director_store::roles::{DEV_SERVICE_PASSWORD, SERVICE_ROLE, ensure_service_login};
use director_store::tenant;
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

fn migrations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations")
}

/// One run of a job, as its handler saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    attempts: i16,
    max_attempts: i16,
}

/// Reports each run, then hangs through its first `hang_runs` attempts (until its worker is
/// killed) and succeeds after.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Hang {
    tenant_id: String,
    hang_runs: i16,
}

impl TaskHandler for Hang {
    const IDENTIFIER: &'static str = "platform_test_hang";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let run = Run {
            attempts: *ctx.job().attempts(),
            max_attempts: *ctx.job().max_attempts(),
        };
        if let Some(runs) = ctx.get_ext::<UnboundedSender<Run>>() {
            runs.send(run).map_err(|error| error.to_string())?;
        }
        if run.attempts <= self.hang_runs {
            std::future::pending::<()>().await;
        }
        Ok::<(), String>(())
    }
}

/// Fails every attempt, reporting when it ran.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Fail {
    tenant_id: String,
}

impl TaskHandler for Fail {
    const IDENTIFIER: &'static str = "platform_test_fail";

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        if let Some(runs) = ctx.get_ext::<UnboundedSender<Instant>>() {
            runs.send(Instant::now())
                .map_err(|error| error.to_string())?;
        }
        Err::<(), String>("always".to_owned())
    }
}

/// A database with the shared migrations and a queue accepting the test's jobs, and the
/// services' login role.
struct Queue {
    db: common::TestDb,
    owner: PgPool,
    service: PgPool,
    service_url: String,
    config: DatabaseConfig,
}

impl Queue {
    async fn new() -> Self {
        let db = common::TestDb::create().await;
        create_and_migrate(&db.url, &migrations(), "platform-test-jobs")
            .await
            .unwrap();
        let owner = PgPool::connect(&db.url).await.unwrap();
        jobs::install(&owner, &[Hang::IDENTIFIER, Fail::IDENTIFIER])
            .await
            .unwrap();
        let service_url = with_login(&db.url, SERVICE_ROLE, DEV_SERVICE_PASSWORD).unwrap();
        ensure_service_login(&db.url, &service_url).await.unwrap();
        let config = DatabaseConfig::from_env(
            &Env::from_pairs([("JOBTEST_DATABASE_URL", service_url.as_str())]),
            "jobtest",
        )
        .unwrap();
        Self {
            service: PgPool::connect(&service_url).await.unwrap(),
            db,
            owner,
            service_url,
            config,
        }
    }

    /// Queues `job` in a tenant transaction of `tenant-a`, as a service does.
    async fn enqueue(&self, job: &NewJob<'_>) -> i64 {
        let caller = Caller::new("user", "tenant-a", Role::Admin);
        let mut tx = tenant::begin(&self.service, &caller, &self.config)
            .await
            .unwrap();
        let id = jobs::enqueue(&mut tx, job).await.unwrap();
        tx.commit().await.unwrap();
        id
    }

    /// `attempts`, `max_attempts`, whether locked, and `last_error` of job `id`, if it is
    /// still in the queue.
    async fn job(&self, id: i64) -> Option<(i16, i16, bool, Option<String>)> {
        sqlx::query_as(
            "SELECT attempts, max_attempts, locked_at IS NOT NULL, last_error
             FROM graphile_worker._private_jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.owner)
        .await
        .unwrap()
    }

    async fn drop(self) {
        self.owner.close().await;
        self.service.close().await;
        self.db.drop().await;
    }
}

/// Quick heartbeats and recovery, so that a killed worker's jobs move within seconds.
fn fast_config() -> JobsConfig {
    JobsConfig::from_env(&Env::from_pairs([
        ("JOB_POLL_INTERVAL_MS", "100"),
        ("JOB_HEARTBEAT_MS", "250"),
        ("JOB_RECOVERY_AFTER_MS", "1000"),
        ("JOB_SHUTDOWN_GRACE_MS", "200"),
    ]))
    .unwrap()
}

/// A worker on a runtime of its own, logged in as the services' role, that can be killed.
struct Worker {
    kill: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Worker {
    fn start(url: &str, runs: UnboundedSender<Run>) -> Self {
        let url = url.to_owned();
        let (kill, killed) = std::sync::mpsc::channel::<()>();
        let (started, is_started) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let pool = PgPool::connect(&url).await.unwrap();
                jobs::spawn_worker(
                    fast_config(),
                    pool,
                    CancellationToken::new(),
                    &TaskTracker::new(),
                    move |options| options.define_job::<Hang>().add_extension(runs.clone()),
                );
            });
            started.send(()).unwrap();
            // Until killed: the worker runs on the runtime's thread.
            let _ = killed.recv();
            runtime.shutdown_background();
        });
        is_started.recv().unwrap();
        Self { kill, thread }
    }

    /// Drops the worker's runtime mid-whatever: no job is finished, failed or handed back.
    fn kill(self) {
        self.kill.send(()).unwrap();
        self.thread.join().unwrap();
    }
}

async fn next_run(runs: &mut UnboundedReceiver<Run>, within: Duration) -> Run {
    tokio::time::timeout(within, runs.recv())
        .await
        .expect("the job ran in time")
        .unwrap()
}

fn hang(hang_runs: i16) -> NewJob<'static> {
    NewJob::new(
        Hang::IDENTIFIER,
        serde_json::json!({ "tenant_id": "tenant-a", "hang_runs": hang_runs }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_short_by_a_killed_worker_counts_as_an_attempt() {
    let queue = Queue::new().await;
    let (runs_tx, mut runs) = unbounded_channel();
    let first = Worker::start(&queue.service_url, runs_tx.clone());
    let id = queue.enqueue(&hang(1)).await;
    let run = next_run(&mut runs, Duration::from_secs(20)).await;
    assert_eq!(run.attempts, 1);

    // Another worker is up; the first dies mid-job. The second's sweep finds it silent and
    // hands the job back, and runs it.
    let second = Worker::start(&queue.service_url, runs_tx.clone());
    first.kill();
    let rerun = next_run(&mut runs, Duration::from_secs(20)).await;
    assert_eq!(
        rerun,
        Run {
            attempts: 2,
            max_attempts: run.max_attempts
        },
        "the run cut short counts"
    );
    // The second run succeeded: the job is done.
    let deadline = Instant::now() + Duration::from_secs(10);
    while queue.job(id).await.is_some() {
        assert!(Instant::now() < deadline, "{:?}", queue.job(id).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    second.kill();
    queue.drop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_attempt_cut_short_gets_one_more_run_once() {
    let queue = Queue::new().await;
    let (runs_tx, mut runs) = unbounded_channel();
    let first = Worker::start(&queue.service_url, runs_tx.clone());
    let mut job = hang(2);
    job.max_attempts = Some(1);
    let id = queue.enqueue(&job).await;
    assert_eq!(
        next_run(&mut runs, Duration::from_secs(20)).await,
        Run {
            attempts: 1,
            max_attempts: 1
        }
    );

    // Its only attempt is cut short: one more run, which its handler sees as its last.
    let second = Worker::start(&queue.service_url, runs_tx.clone());
    first.kill();
    assert_eq!(
        next_run(&mut runs, Duration::from_secs(20)).await,
        Run {
            attempts: 2,
            max_attempts: 2
        }
    );

    // That one is cut short too: the job is out of attempts, and runs no more.
    let third = Worker::start(&queue.service_url, runs_tx.clone());
    second.kill();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (attempts, max_attempts, locked, last_error) = queue.job(id).await.unwrap();
        if !locked {
            assert_eq!((attempts, max_attempts), (2, 2));
            assert_eq!(
                last_error.as_deref(),
                Some("Job recovered after worker interruption")
            );
            break;
        }
        assert!(Instant::now() < deadline, "never handed back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(runs.try_recv().is_err(), "ran a third time");
    third.kill();
    queue.drop().await;
}

#[tokio::test]
async fn a_services_cap_on_retry_delays_holds() {
    let queue = Queue::new().await;
    let (runs_tx, mut runs) = unbounded_channel::<Instant>();
    let shutdown = CancellationToken::new();
    let background = TaskTracker::new();
    jobs::spawn_worker(
        fast_config().with_max_retry_delay(Duration::from_millis(500)),
        queue.service.clone(),
        shutdown.clone(),
        &background,
        move |options| options.define_job::<Fail>().add_extension(runs_tx.clone()),
    );
    let tenant = TenantId::parse("tenant-a").expect("non-empty");
    let mut job = NewJob::for_tenant(Fail::IDENTIFIER, &tenant);
    job.max_attempts = Some(4);
    queue.enqueue(&job).await;

    // Uncapped, the retries would come after e, e² and e³ seconds (2.7, 7.4, 20.1).
    let mut times = Vec::new();
    for _ in 0..4 {
        let ran = tokio::time::timeout(Duration::from_secs(10), runs.recv())
            .await
            .expect("retried within the cap")
            .unwrap();
        times.push(ran);
    }
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap < Duration::from_millis(2_000), "retried after {gap:?}");
    }

    shutdown.cancel();
    background.close();
    background.wait().await;
    queue.drop().await;
}

#[tokio::test]
async fn enqueue_after_holds_the_job_back_with_the_enqueue_functions_checks() {
    let queue = Queue::new().await;
    let mut job = hang(0);
    job.job_key = Some("later".to_owned());
    let id = jobs::enqueue_after(&queue.service, &job, Duration::from_secs(30))
        .await
        .unwrap();
    let (wait, key): (f64, Option<String>) = sqlx::query_as(
        "SELECT EXTRACT(EPOCH FROM run_at - now())::float8, key
         FROM graphile_worker._private_jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&queue.owner)
    .await
    .unwrap();
    assert!((28.0..=30.0).contains(&wait), "due in {wait} s");
    assert_eq!(key.as_deref(), Some(r#"["tenant-a", "later"]"#));

    // Again with the same key: the pending job, due at the new time.
    let again = jobs::enqueue_after(&queue.service, &job, Duration::from_secs(1))
        .await
        .unwrap();
    let queued = Instant::now();
    assert_eq!(again, id);

    // The enqueue function's checks: only the service's jobs, a payload naming its tenant.
    let tenant = TenantId::parse("tenant-a").expect("non-empty");
    for refused in [
        NewJob::for_tenant("no_such_job", &tenant),
        NewJob::new(Hang::IDENTIFIER, serde_json::json!({ "hang_runs": 0 })),
    ] {
        let error = jobs::enqueue_after(&queue.service, &refused, Duration::from_secs(1))
            .await
            .expect_err("refused");
        let code = error.as_database_error().and_then(|error| error.code());
        assert_eq!(code.as_deref(), Some("22023"), "{error}");
    }

    // A worker runs it once due, not before.
    let (runs_tx, mut runs) = unbounded_channel();
    let shutdown = CancellationToken::new();
    let background = TaskTracker::new();
    jobs::spawn_worker(
        fast_config(),
        queue.service.clone(),
        shutdown.clone(),
        &background,
        move |options| options.define_job::<Hang>().add_extension(runs_tx.clone()),
    );
    next_run(&mut runs, Duration::from_secs(10)).await;
    assert!(
        queued.elapsed() >= Duration::from_millis(900),
        "{:?}",
        queued.elapsed()
    );

    shutdown.cancel();
    background.close();
    background.wait().await;
    queue.drop().await;
}
