//! `spawn_app` for the Companies service: a fresh, migrated database per test and the real
//! gRPC server on a random port, driven through the generated client.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use director_companies::CompaniesConfig;
use director_platform::config::Env;
use director_platform::db::database_url_for;
use director_platform::identity::{Caller, InternalTokens, Role};
use director_platform::migrate::create_and_migrate;
use director_proto::companies::companies_service_client::CompaniesServiceClient;
use director_proto::companies::{
    Company, CreateCompanyRequest, DeleteCompanyRequest, DeleteCompanyResponse, GetCompanyRequest,
    GetCompanyResponse, ListCompaniesRequest,
};
use tokio_util::sync::CancellationToken;
use tonic::Status;
use tonic::transport::Channel;

pub const INTERNAL_SECRET: &str = "test-internal-secret-0123456789abcdef-0123";

#[derive(Debug)]
pub struct TestApp {
    pub addr: SocketAddr,
    pub database_url: String,
    pub config: CompaniesConfig,
    pub tokens: InternalTokens,
    pub shutdown: CancellationToken,
}

pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@localhost:5432".into())
}

/// A new database with the companies migrations applied.
pub async fn fresh_database() -> String {
    let name = format!("test_companies_{}", uuid::Uuid::new_v4().simple());
    let url = database_url_for(&server_url(), &name).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    create_and_migrate(&url, &root, "companies").await.unwrap();
    url
}

pub async fn spawn_app() -> TestApp {
    spawn_app_on(fresh_database().await).await
}

pub async fn spawn_app_on(database_url: String) -> TestApp {
    let env = Env::from_pairs([
        ("COMPANIES_DATABASE_URL", database_url.as_str()),
        ("COMPANIES_ADDR", "127.0.0.1:0"),
        ("INTERNAL_TOKEN_SECRET", INTERNAL_SECRET),
        ("DB_ACQUIRE_TIMEOUT_MS", "1000"),
        ("DB_CONNECT_TIMEOUT_MS", "1000"),
    ]);
    let config = CompaniesConfig::from_env(&env).unwrap();
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(director_companies::serve(
        config.clone(),
        listener,
        shutdown.clone(),
    ));
    let tokens = InternalTokens::new(&config.internal_tokens.secret, Duration::from_secs(60));
    TestApp {
        addr,
        database_url,
        config,
        tokens,
        shutdown,
    }
}

impl TestApp {
    pub async fn client(&self) -> CompaniesServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        CompaniesServiceClient::new(channel)
    }

    /// Creates a company as `caller`, which must succeed.
    pub async fn create(
        &self,
        client: &mut CompaniesServiceClient<Channel>,
        caller: &Caller,
        request: CreateCompanyRequest,
    ) -> Company {
        client
            .create_company(self.request(caller, request))
            .await
            .unwrap()
            .into_inner()
            .company
            .unwrap()
    }

    /// Reads company `id` as `caller`.
    pub async fn get(
        &self,
        client: &mut CompaniesServiceClient<Channel>,
        caller: &Caller,
        id: &str,
    ) -> Result<GetCompanyResponse, Status> {
        let request = GetCompanyRequest { id: id.to_owned() };
        client
            .get_company(self.request(caller, request))
            .await
            .map(tonic::Response::into_inner)
    }

    /// Deletes company `id` as `caller`.
    pub async fn delete(
        &self,
        client: &mut CompaniesServiceClient<Channel>,
        caller: &Caller,
        id: &str,
    ) -> Result<DeleteCompanyResponse, Status> {
        let request = DeleteCompanyRequest { id: id.to_owned() };
        client
            .delete_company(self.request(caller, request))
            .await
            .map(tonic::Response::into_inner)
    }

    /// The first page of companies `caller` sees, which must be listed.
    pub async fn list(
        &self,
        client: &mut CompaniesServiceClient<Channel>,
        caller: &Caller,
    ) -> Vec<Company> {
        client
            .list_companies(self.request(caller, ListCompaniesRequest::default()))
            .await
            .unwrap()
            .into_inner()
            .companies
    }

    /// A request carrying an internal token for `caller`.
    pub fn request<T>(&self, caller: &Caller, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let token = self.tokens.mint(caller).unwrap();
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    }
}

pub fn admin(tenant: &str) -> Caller {
    caller(tenant, Role::Admin)
}

pub fn caller(tenant: &str, role: Role) -> Caller {
    Caller {
        user_id: format!("user-of-{tenant}"),
        tenant_id: tenant.to_owned(),
        role,
    }
}
