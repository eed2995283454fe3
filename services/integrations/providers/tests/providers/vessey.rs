//! The Vessey client against the fake Vessey over real HTTP: answers, paging, retries,
//! Retry-After, refusals, redirects, size limits and timeouts.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use common::{fast_retry, listener, vessey, vessey_client, vessey_fake};
use director_fakes::{
    DEFAULT_VESSEY_API_KEY, FakeVessey, GeneratedSpec, RetryAfter, StatusCode, VesseyData,
};
use director_providers::{
    Provider, ProviderError, ProvidersConfig, RetryPolicy, Timeouts, VesseyClient, VesseyConfig,
};

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 23).unwrap()
}

#[tokio::test]
async fn a_driver_is_fetched_with_the_bearer_key() {
    let (server, client) = vessey().await;
    let driver = client.driver("3").await.unwrap();
    assert_eq!(driver.name, "Carla Jones");
    assert_eq!(driver.phone.as_deref(), Some("+44 7700 900123"));
    assert!(driver.active);
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/drivers/3");
    assert_eq!(
        received[0].header("authorization"),
        Some(format!("Bearer {DEFAULT_VESSEY_API_KEY}").as_str())
    );
}

#[tokio::test]
async fn a_driver_id_is_percent_encoded_into_one_path_segment() {
    let (server, client) = vessey().await;
    let error = client.driver("../collections").await.unwrap_err();
    assert!(matches!(error, ProviderError::NotFound(_)), "{error:?}");
    assert_eq!(server.received()[0].path, "/drivers/..%2Fcollections");
}

