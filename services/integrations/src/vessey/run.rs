//! The queue job that runs a sync or an import: one attempt of a `jobs` row ([`RunJob`]).
//! Every kind of job is a Vessey one, so its handler lives here, above the work it runs and
//! the store it records in.
//!
//! The row says what to do (`kind`, `params`) and is where the attempt's progress and end
//! are recorded; the queue decides when attempts run. A failure worth retrying (a third
//! party or service outage) leaves the row `failed` and hands the error back to the queue,
//! which retries with backoff; the last attempt, or a failure retrying cannot fix (missing
//! credentials, refused data), leaves it `dead` with its error. The work itself is
//! idempotent — upserts by external id — so an attempt after a crash redoes nothing twice.

use director_platform::catalog;
use director_platform::identity::TenantId;
use director_store::jobs::{self as queue, Attempt, AttemptFailed, NewJob, job_span};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use tracing::Instrument as _;

use super::{import, sync};
use crate::access::service_caller;
use crate::app::App;
use crate::domain::{JobId, JobRequest, RunJob};
use crate::error::IntegrationsError;
use crate::jobs::store::{Attempting, JobRow, Outcome};

/// How long a job waits when its tenant already has one running before it looks again.
const WAIT_FOR_TENANTS_JOB: std::time::Duration = std::time::Duration::from_secs(2);

impl TaskHandler for RunJob {
    const IDENTIFIER: &'static str = RunJob::QUEUE_IDENTIFIER;

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let Some(app) = ctx.get_ext::<App>().cloned() else {
            return Err(AttemptFailed::new(
                "the worker was started without the service's parts",
            ));
        };
        let attempt = i32::from(*ctx.job().attempts());
        let last_attempt = attempt >= i32::from(*ctx.job().max_attempts());
        let span = job_span(&catalog::INTEGRATIONS, Self::IDENTIFIER, ctx.payload());
        let result = run_attempt(&app, &self, attempt, last_attempt)
            .instrument(span)
            .await;
        queue::end_attempt(app.jobs.pool(), *ctx.job().id(), result).await
    }
}

/// Why an attempt could not even be recorded: the queue retries it.
#[derive(Debug, thiserror::Error)]
enum Bookkeeping {
    #[error("could not start job {job}: {source}")]
    Start { job: JobId, source: sqlx::Error },
    #[error("could not defer job {job}: {source}")]
    Defer { job: JobId, source: sqlx::Error },
    #[error("could not record the end of job {job}: {source}")]
    Finish { job: JobId, source: sqlx::Error },
}

/// One attempt.
async fn run_attempt(
    app: &App,
    run: &RunJob,
    attempt: i32,
    last_attempt: bool,
) -> Result<Attempt, Bookkeeping> {
    let caller = service_caller(&run.tenant_id);
    let store = &app.jobs;
    let begun = store
        .begin_attempt(&caller, run.job_id, attempt)
        .await
        .map_err(|source| Bookkeeping::Start {
            job: run.job_id,
            source,
        })?;
    let job = match begun {
        Attempting::Run(job) => *job,
        // Already finished: a duplicate delivery of a job that completed.
        Attempting::Gone => return Ok(Attempt::Finished),
        Attempting::Wait => {
            // The tenant's other job is running: this one is handed on to a later run (a new
            // queue job, so the wait costs no attempt) and stays `queued` meanwhile.
            let mut later = NewJob::new(RunJob::QUEUE_IDENTIFIER, run.payload());
            later.max_attempts = Some(store.max_attempts());
            queue::enqueue_after(store.pool(), &later, WAIT_FOR_TENANTS_JOB)
                .await
                .map_err(|source| Bookkeeping::Defer {
                    job: run.job_id,
                    source,
                })?;
            return Ok(Attempt::Finished);
        }
    };
    let result = work(app, &job, &run.tenant_id).await;
    let (outcome, error) = match &result {
        Ok(()) => (Outcome::Succeeded, None),
        Err(error) if error.is_retryable() && !last_attempt => {
            (Outcome::Failed, Some(error.to_string()))
        }
        Err(error) => (Outcome::Dead, Some(error.to_string())),
    };
    if let Some(error) = &error {
        tracing::warn!(job_id = %job.id, kind = job.kind.as_str(), attempt, ?outcome, error, "job attempt failed");
    }
    store
        .finish(&caller, job.id, outcome, error.as_deref())
        .await
        .map_err(|source| Bookkeeping::Finish {
            job: job.id,
            source,
        })?;
    Ok(match (outcome, error) {
        (Outcome::Failed, Some(error)) => Attempt::Retry(error),
        (Outcome::Dead, Some(error)) => Attempt::GiveUp(error),
        _ => Attempt::Finished,
    })
}

async fn work(app: &App, job: &JobRow, tenant_id: &TenantId) -> Result<(), IntegrationsError> {
    let caller = service_caller(tenant_id);
    let request = JobRequest::from_stored(job.kind, &job.params).map_err(|reason| {
        IntegrationsError::JobUnreadable {
            job: job.id,
            reason,
        }
    })?;
    match request {
        JobRequest::DriverSync => sync::sync_drivers(app, &caller, job.id).await,
        JobRequest::CollectionImport { date } => {
            let earlier = job.result.as_ref().map(|tally| &tally.0);
            import::import_collections(app, &caller, job.id, date, earlier).await
        }
    }
}
