//! A service's `google.rpc.RetryInfo` reaches every kind of caller: REST answers carry it as
//! `Retry-After` (whole seconds, rounded up), native gRPC and gRPC-Web callers get the status
//! details themselves (`grpc-status-details-bin`), untouched by the gateway.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::*;
use director_proto::companies::companies_service_client::CompaniesServiceClient;
use director_proto::companies::companies_service_server::{
    CompaniesService, CompaniesServiceServer,
};
use director_proto::companies::{self as c};
use prost_reflect::DescriptorPool;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

const MESSAGE: &str = "Daily SMS limit of 500 reached";

/// A companies service whose every call is over a limit, to retry in 1.2 s.
struct Exhausted;

fn exhausted<T>() -> Result<tonic::Response<T>, Status> {
    Err(Status::with_error_details(
        Code::ResourceExhausted,
        MESSAGE,
        ErrorDetails::with_retry_info(Some(Duration::from_millis(1200))),
    ))
}

#[tonic::async_trait]
impl CompaniesService for Exhausted {
    async fn list_companies(
        &self,
        _: tonic::Request<c::ListCompaniesRequest>,
    ) -> Result<tonic::Response<c::ListCompaniesResponse>, Status> {
        exhausted()
    }
    async fn create_company(
        &self,
        _: tonic::Request<c::CreateCompanyRequest>,
    ) -> Result<tonic::Response<c::CreateCompanyResponse>, Status> {
        exhausted()
    }
    async fn get_company(
        &self,
        _: tonic::Request<c::GetCompanyRequest>,
    ) -> Result<tonic::Response<c::GetCompanyResponse>, Status> {
        exhausted()
    }
    async fn update_company(
        &self,
        _: tonic::Request<c::UpdateCompanyRequest>,
    ) -> Result<tonic::Response<c::UpdateCompanyResponse>, Status> {
        exhausted()
    }
    async fn delete_company(
        &self,
        _: tonic::Request<c::DeleteCompanyRequest>,
    ) -> Result<tonic::Response<c::DeleteCompanyResponse>, Status> {
        exhausted()
    }
}

/// A gateway serving Director's contracts with the exhausted companies service behind it.
async fn gateway_in_front_of_an_exhausted_service() -> TestGateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(CompaniesServiceServer::new(Exhausted))
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    let pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap();
    let upstream = format!("http://{addr}").parse().unwrap();
    spawn_gateway(
        config(&[]),
        pool,
        vec![("director.companies.v1".to_owned(), upstream)],
    )
    .await
}

#[tokio::test]
async fn rest_answers_429_with_retry_after_from_the_services_retry_info() {
    let gateway = gateway_in_front_of_an_exhausted_service().await;
    let response = http()
        .get(gateway.at("/api/companies"))
        .header("authorization", format!("Bearer {}", token("u1")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "RESOURCE_EXHAUSTED");
    assert_eq!(body["error"], MESSAGE);
}

#[tokio::test]
async fn grpc_and_grpc_web_callers_get_the_retry_info_itself() {
    let gateway = gateway_in_front_of_an_exhausted_service().await;
    let bearer = format!("Bearer {}", token("u1"));

    let mut client = CompaniesServiceClient::new(grpc_channel(&gateway).await);
    let mut request = tonic::Request::new(c::ListCompaniesRequest::default());
    request
        .metadata_mut()
        .insert("authorization", bearer.parse().unwrap());
    let status = client.list_companies(request).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status
            .get_details_retry_info()
            .and_then(|info| info.retry_delay),
        Some(Duration::from_millis(1200))
    );

    let response = http()
        .post(gateway.at("/director.companies.v1.CompaniesService/ListCompanies"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("authorization", &bearer)
        .body(grpc_web_frame(&[]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap();
    let (_, trailers) = parse_grpc_web(&body);
    // A trailers-only answer carries its status in the headers; otherwise in the trailers.
    let field = |name: &str| {
        headers
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
            .or_else(|| trailers.get(name).cloned())
            .unwrap_or_default()
    };
    assert_eq!(field("grpc-status"), "8");
    let details = field("grpc-status-details-bin");
    let status = Status::with_details(
        Code::ResourceExhausted,
        MESSAGE,
        base64_decode(&details).into(),
    );
    assert_eq!(
        status
            .get_details_retry_info()
            .and_then(|info| info.retry_delay),
        Some(Duration::from_millis(1200))
    );
}

/// `grpc-status-details-bin` is base64 without padding (gRPC's binary metadata).
fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text.trim_end_matches('='))
        .unwrap()
}