#[tokio::test]
async fn an_unknown_driver_is_not_found_and_not_retried() {
    let (server, client) = vessey().await;
    let error = client.driver("404-nobody").await.unwrap_err();
    assert_eq!(
        error,
        ProviderError::NotFound("Vessey has no driver \"404-nobody\"".to_owned())
    );
    assert!(!error.is_retryable());
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn drivers_and_collections_are_paged_until_next_page_is_none() {
    let (server, client) = vessey().await;
    let drivers = client.drivers_page(1).await.unwrap();
    assert_eq!(drivers.items.len(), 5);
    assert_eq!(drivers.next_page, None);
    assert_eq!(drivers.items.iter().filter(|d| !d.active).count(), 1);

    let mut collections = Vec::new();
    let mut page = Some(1);
    while let Some(number) = page {
        let next = client.collections_page(day(), number).await.unwrap();
        collections.extend(next.items);
        page = next.next_page;
    }
    assert_eq!(collections.len(), 20);
    assert!(collections.iter().all(|c| c.scheduled_for == day()));
    assert!(collections.iter().any(|c| c.driver_id.is_none()));
    assert!(collections.iter().any(|c| c.volume_liters.is_none()));
    let with_window = collections
        .iter()
        .find(|c| c.window_start.is_some())
        .unwrap();
    assert!(with_window.window_end > with_window.window_start);

    let asked: Vec<_> = server
        .received()
        .iter()
        .filter(|r| r.path == "/collections")
        .map(|r| {
            (
                r.query_param("date").unwrap().to_owned(),
                r.query_param("page").unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        asked,
        [
            ("2026-11-23", "1"),
            ("2026-11-23", "2"),
            ("2026-11-23", "3")
        ]
        .map(|(d, p)| (d.to_owned(), p.to_owned()))
    );
}

#[tokio::test]
async fn a_burst_of_server_errors_is_ridden_out() {
    let (server, client) = vessey().await;
    server.fail_next(3, StatusCode::SERVICE_UNAVAILABLE);
    let driver = client.driver("1").await.unwrap();
    assert_eq!(driver.id, "1");
    assert_eq!(server.received().len(), 4);
}

#[tokio::test]
async fn exhausted_retries_are_unavailable_naming_the_call_and_the_last_failure() {
    let (server, client) = vessey().await;
    server.fail_next(10, StatusCode::SERVICE_UNAVAILABLE);
    let error = client.driver("7").await.unwrap_err();
    assert!(error.is_retryable());
    assert_eq!(server.received().len(), 5, "max_attempts is 5");
    let ProviderError::Unavailable(message) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(
        message
            .starts_with("Vessey GET /drivers/7 failed after 5 attempts: 503 Service Unavailable"),
        "{message}"
    );
    assert_eq!(tonic::Status::from(error).code(), tonic::Code::Unavailable);
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured() {
    let (server, client) = vessey().await;
    server.rate_limit_next(1, RetryAfter::Seconds(1));
    let started = Instant::now();
    client.driver("1").await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(950), "waited {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let (server, client) = vessey().await;
    // Whole-second dates: "in 2 s" is between 1 and 2 s from now.
    server.rate_limit_next(1, RetryAfter::DateIn(Duration::from_secs(2)));
    let started = Instant::now();
    client.driver("1").await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "waited {waited:?}");
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn retry_after_is_capped() {
    let fake = FakeVessey::sample();
    let server = vessey_fake(fake.clone()).await;
    let config = VesseyConfig::new(server.url(), fake.api_key()).unwrap();
    let retry = RetryPolicy {
        retry_after_cap: Duration::from_millis(100),
        ..fast_retry()
    };
    let client = VesseyClient::new(config, retry).unwrap();
    server.rate_limit_next(1, RetryAfter::Seconds(3_600));
    let started = Instant::now();
    client.driver("1").await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_bad_request_is_rejected_without_a_retry() {
    let (server, client) = vessey().await;
    let error = client.driver("bad-request").await.unwrap_err();
    let ProviderError::Rejected { status, message } = &error else {
        panic!("expected Rejected, got {error:?}");
    };
    assert_eq!(*status, 400);
    assert!(message.contains("refused on purpose"), "{message}");
    assert_eq!(server.received().len(), 1, "a 400 is never retried");
    assert!(!error.is_retryable());
    assert_eq!(
        tonic::Status::from(error).code(),
        tonic::Code::FailedPrecondition
    );
}

#[tokio::test]
async fn a_wrong_api_key_is_rejected_and_never_appears_in_the_error() {
    let fake = FakeVessey::sample();
    let server = vessey_fake(fake).await;
    let config = VesseyConfig::new(server.url(), "sk-live-wrong-key-0123").unwrap();
    let client = VesseyClient::new(config, fast_retry()).unwrap();
    let error = client.drivers_page(1).await.unwrap_err();
    assert!(
        matches!(error, ProviderError::Rejected { status: 401, .. }),
        "{error:?}"
    );
    assert_eq!(server.received().len(), 1);
    assert!(!error.to_string().contains("sk-live-wrong-key-0123"));
    assert!(!format!("{error:?}").contains("sk-live-wrong-key-0123"));
    assert!(!format!("{client:?}").contains("sk-live-wrong-key-0123"));
}

#[tokio::test]
async fn the_api_key_never_appears_in_a_transport_error() {
    // Nothing listens on the port once the listener is dropped.
    let addr = listener().await.local_addr().unwrap();
    let config = VesseyConfig::new(&format!("http://{addr}"), "sk-live-secret-9876").unwrap();
    let client = VesseyClient::new(config, fast_retry()).unwrap();
    let error = client.driver("1").await.unwrap_err();
    let ProviderError::Unavailable(message) = &error else {
        panic!("expected Unavailable, got {error:?}");
    };
    assert!(
        message.starts_with("Vessey GET /drivers/1 failed after 5 attempts"),
        "{message}"
    );
    assert!(!message.contains("sk-live-secret-9876"));
}

#[tokio::test]
async fn a_redirect_to_another_host_is_refused_and_the_other_host_sees_nothing() {
    let (server, client) = vessey().await;
    let (elsewhere, _) = vessey().await;
    server
        .redirect_next(format!("{}/drivers/1", elsewhere.url()).replace("127.0.0.1", "localhost"));
    let error = client.driver("1").await.unwrap_err();
    let ProviderError::Rejected { status, message } = &error else {
        panic!("expected Rejected, got {error:?}");
    };
    assert_eq!(*status, 302);
    assert!(message.contains("refused to follow"), "{message}");
    assert!(
        elsewhere.received().is_empty(),
        "the other host was contacted"
    );
    assert_eq!(
        server.received().len(),
        1,
        "a refused redirect is not retried"
    );
}

#[tokio::test]
async fn a_redirect_to_another_port_on_the_same_host_is_refused_too() {
    let (server, client) = vessey().await;
    let (elsewhere, _) = vessey().await;
    server.redirect_next(format!("{}/drivers/1", elsewhere.url()));
    let error = client.driver("1").await.unwrap_err();
    assert!(matches!(error, ProviderError::Rejected { .. }), "{error:?}");
    assert!(elsewhere.received().is_empty());
}

#[tokio::test]
async fn the_magic_redirect_driver_is_refused() {
    let (_server, client) = vessey().await;
    let error = client.driver("redirect").await.unwrap_err();
    assert!(error.to_string().contains("127.0.0.2"), "{error}");
}

#[tokio::test]
async fn a_same_host_redirect_is_followed_with_the_key() {
    let (server, client) = vessey().await;
    server.redirect_next("/drivers/2");
    let driver = client.driver("1").await.unwrap();
    assert_eq!(driver.id, "2");
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].path, "/drivers/2");
    assert!(received[1].header("authorization").is_some());
}

#[tokio::test]
async fn an_oversized_collections_page_is_refused() {
    // 100,000 collections on one page: well over 8 MiB.
    let spec = GeneratedSpec {
        page_size: 100_000,
        ..GeneratedSpec::default()
    };
    let fake = FakeVessey::sample().with_data(VesseyData::generated(spec));
    let server = vessey_fake(fake.clone()).await;
    let client = vessey_client(&server, &fake);
    let error = client.collections_page(day(), 1).await.unwrap_err();
    let ProviderError::InvalidResponse(message) = &error else {
        panic!("expected InvalidResponse, got {error:?}");
    };
    assert!(message.contains("larger than 8192 KiB"), "{message}");
    assert_eq!(
        server.received().len(),
        1,
        "an oversized answer is not retried"
    );
}

#[tokio::test]
async fn an_oversized_drivers_page_is_refused_at_one_mebibyte() {
    let spec = GeneratedSpec {
        page_size: 20_000,
        drivers: 20_000,
        ..GeneratedSpec::default()
    };
    let fake = FakeVessey::sample().with_data(VesseyData::generated(spec));
    let server = vessey_fake(fake.clone()).await;
    let client = vessey_client(&server, &fake);
    let error = client.drivers_page(1).await.unwrap_err();
    assert!(
        error.to_string().contains("larger than 1024 KiB"),
        "{error}"
    );

    // The same data in pages of 1,000 is fine.
    let spec = GeneratedSpec {
        page_size: 1_000,
        drivers: 20_000,
        ..GeneratedSpec::default()
    };
    let fake = FakeVessey::sample().with_data(VesseyData::generated(spec));
    let server = vessey_fake(fake.clone()).await;
    let page = vessey_client(&server, &fake).drivers_page(1).await.unwrap();
    assert_eq!(page.items.len(), 1_000);
    assert_eq!(page.next_page, Some(2));
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let fake = FakeVessey::sample();
    let server = vessey_fake(fake.clone()).await;
    let mut config = VesseyConfig::new(server.url(), fake.api_key()).unwrap();
    config.timeouts = Timeouts {
        call: Duration::from_millis(200),
        collections_page: Duration::from_millis(200),
    };
    let client = VesseyClient::new(config, fast_retry()).unwrap();
    server.delay_next(1, Duration::from_secs(2));
    let started = Instant::now();
    let page = client.collections_page(day(), 1).await.unwrap();
    assert_eq!(page.items.len(), 8);
    assert_eq!(server.received().len(), 2);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn timeouts_on_every_attempt_are_unavailable() {
    let fake = FakeVessey::sample();
    let server = vessey_fake(fake.clone()).await;
    let mut config = VesseyConfig::new(server.url(), fake.api_key()).unwrap();
    config.timeouts.call = Duration::from_millis(100);
    let retry = RetryPolicy {
        max_attempts: 2,
        ..fast_retry()
    };
    let client = VesseyClient::new(config, retry).unwrap();
    let error = client.driver("slow").await.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Unavailable(
            "Vessey GET /drivers/slow failed after 2 attempts: timed out".to_owned()
        )
    );
}

#[tokio::test]
async fn an_answer_that_is_not_json_is_an_invalid_response() {
    let (server, client) = vessey().await;
    server.garbage_next(1);
    let error = client.driver("1").await.unwrap_err();
    assert!(
        matches!(error, ProviderError::InvalidResponse(_)),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("Vessey GET /drivers/1: unexpected answer")
    );
}

#[tokio::test]
async fn the_magic_flaky_and_rate_limited_drivers_are_ridden_out() {
    let (server, client) = vessey().await;
    assert_eq!(client.driver("flaky").await.unwrap().id, "flaky");
    assert_eq!(server.received().len(), 3);
    assert_eq!(
        client.driver("rate-limited").await.unwrap().id,
        "rate-limited"
    );
}

#[tokio::test]
async fn missing_vessey_configuration_is_not_configured_naming_the_variable() {
    let env = director_platform::config::Env::from_pairs([("VESSEY_API_URL", "http://x.test")]);
    let config = ProvidersConfig::from_env(&env).unwrap();
    let error = config.vessey_client().unwrap_err();
    assert_eq!(
        error,
        ProviderError::NotConfigured {
            integration: Provider::Vessey,
            missing: vec!["VESSEY_API_KEY"]
        }
    );
    let status = tonic::Status::from(error);
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert_eq!(
        status.message(),
        "Vessey API credentials not configured: VESSEY_API_KEY is not set"
    );
}
