//! The `director.integrations.v1.IntegrationsService` gRPC API.

use director_platform::contract_rules;
use director_platform::identity::writer;
use director_platform::validate::{self, Violations};
use director_proto::integrations::integrations_service_server::IntegrationsService;
use director_proto::integrations::{
    GetIntegrationSettingsRequest, GetIntegrationSettingsResponse, GetVesseyDriverRequest,
    GetVesseyDriverResponse, ImportVesseyCollectionsRequest, ImportVesseyCollectionsResponse,
    ListIntegrationsRequest, ListIntegrationsResponse, SyncVesseyDriversRequest,
    SyncVesseyDriversResponse, UpdateIntegrationSettingsRequest, UpdateIntegrationSettingsResponse,
    VesseyDriver,
};
use tonic::{Request, Response, Status};

use crate::access::{DRIVERS_CANNOT_USE, admin};
use crate::app::App;
use crate::domain::JobRequest;
use crate::error::IntegrationsError;
use crate::jobs::message::job_message;
use crate::jobs::store::{JobRow, Started};
use crate::settings;

/// The Integrations gRPC service.
#[derive(Debug, Clone)]
pub struct IntegrationsApi {
    app: App,
}

impl IntegrationsApi {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl IntegrationsService for IntegrationsApi {
    async fn list_integrations(
        &self,
        request: Request<ListIntegrationsRequest>,
    ) -> Result<Response<ListIntegrationsResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_USE)?;
        let integrations = self.app.providers.for_tenant(&caller).await?.states();
        Ok(Response::new(ListIntegrationsResponse { integrations }))
    }

    async fn get_integration_settings(
        &self,
        request: Request<GetIntegrationSettingsRequest>,
    ) -> Result<Response<GetIntegrationSettingsResponse>, Status> {
        let caller = admin(&request)?;
        settings::grpc::get(self.app.providers.settings(), &caller).await
    }

    async fn update_integration_settings(
        &self,
        request: Request<UpdateIntegrationSettingsRequest>,
    ) -> Result<Response<UpdateIntegrationSettingsResponse>, Status> {
        let caller = admin(&request)?;
        settings::grpc::update(
            self.app.providers.settings(),
            self.app.providers.egress(),
            &caller,
            request.into_inner(),
        )
        .await
    }

    async fn get_vessey_driver(
        &self,
        request: Request<GetVesseyDriverRequest>,
    ) -> Result<Response<GetVesseyDriverResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_USE)?;
        contract_rules::check(request.get_ref())?;
        let driver_id = validate::trimmed(&request.get_ref().driver_id);
        let providers = self.app.providers.for_tenant(&caller).await?;
        let vessey = providers.vessey().map_err(IntegrationsError::from)?;
        let driver = vessey
            .driver(&driver_id)
            .await
            .map_err(IntegrationsError::from)?;
        Ok(Response::new(GetVesseyDriverResponse {
            driver: Some(VesseyDriver {
                id: driver.id,
                name: driver.name,
                phone: driver.phone,
                email: driver.email,
                active: driver.active,
            }),
        }))
    }

    async fn sync_vessey_drivers(
        &self,
        request: Request<SyncVesseyDriversRequest>,
    ) -> Result<Response<SyncVesseyDriversResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_USE)?;
        // Refused now rather than queued to fail: the job could never succeed.
        self.app
            .providers
            .for_tenant(&caller)
            .await?
            .vessey()
            .map_err(IntegrationsError::from)?;
        let job = started(self.app.jobs.start(&caller, &JobRequest::DriverSync).await)?;
        Ok(Response::new(SyncVesseyDriversResponse {
            job: Some(job_message(job)),
        }))
    }

    async fn import_vessey_collections(
        &self,
        request: Request<ImportVesseyCollectionsRequest>,
    ) -> Result<Response<ImportVesseyCollectionsResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_USE)?;
        contract_rules::check(request.get_ref())?;
        let mut violations = Violations::new();
        let date = violations.check("date", validate::date(&request.get_ref().date));
        violations.into_result()?;
        let Some(date) = date else {
            return Err(Status::invalid_argument("Invalid date"));
        };
        self.app
            .providers
            .for_tenant(&caller)
            .await?
            .vessey()
            .map_err(IntegrationsError::from)?;
        let job = started(
            self.app
                .jobs
                .start(&caller, &JobRequest::CollectionImport { date })
                .await,
        )?;
        Ok(Response::new(ImportVesseyCollectionsResponse {
            job: Some(job_message(job)),
        }))
    }
}

/// The job a start request answers: the new one, or the same one already under way; beyond
/// the tenant's limit, RESOURCE_EXHAUSTED.
fn started(outcome: Result<Started, sqlx::Error>) -> Result<JobRow, Status> {
    match outcome.map_err(IntegrationsError::from)? {
        Started::New(job) | Started::Existing(job) => Ok(job),
        Started::TooMany { limit } => Err(IntegrationsError::TooManyJobs { limit }.into()),
    }
}
