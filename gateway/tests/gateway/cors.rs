//! CORS: allowed origins (exact list and anchored pattern) get their origin echoed with
//! credentials and a cached preflight; other origins get no allow-origin header at all.
#![allow(clippy::unwrap_used)]

use crate::common;

use common::*;

async fn preflight(gateway: &TestGateway, origin: &str) -> reqwest::Response {
    http()
        .request(reqwest::Method::OPTIONS, gateway.at("/api/companies"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, x-grpc-web",
        )
        .send()
        .await
        .unwrap()
}

async fn gateway() -> TestGateway {
    spawn_gateway(
        config(&[
            (
                "CORS_ORIGINS",
                "http://localhost:3000, https://app.example.com",
            ),
            (
                "ALLOWED_ORIGIN_REGEX",
                r"https://[a-z0-9-]+\.preview\.example\.com",
            ),
        ]),
        echo_pool(),
        vec![],
    )
    .await
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered_without_authentication() {
    let gateway = gateway().await;
    let response = preflight(&gateway, "https://app.example.com").await;
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(
        headers.get("access-control-allow-credentials").is_none(),
        "bearer tokens need no credentialed CORS"
    );
    assert_eq!(headers["access-control-max-age"], "600");
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("PATCH") && methods.contains("DELETE"),
        "{methods}"
    );
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    for name in [
        "authorization",
        "content-type",
        "x-grpc-web",
        "grpc-timeout",
    ] {
        assert!(allowed.contains(name), "{name} in {allowed}");
    }
}

#[tokio::test]
async fn a_preflight_from_an_unknown_origin_gets_no_allow_origin() {
    let gateway = gateway().await;
    let response = preflight(&gateway, "https://evil.example.net").await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn origins_matching_the_pattern_are_allowed_but_only_as_a_whole() {
    let gateway = gateway().await;
    let response = preflight(&gateway, "https://pr-42.preview.example.com").await;
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://pr-42.preview.example.com"
    );
    let response = preflight(&gateway, "https://pr-42.preview.example.com.evil.net").await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn actual_responses_expose_the_grpc_and_request_id_headers_to_allowed_origins() {
    let gateway = gateway().await;
    let response = http()
        .get(gateway.at("/api/health"))
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let exposed = headers["access-control-expose-headers"].to_str().unwrap();
    for name in [
        "grpc-status",
        "grpc-message",
        "grpc-status-details-bin",
        "x-request-id",
    ] {
        assert!(exposed.contains(name), "{name} in {exposed}");
    }
}
