//! The internal auth layer, driven as a plain tower service with `http::Request`s.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use director_platform::config::Secret;
use director_platform::identity::{Caller, InternalAuthLayer, InternalTokens, Role};
use tower::{Layer as _, ServiceExt as _};

const SECRET: &str = "layer-test-secret-with-at-least-32-bytes";

/// Records what the inner service saw; `None` inside means it was called without a caller.
type Seen = Arc<Mutex<Vec<Option<Caller>>>>;

fn tokens() -> Arc<InternalTokens> {
    Arc::new(InternalTokens::new(
        &Secret::from(SECRET),
        Duration::from_secs(60),
    ))
}

async fn send(path: &str, authorization: Option<&str>) -> (http::Response<String>, Seen) {
    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let inner = tower::service_fn(move |request: http::Request<()>| {
        let record = Arc::clone(&record);
        async move {
            record
                .lock()
                .unwrap()
                .push(request.extensions().get::<Caller>().cloned());
            Ok::<_, Infallible>(http::Response::new("from the service".to_owned()))
        }
    });
    let service = InternalAuthLayer::new(tokens()).layer(inner);
    let mut request = http::Request::builder().method("POST").uri(path);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = service.oneshot(request.body(()).unwrap()).await.unwrap();
    (response, seen)
}

fn grpc_status(response: &http::Response<String>) -> Option<&str> {
    response
        .headers()
        .get("grpc-status")
        .map(|value| value.to_str().unwrap())
}

#[tokio::test]
async fn a_request_without_a_token_is_answered_unauthenticated_without_reaching_the_service() {
    let (response, seen) = send(
        "/director.companies.v1.CompaniesService/ListCompanies",
        None,
    )
    .await;
    assert_eq!(grpc_status(&response), Some("16"));
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/grpc"
    );
    assert!(response.body().is_empty());
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_request_with_a_bad_or_foreign_token_is_unauthenticated() {
    let foreign = InternalTokens::new(
        &Secret::from("some-other-cluster-secret-32-bytes-long"),
        Duration::from_secs(60),
    )
    .mint(&Caller::new("u", "t", Role::Admin))
    .unwrap();
    for authorization in [
        "Bearer not-a-jwt".to_owned(),
        format!("Bearer {foreign}"),
        format!("Basic {foreign}"),
    ] {
        let (response, seen) = send("/svc.Service/Method", Some(&authorization)).await;
        assert_eq!(grpc_status(&response), Some("16"), "{authorization}");
        assert!(seen.lock().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_request_with_a_valid_token_reaches_the_service_with_its_caller() {
    let who = Caller::new("user-9", "tenant-3", Role::Driver);
    let token = tokens().mint(&who).unwrap();
    let (response, seen) = send("/svc.Service/Method", Some(&format!("Bearer {token}"))).await;
    assert_eq!(grpc_status(&response), None);
    assert_eq!(response.body(), "from the service");
    assert_eq!(*seen.lock().unwrap(), vec![Some(who)]);
}

#[tokio::test]
async fn health_and_reflection_need_no_token() {
    for path in [
        "/grpc.health.v1.Health/Check",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ] {
        let (response, seen) = send(path, None).await;
        assert_eq!(response.body(), "from the service", "{path}");
        assert_eq!(*seen.lock().unwrap(), vec![None]);
    }
    // Only the exact prefixes are exempt.
    let (response, _) = send("/grpc.healthy.Fake/Check", None).await;
    assert_eq!(grpc_status(&response), Some("16"));
}
