//! The service starts while its database is down, reports NOT_SERVING, and fails calls fast
//! with UNAVAILABLE instead of hanging.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{admin, spawn_app_on};
use director_proto::companies::ListCompaniesRequest;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn with_its_database_down_the_service_starts_not_serving_and_fails_fast() {
    let app = spawn_app_on("postgres://postgres@127.0.0.1:1/director_companies".into()).await;
    let mut client = app.client().await;

    let mut health = HealthClient::new(
        tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let status = health
        .check(HealthCheckRequest {
            service: "director.companies.v1.CompaniesService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::NotServing as i32);

    let started = Instant::now();
    let error = client
        .list_companies(app.request(&admin("t"), ListCompaniesRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Code::Unavailable);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        !error.message().contains("127.0.0.1"),
        "leaked: {}",
        error.message()
    );
}
