//! The `director.integrations.v1.JobsService` gRPC API.

use director_platform::contract_rules;
use director_platform::identity::writer;
use director_platform::validate::{self, Violations};
use director_proto::integrations::jobs_service_server::JobsService;
use director_proto::integrations::{
    GetJobRequest, GetJobResponse, ListJobsRequest, ListJobsResponse, WatchJobRequest,
    WatchJobResponse,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::message::{NOT_FOUND, job_message};
use super::store::JobStore;
use super::watch::JobWatch;
use crate::access::DRIVERS_CANNOT_USE;
use crate::domain::{JobId, JobStatus};
use crate::error::IntegrationsError;

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
            .check("status", JobStatus::filter_from_proto(request.status))
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
        let id = JobId::parse_field("id", &request.get_ref().id)?;
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
        let id = JobId::parse_field("id", &request.get_ref().id)?;
        let stream = self.watch.watch(caller, id).await?;
        Ok(Response::new(stream))
    }
}
