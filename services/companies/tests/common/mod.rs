//! `spawn_app` for the Companies service: a fresh, migrated database per test and the real
//! gRPC server on a random port, driven through the generated client.

#![allow(dead_code, clippy::unwrap_used)]

use std::ops::Deref;

use director_platform::identity::{Caller, Role};
use director_proto::companies::companies_service_client::CompaniesServiceClient;
use director_proto::companies::{
    Company, CreateCompanyRequest, DeleteCompanyRequest, DeleteCompanyResponse, GetCompanyRequest,
    GetCompanyResponse, ListCompaniesRequest,
};
use director_store::testing::{TestService, spawn_service, spawn_service_on};
use tonic::Status;
use tonic::transport::Channel;

/// The Companies service on a random port, on its own database.
#[derive(Debug)]
pub struct TestApp(TestService);

impl Deref for TestApp {
    type Target = TestService;

    fn deref(&self) -> &TestService {
        &self.0
    }
}

pub async fn spawn_app() -> TestApp {
    TestApp(spawn_service(&director_companies::SERVICE, &[]).await)
}

/// The service with `extra` settings.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    TestApp(spawn_service(&director_companies::SERVICE, extra).await)
}

pub async fn spawn_app_on(database_url: String) -> TestApp {
    TestApp(spawn_service_on(&director_companies::SERVICE, database_url, &[]).await)
}

impl TestApp {
    pub async fn client(&self) -> CompaniesServiceClient<Channel> {
        CompaniesServiceClient::new(self.channel().await)
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
}

pub fn admin(tenant: &str) -> Caller {
    caller(tenant, Role::Admin)
}

pub fn caller(tenant: &str, role: Role) -> Caller {
    Caller::new(format!("user-of-{tenant}"), tenant, role)
}
