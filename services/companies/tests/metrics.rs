//! The service's Prometheus metrics, scraped over HTTP: every call is measured by service,
//! method and gRPC status code (from the trailers, or the headers of a trailers-only
//! refusal), and the pool reports its connections and its size.
//!
//! Its own test binary: it asserts exact call counts on the process-wide metrics recorder, which
//! the other tests would add to.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use director_platform::identity::{Caller, Role};
use director_platform::testing::{scrape, series_value, spawn_metrics};
use director_proto::companies::{CreateCompanyRequest, ListCompaniesRequest};

const SERVICE: &str = "director.companies.v1.CompaniesService";

fn calls(text: &str, method: &str, code: &str) -> Option<f64> {
    series_value(
        text,
        "rpc_server_call_duration_seconds_count",
        &[
            ("service_name", "companies"),
            ("rpc_service", SERVICE),
            ("rpc_method", method),
            ("rpc_grpc_status_code", code),
        ],
    )
}

#[tokio::test]
async fn calls_are_measured_by_method_and_status_and_the_pool_reports_its_connections() {
    let admin = spawn_metrics().await;
    let app = spawn_app_with(&[("DB_MAX_CONNECTIONS", "7")]).await;
    let caller = Caller::new("user-1", "tenant-metrics", Role::Admin);
    let mut client = app.client().await;
    let request = CreateCompanyRequest {
        name: "Metered Dairy".into(),
        ..Default::default()
    };
    app.create(&mut client, &caller, request).await;
    let missing = app
        .get(&mut client, &caller, &uuid::Uuid::new_v4().to_string())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
    // No token: refused by the auth layer with a trailers-only answer.
    let refused = client
        .list_companies(ListCompaniesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let text = scrape(admin).await;
    assert_eq!(calls(&text, "CreateCompany", "0"), Some(1.0), "{text}");
    assert_eq!(calls(&text, "GetCompany", "5"), Some(1.0), "{text}");
    assert_eq!(calls(&text, "ListCompanies", "16"), Some(1.0), "{text}");
    assert!(
        series_value(
            &text,
            "rpc_server_call_duration_seconds_bucket",
            &[("rpc_method", "CreateCompany"), ("le", "+Inf")],
        )
        .is_some(),
        "a histogram with buckets: {text}"
    );

    // The create ran a tenant transaction; the get one scoped read (the services' login role
    // is policed by row-level security).
    for operation in ["query", "read"] {
        assert!(
            series_value(
                &text,
                "db_client_operation_duration_seconds_count",
                &[("db_operation_name", operation)],
            )
            .is_some_and(|count| count >= 1.0),
            "database operations are timed ({operation}): {text}"
        );
    }

    let pool = |name: &str, labels: &[(&str, &str)]| {
        let mut all = vec![("db_client_connection_pool_name", "companies")];
        all.extend_from_slice(labels);
        series_value(&text, name, &all)
    };
    assert_eq!(pool("db_client_connection_max", &[]), Some(7.0), "{text}");
    let used = pool(
        "db_client_connection_count",
        &[("db_client_connection_state", "used")],
    )
    .unwrap();
    let idle = pool(
        "db_client_connection_count",
        &[("db_client_connection_state", "idle")],
    )
    .unwrap();
    assert!(
        used + idle >= 1.0 && used + idle <= 7.0,
        "the pool has connected: {text}"
    );
}
