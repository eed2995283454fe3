//! `GetIntegrationSettings` and `UpdateIntegrationSettings`, for admins only (the caller is
//! checked by the API that routes here, with `access::admin`): the settings spend money and
//! reach third parties in the tenant's name.

use director_platform::contract_rules;
use director_platform::identity::Caller;
use director_proto::integrations::{
    GetIntegrationSettingsResponse, UpdateIntegrationSettingsRequest,
    UpdateIntegrationSettingsResponse,
};
use director_providers::EgressPolicy;
use tonic::{Response, Status};

use super::sections::parse_update;
use super::store::SettingsStore;

/// The admin `caller`'s tenant's settings, secrets masked.
pub async fn get(
    settings: &SettingsStore,
    caller: &Caller,
) -> Result<Response<GetIntegrationSettingsResponse>, Status> {
    let settings = settings.load(caller).await?;
    Ok(Response::new(GetIntegrationSettingsResponse {
        settings: Some(settings.to_message()),
    }))
}

/// Applies the admin `caller`'s `request`, each URL through the `egress` guard, and answers
/// the settings after it.
pub async fn update(
    settings: &SettingsStore,
    egress: &EgressPolicy,
    caller: &Caller,
    request: UpdateIntegrationSettingsRequest,
) -> Result<Response<UpdateIntegrationSettingsResponse>, Status> {
    contract_rules::check(&request)?;
    let changes = parse_update(request, egress).await?;
    let settings = settings.apply(caller, &changes).await?;
    Ok(Response::new(UpdateIntegrationSettingsResponse {
        settings: Some(settings.to_message()),
    }))
}
