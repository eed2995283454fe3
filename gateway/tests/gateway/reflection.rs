//! gRPC reflection and health served by the gateway itself, without a token: what
//! `grpcurl -plaintext localhost:8080 list` relies on.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::*;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

async fn list_services(gateway: &TestGateway) -> Vec<String> {
    let channel = grpc_channel(gateway).await;
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    match response.message_response.unwrap() {
        MessageResponse::ListServicesResponse(list) => list
            .service
            .into_iter()
            .map(|service| service.name)
            .collect(),
        other => panic!("unexpected reflection answer {other:?}"),
    }
}

#[tokio::test]
async fn reflection_lists_the_services_behind_the_gateway_and_health() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let services = list_services(&gateway).await;
    assert!(services.contains(&ECHO_SERVICE.to_owned()), "{services:?}");
    assert!(
        services.contains(&"grpc.health.v1.Health".to_owned()),
        "{services:?}"
    );
}

#[tokio::test]
async fn reflection_lists_every_public_director_service_and_no_internal_one() {
    let upstreams = director_platform::catalog::public_upstreams(
        &director_platform::config::Env::from_pairs(Vec::<(String, String)>::new()),
    )
    .unwrap();
    let gateway = spawn_gateway(
        config(&[]),
        prost_reflect::DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap(),
        upstreams,
    )
    .await;
    let services = list_services(&gateway).await;
    for service in [
        "director.companies.v1.CompaniesService",
        "director.dispatch.v1.DriversService",
        "director.dispatch.v1.TasksService",
        "director.integrations.v1.IntegrationsService",
        "director.integrations.v1.JobsService",
        "director.integrations.v1.NotificationsService",
    ] {
        assert!(
            services.contains(&service.to_owned()),
            "{service} in {services:?}"
        );
    }
    assert!(
        !services
            .iter()
            .any(|service| service.contains(".internal.")),
        "service-to-service APIs are not advertised: {services:?}"
    );
}

#[tokio::test]
async fn the_gateway_answers_grpc_health_checks_itself_without_a_token() {
    let gateway = spawn_gateway(config(&[]), echo_pool(), vec![]).await;
    let channel = grpc_channel(&gateway).await;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let response = client
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );
}
