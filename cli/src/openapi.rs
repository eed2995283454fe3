//! `director openapi`: the OpenAPI document the gateway serves, without starting anything.

use anyhow::Context;
use director_gateway::openapi::openapi_document;
use director_gateway::rest::RestApi;
use director_platform::catalog;
use prost_reflect::DescriptorPool;

/// The OpenAPI 3.1 document of the annotated RPCs of every service in the catalog: what the
/// gateway serves at `/api/openapi.json`.
pub fn document() -> anyhow::Result<serde_json::Value> {
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET)
        .context("the compiled descriptor set does not decode")?;
    let api = RestApi::new(&pool)?.restricted_to(|package| catalog::owner_of(package).is_some());
    Ok(openapi_document(&api, &pool))
}
