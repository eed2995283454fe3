//! Replicas that come and go: a balanced channel takes a replica out of rotation the moment
//! its connection is refused, lost or drained, probes it back, and sends again the calls
//! that never reached it (and, for methods without side effects, those lost with it).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use director_platform::balance::{Balanced, SideEffectFree};
use director_platform::discovery::{BalanceOptions, Resolver, balanced_channel_with};
use prost_types::method_options::IdempotencyLevel;
use prost_types::{
    FileDescriptorProto, MethodDescriptorProto, MethodOptions, ServiceDescriptorProto,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// A serving health replica on `listener`, until `stop` is cancelled (it then drains:
/// GOAWAY, listener closed).
fn serve(listener: TcpListener, stop: CancellationToken) {
    tokio::spawn(async move {
        let (reporter, service) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", ServingStatus::Serving)
            .await;
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop.cancelled_owned())
            .await
            .unwrap();
    });
}

async fn replica() -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    serve(listener, stop.clone());
    (address, stop)
}

/// An address nobody listens on (a crashed replica's).
async fn dead_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A replica that accepts calls and then drops its connection with the call on it.
async fn dropping_replica() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(socket).await else {
                    return;
                };
                if let Some(Ok(_request)) = connection.accept().await {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                // Dropping the connection closes the socket: the call is lost mid-way.
            });
        }
    });
    (address, calls)
}

fn resolving_to(addresses: Vec<SocketAddr>) -> Resolver {
    Arc::new(move |_host: String, _port: u16| {
        let addresses = addresses.clone();
        Box::pin(async move { Ok(addresses) })
    })
}

fn channel(addresses: Vec<SocketAddr>, side_effect_free: SideEffectFree) -> Balanced {
    balanced_channel_with(
        "http://replicas.test:50051".parse().unwrap(),
        BalanceOptions {
            refresh: Duration::from_secs(60),
            side_effect_free,
            ..BalanceOptions::new(Duration::from_secs(1))
        },
        |endpoint| endpoint,
        resolving_to(addresses),
    )
}

/// `grpc.health.v1.Health/Check` marked `NO_SIDE_EFFECTS`, as Director's Get methods are.
fn health_check_is_side_effect_free() -> SideEffectFree {
    SideEffectFree::from_files(&[FileDescriptorProto {
        package: Some("grpc.health.v1".to_owned()),
        service: vec![ServiceDescriptorProto {
            name: Some("Health".to_owned()),
            method: vec![MethodDescriptorProto {
                name: Some("Check".to_owned()),
                options: Some(MethodOptions {
                    idempotency_level: Some(IdempotencyLevel::NoSideEffects as i32),
                    ..MethodOptions::default()
                }),
                ..MethodDescriptorProto::default()
            }],
            ..ServiceDescriptorProto::default()
        }],
        ..FileDescriptorProto::default()
    }])
}

async fn check(channel: &Balanced) -> Result<(), tonic::Status> {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_dead_address_costs_no_call_while_the_name_still_resolves_to_it() {
    let (live, _stop) = replica().await;
    let channel = channel(vec![dead_address().await, live], SideEffectFree::default());
    for call in 0..40 {
        check(&channel)
            .await
            .unwrap_or_else(|status| panic!("call {call} failed: {status:?}"));
    }
    let ejected: Vec<bool> = channel
        .replicas()
        .replicas()
        .iter()
        .map(|replica| replica.is_ejected())
        .collect();
    assert_eq!(ejected.iter().filter(|out| **out).count(), 1, "{ejected:?}");
}

#[tokio::test]
async fn a_draining_replica_leaves_the_rotation_without_failing_a_call() {
    let (first, stop_first) = replica().await;
    let (second, _stop_second) = replica().await;
    let channel = channel(vec![first, second], SideEffectFree::default());
    let failures = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let channel = channel.clone();
            let failures = failures.clone();
            let calls = calls.clone();
            tokio::spawn(async move {
                let until = tokio::time::Instant::now() + Duration::from_millis(1500);
                while tokio::time::Instant::now() < until {
                    calls.fetch_add(1, Ordering::SeqCst);
                    if let Err(status) = check(&channel).await {
                        eprintln!("failed: {status:?}");
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_first.cancel();
    for task in load {
        task.await.unwrap();
    }
    assert!(calls.load(Ordering::SeqCst) > 100);
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "calls failed during the drain"
    );
}

#[tokio::test]
async fn a_replica_that_comes_back_returns_to_the_rotation() {
    let (live, _stop) = replica().await;
    let returning = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = returning.local_addr().unwrap();
    drop(returning);
    let channel = channel(vec![address, live], SideEffectFree::default());
    for _ in 0..4 {
        check(&channel).await.unwrap();
    }
    let out = |channel: &Balanced| {
        channel
            .replicas()
            .replicas()
            .iter()
            .any(|replica| replica.is_ejected())
    };
    assert!(out(&channel), "the refusing replica left the rotation");
    serve(
        TcpListener::bind(address).await.unwrap(),
        CancellationToken::new(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!out(&channel), "probed back within the longest backoff");
    for _ in 0..4 {
        check(&channel).await.unwrap();
    }
}

#[tokio::test]
async fn calls_lost_with_their_replica_are_sent_again_only_without_side_effects() {
    let (live, _stop) = replica().await;

    let (dropping, dropped) = dropping_replica().await;
    let resending = channel(vec![dropping, live], health_check_is_side_effect_free());
    for call in 0..10 {
        check(&resending)
            .await
            .unwrap_or_else(|status| panic!("call {call} failed: {status:?}"));
    }
    assert!(dropped.load(Ordering::SeqCst) >= 1, "a call was lost");

    // The same method not marked NO_SIDE_EFFECTS: a lost call fails, UNAVAILABLE.
    let (dropping, dropped) = dropping_replica().await;
    let not_resending = channel(vec![dropping, live], SideEffectFree::default());
    let mut failed = Vec::new();
    for _ in 0..10 {
        if let Err(status) = check(&not_resending).await {
            failed.push(status.code());
        }
    }
    assert!(dropped.load(Ordering::SeqCst) >= 1);
    assert!(!failed.is_empty(), "the lost call was not sent again");
    assert!(
        failed.iter().all(|code| *code == tonic::Code::Unavailable),
        "{failed:?}"
    );
}
