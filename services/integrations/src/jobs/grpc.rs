//! The `director.integrations.v1.JobsService` gRPC API.

use director_platform::contract_rules;
use director_platform::identity::writer;
use director_platform::time::to_timestamp;
use director_platform::validate::{self, Violations};
use director_proto::integrations::jobs_service_server::JobsService;
use director_proto::integrations::{
    GetJobRequest, GetJobResponse, Job, JobKind, JobProgress, JobStatus, ListJobsRequest,
    ListJobsResponse, WatchJobRequest, WatchJobResponse,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::store::{JobRow, JobStore};
use super::watch::JobWatch;
use crate::error::IntegrationsError;
use crate::vessey::grpc::DRIVERS_CANNOT_USE;
use crate::vessey::{import, sync};

/// The answer for a job that does not exist in the caller's tenant.
pub const NOT_FOUND: &str = "Job not found";

/// The Jobs gRPC service.
#[derive(Debug, Clone)]
pub struct JobsApi {
    store: JobStore,
    watch: JobWatch,
}

impl JobsApi {
    pub fn new(store: JobStore, watch: JobWatch) -> Self {
        Self { store, watch }
    }
}

#[tonic::async_trait]
impl JobsService for JobsApi {
    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_USE)?;
        contract_rules::check(request.get_ref())?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let status = violations
            .check("status", status_filter(request.status))
            .flatten();
        let page = validate::page(request.skip, request.limit, &mut violations);
        violations.into_result()?;
        let rows = self
            .store
            .list(&caller, status, page)
            .await
            .map_err(IntegrationsError::from)?;
        Ok(Response::new(ListJobsResponse {
            jobs: rows.into_iter().map(job_message).collect(),
        }))
    }

    async fn get_job(
        &self,
        request: Request<GetJobRequest>,
    ) -> Result<Response<GetJobResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_USE)?;
        contract_rules::check(request.get_ref())?;
        let id = validate::id("id", &request.get_ref().id)?;
        let row = self
            .store
            .get(&caller, id)
            .await
            .map_err(IntegrationsError::from)?
            .ok_or(IntegrationsError::NotFound(NOT_FOUND))?;
        Ok(Response::new(GetJobResponse {
            job: Some(job_message(row)),
        }))
    }

    type WatchJobStream = ReceiverStream<Result<WatchJobResponse, Status>>;

    async fn watch_job(
        &self,
        request: Request<WatchJobRequest>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_USE)?;
        contract_rules::check(request.get_ref())?;
        let id = validate::id("id", &request.get_ref().id)?;
        let stream = self.watch.watch(caller, id).await?;
        Ok(Response::new(stream))
    }
}

/// The stored status a filter names; `None` for UNSPECIFIED (any).
fn status_filter(value: i32) -> Result<Option<&'static str>, String> {
    match JobStatus::try_from(value) {
        Ok(JobStatus::Unspecified) => Ok(None),
        Ok(JobStatus::Queued) => Ok(Some("queued")),
        Ok(JobStatus::Running) => Ok(Some("running")),
        Ok(JobStatus::Succeeded) => Ok(Some("succeeded")),
        Ok(JobStatus::Failed) => Ok(Some("failed")),
        Ok(JobStatus::Dead) => Ok(Some("dead")),
        Err(_) => Err("must be queued, running, succeeded, failed or dead".to_owned()),
    }
}

/// A stored job as the API shows it.
pub fn job_message(row: JobRow) -> Job {
    let kind = match row.kind.as_str() {
        sync::KIND => JobKind::VesseyDriverSync,
        import::KIND => JobKind::VesseyCollectionImport,
        _ => JobKind::Unspecified,
    };
    let status = match row.status.as_str() {
        "queued" => JobStatus::Queued,
        "running" => JobStatus::Running,
        "succeeded" => JobStatus::Succeeded,
        "failed" => JobStatus::Failed,
        "dead" => JobStatus::Dead,
        _ => JobStatus::Unspecified,
    };
    Job {
        id: row.id.to_string(),
        kind: kind as i32,
        status: status as i32,
        progress: Some(JobProgress {
            done: row.progress_done,
            total: row.progress_total,
        }),
        attempts: row.attempts,
        last_error: row.last_error,
        created_at: Some(to_timestamp(row.created_at)),
        updated_at: Some(to_timestamp(row.updated_at)),
        result: row.result.map(|tally| tally.0.to_message()),
    }
}
