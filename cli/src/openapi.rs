//! `director openapi`: the OpenAPI document the gateway serves, without starting anything.

use anyhow::Context;
use director_gateway::openapi::openapi_document;
use director_gateway::rest::RestApi;
use prost_reflect::DescriptorPool;

/// The OpenAPI 3.1 document of every annotated Director RPC.
pub fn document() -> anyhow::Result<serde_json::Value> {
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET)
        .context("the compiled descriptor set does not decode")?;
    let api = RestApi::new(&pool)?;
    Ok(openapi_document(&api, &pool))
}
