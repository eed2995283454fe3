//! Director's Companies service: the farms milk is collected from. Create, read, list,
//! partially update and soft-delete the companies of the caller's tenant over gRPC
//! (`director.companies.v1.CompaniesService`); the gateway exposes the same API as REST.

pub mod error;
pub mod grpc;
pub mod store;

use director_platform::catalog;
use director_platform::runner::{Service, ServiceContext};
use director_proto::companies::companies_service_server::{CompaniesServiceServer, SERVICE_NAME};

use grpc::CompaniesApi;
use store::CompanyStore;

/// The Companies service, as the runner (and `director up`) start it.
pub const SERVICE: Service = Service {
    spec: &catalog::COMPANIES,
    grpc_services: &[SERVICE_NAME],
    descriptor_set: director_proto::FILE_DESCRIPTOR_SET,
    routes,
};

fn routes(context: &ServiceContext) -> anyhow::Result<tonic::service::Routes> {
    let api = CompaniesApi::new(CompanyStore::new(context.db.clone()));
    Ok(tonic::service::Routes::new(CompaniesServiceServer::new(
        api,
    )))
}
