//! Liveness and readiness: `/api/health` never calls upstreams; `/api/health/ready` is 200
//! while at least one upstream's grpc.health.v1 says SERVING (`ok` when all do, `degraded`
//! otherwise, the absent service's routes answering 503), and names each one's state.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::*;
use serde_json::Value;
use tonic_health::ServingStatus;

async fn ready(gateway: &TestGateway) -> (u16, Value) {
    let response = http()
        .get(gateway.at("/api/health/ready"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn liveness_answers_healthy_even_with_every_upstream_down() {
    let down = unreachable_uri().await;
    let gateway = spawn_gateway(
        config(&[]),
        echo_pool(),
        vec![(ECHO_PACKAGE.to_owned(), down)],
    )
    .await;
    let response = http().get(gateway.at("/api/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"status": "healthy", "service": "integration-director"})
    );
}

#[tokio::test]
async fn readiness_is_200_when_every_upstream_is_serving() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let (status, body) = ready(&gateway).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["services"][ECHO_PACKAGE]["status"], "serving");
    assert_eq!(body["services"][ECHO_PACKAGE]["database"], "connected");
}

#[tokio::test]
async fn one_unreachable_upstream_degrades_readiness_and_fails_only_its_own_routes() {
    let upstream = spawn_echo_upstream().await;
    let down = unreachable_uri().await;
    let gateway = spawn_gateway(
        config(&[]),
        director_pool_with_echo(),
        vec![
            (ECHO_PACKAGE.to_owned(), upstream.uri.clone()),
            ("director.companies.v1".to_owned(), down),
        ],
    )
    .await;
    let started = std::time::Instant::now();
    let (status, body) = ready(&gateway).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "a short deadline"
    );
    assert_eq!(status, 200, "the gateway can still serve: {body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(
        body["services"]["director.companies.v1"]["status"],
        "unreachable"
    );
    assert_eq!(body["services"][ECHO_PACKAGE]["status"], "serving");

    let bearer = format!("Bearer {}", token("u1"));
    let absent = http()
        .get(gateway.at("/api/companies"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(absent.status(), 503);
    let present = http()
        .get(gateway.at("/api/testing/echo/n1?count=1"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(present.status(), 200);
}

#[tokio::test]
async fn readiness_is_503_when_no_upstream_is_serving() {
    let down = unreachable_uri().await;
    let gateway = spawn_gateway(
        config(&[]),
        echo_pool(),
        vec![(ECHO_PACKAGE.to_owned(), down)],
    )
    .await;
    let (status, body) = ready(&gateway).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
}

#[tokio::test]
async fn readiness_reports_a_not_serving_upstream_as_database_disconnected() {
    let (gateway, upstream) = spawn_echo_stack(&[]).await;
    upstream
        .health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let (status, body) = ready(&gateway).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["services"][ECHO_PACKAGE]["status"], "not_serving");
    assert_eq!(body["services"][ECHO_PACKAGE]["database"], "disconnected");

    upstream
        .health
        .set_service_status("", ServingStatus::Serving)
        .await;
    let (status, _) = ready(&gateway).await;
    assert_eq!(status, 200);
}
