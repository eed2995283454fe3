//! `GetIntegrationSettings` and `UpdateIntegrationSettings`, for admins only: the settings
//! spend money and reach third parties in the tenant's name.

use director_platform::identity::{Caller, Role, caller};
use director_proto::integrations::{
    GetIntegrationSettingsRequest, GetIntegrationSettingsResponse,
    UpdateIntegrationSettingsRequest, UpdateIntegrationSettingsResponse,
};
use tonic::{Request, Response, Status};

use super::sections::parse_update;
use crate::app::App;

/// Why a dispatcher or driver is refused.
pub const ONLY_ADMINS: &str = "Only admins can see or change integration settings";

pub async fn get(
    app: &App,
    request: Request<GetIntegrationSettingsRequest>,
) -> Result<Response<GetIntegrationSettingsResponse>, Status> {
    let caller = admin(&request)?;
    let settings = app.providers.settings().load(&caller).await?;
    Ok(Response::new(GetIntegrationSettingsResponse {
        settings: Some(settings.to_message()),
    }))
}

pub async fn update(
    app: &App,
    request: Request<UpdateIntegrationSettingsRequest>,
) -> Result<Response<UpdateIntegrationSettingsResponse>, Status> {
    let caller = admin(&request)?;
    let changes = parse_update(request.into_inner(), app.providers.egress()).await?;
    let settings = app.providers.settings().apply(&caller, &changes).await?;
    Ok(Response::new(UpdateIntegrationSettingsResponse {
        settings: Some(settings.to_message()),
    }))
}

fn admin<T>(request: &Request<T>) -> Result<Caller, Status> {
    let caller = caller(request)?;
    if caller.role == Role::Admin {
        Ok(caller)
    } else {
        Err(Status::permission_denied(ONLY_ADMINS))
    }
}
