//! Client-side balancing: calls spread over every address a name resolves to, and follow
//! the answer as replicas come and go.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use director_platform::balance::Balanced;
use director_platform::discovery::{BalanceOptions, Resolver, balanced_channel_with};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A replica answering health checks with `status`, on its own port.
async fn replica(status: ServingStatus) -> SocketAddr {
    let (reporter, service) = tonic_health::server::health_reporter();
    reporter.set_service_status("", status).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // The reporter must live as long as the server.
        let _reporter = reporter;
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    address
}

/// What 40 calls through the channel answered: (serving, not serving).
async fn answers(channel: Balanced) -> (usize, usize) {
    let mut client = HealthClient::new(channel);
    let mut counts = (0, 0);
    for _ in 0..40 {
        let status = client
            .check(HealthCheckRequest::default())
            .await
            .unwrap()
            .into_inner()
            .status();
        if status == tonic_health::pb::health_check_response::ServingStatus::Serving {
            counts.0 += 1;
        } else {
            counts.1 += 1;
        }
    }
    counts
}

/// Resolving every `refresh`, connections given up after a second.
fn options(refresh: Duration) -> BalanceOptions {
    BalanceOptions {
        refresh,
        ..BalanceOptions::new(Duration::from_secs(1))
    }
}

#[tokio::test]
async fn calls_spread_over_every_resolved_replica_and_follow_the_resolution() {
    let serving = replica(ServingStatus::Serving).await;
    let not_serving = replica(ServingStatus::NotServing).await;
    let resolved = Arc::new(Mutex::new(vec![serving, not_serving]));
    let answer = resolved.clone();
    let resolver: Resolver = Arc::new(move |host: String, port: u16| {
        assert_eq!((host.as_str(), port), ("replicas.test", 50051));
        let addresses = answer.lock().unwrap().clone();
        Box::pin(async move { Ok(addresses) })
    });
    let channel = balanced_channel_with(
        "http://replicas.test:50051".parse().unwrap(),
        options(Duration::from_millis(100)),
        |endpoint| endpoint,
        resolver,
    );

    let (to_serving, to_not_serving) = answers(channel.clone()).await;
    assert!(
        to_serving > 0 && to_not_serving > 0,
        "both replicas got calls: {to_serving} and {to_not_serving}"
    );

    // One replica leaves: after the next resolution every call goes to the other.
    *resolved.lock().unwrap() = vec![serving];
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(answers(channel.clone()).await, (40, 0));

    // A new one arrives and gets calls again.
    *resolved.lock().unwrap() = vec![serving, not_serving];
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        answers(channel).await.1 > 0,
        "the returning replica got calls"
    );
}

#[tokio::test]
async fn a_name_that_does_not_resolve_fails_calls_fast() {
    let resolver: Resolver = Arc::new(|_host: String, _port: u16| {
        Box::pin(async { Err(std::io::Error::other("no such host")) })
    });
    let channel = balanced_channel_with(
        "http://127.0.0.1:1".parse().unwrap(),
        options(Duration::from_secs(60)),
        |endpoint| endpoint,
        resolver,
    );
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(5),
        HealthClient::new(channel).check(HealthCheckRequest::default()),
    )
    .await
    .expect("the call waited for an address instead of failing");
    assert_eq!(result.unwrap_err().code(), tonic::Code::Unavailable);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_ipv6_address_beside_ipv4_ones_gets_no_calls() {
    // `localhost` resolves to ::1 as well, while Director listens on IPv4 by default.
    let serving = replica(ServingStatus::Serving).await;
    let ipv6 = SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], serving.port()));
    let resolver: Resolver =
        Arc::new(move |_host: String, _port: u16| Box::pin(async move { Ok(vec![ipv6, serving]) }));
    let channel = balanced_channel_with(
        "http://localhost:50051".parse().unwrap(),
        options(Duration::from_secs(60)),
        |endpoint| endpoint,
        resolver,
    );
    assert_eq!(
        answers(channel).await,
        (40, 0),
        "every call reached the IPv4 replica"
    );
}
