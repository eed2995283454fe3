//! Director's Companies service: the farms milk is collected from. Create, read, list,
//! partially update and soft-delete the companies of the caller's tenant over gRPC
//! (`director.companies.v1.CompaniesService`); the gateway exposes the same API as REST.
//! [`internal`] serves the bulk call imports make, to other services only.
//!
//! Layers: [`domain`] (the typed id and checked values) and [`error`] (failures and their
//! gRPC codes) at the bottom, the [`store`] over them, and the gRPC services ([`grpc`],
//! [`internal`]) on top.

pub mod domain;
pub mod error;
pub mod grpc;
pub mod internal;
pub mod store;

use director_platform::catalog;
use director_platform::server::{
    GRPC_COMPRESSION, MAX_BULK_MESSAGE_BYTES, MAX_REQUEST_MESSAGE_BYTES,
};
use director_proto::companies::companies_service_server::{self, CompaniesServiceServer};
use director_proto::internal::companies::companies_internal_service_server::{
    self, CompaniesInternalServiceServer,
};
use director_store::runner::{Service, ServiceContext};

use grpc::CompaniesApi;
use store::CompanyStore;

/// The Companies service, as the runner (and `director up`) start it.
pub const SERVICE: Service = Service {
    spec: &catalog::COMPANIES,
    grpc_services: &[
        companies_service_server::SERVICE_NAME,
        companies_internal_service_server::SERVICE_NAME,
    ],
    descriptor_set: director_proto::FILE_DESCRIPTOR_SET,
    routes,
};

fn routes(context: &ServiceContext) -> anyhow::Result<tonic::service::Routes> {
    let api = CompaniesApi::new(CompanyStore::new(context.db.clone()));
    let internal = internal::CompaniesInternalApi::new(context.db.clone());
    Ok(tonic::service::Routes::new(
        CompaniesServiceServer::new(api)
            .max_decoding_message_size(MAX_REQUEST_MESSAGE_BYTES)
            .accept_compressed(GRPC_COMPRESSION)
            .send_compressed(GRPC_COMPRESSION),
    )
    .add_service(
        CompaniesInternalServiceServer::new(internal)
            .max_decoding_message_size(MAX_BULK_MESSAGE_BYTES),
    ))
}
