//! Director's Companies service: the farms milk is collected from. Create, read, list,
//! partially update and soft-delete the companies of the caller's tenant over gRPC
//! (`director.companies.v1.CompaniesService`); the gateway exposes the same API as REST.

pub mod config;
pub mod error;
pub mod grpc;
pub mod store;

use std::time::Duration;

use director_platform::db;
use director_platform::identity::InternalTokens;
use director_platform::server::{self, ServeOptions};
use director_proto::companies::companies_service_server::{CompaniesServiceServer, SERVICE_NAME};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{CompaniesConfig, SERVICE};

use grpc::CompaniesApi;
use store::CompanyStore;

/// How long in-flight calls may take to finish once shutdown begins.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// How often health re-checks the database.
const HEALTH_INTERVAL: Duration = Duration::from_secs(5);

/// Serves the Companies gRPC API (plus health and reflection) on `listener` until `shutdown`
/// is cancelled. Starts even when the database is down: health answers NOT_SERVING and calls
/// fail fast with UNAVAILABLE until it answers.
pub async fn serve(
    config: CompaniesConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let pool = db::connect_lazy(&config.database)?;
    let tokens = Arc::new(InternalTokens::new(
        &config.internal_tokens.secret,
        config.internal_tokens.ttl,
    ));
    let api = CompaniesApi::new(CompanyStore::new(pool.clone(), config.database.clone()));
    let routes = tonic::service::Routes::new(CompaniesServiceServer::new(api));
    server::serve(
        listener,
        routes,
        ServeOptions {
            service_names: vec![SERVICE_NAME],
            descriptor_set: director_proto::FILE_DESCRIPTOR_SET,
            pool,
            tokens,
            shutdown,
            drain_deadline: DRAIN_DEADLINE,
            health_interval: HEALTH_INTERVAL,
        },
    )
    .await
}
