//! `server::serve` end to end: health follows the database, auth guards services, reflection
//! lists them, and shutdown drains within its deadline.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::{TestDb, dead_database_config};
use director_platform::config::Secret;
use director_platform::identity::{Caller, InternalTokens, Role};
use director_platform::server::{ServeOptions, serve};
use director_store::db::{connect_lazy, health_check};
use prost::Message as _;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SERVICE: &str = "test.Whoami";
const SECRET: &str = "server-test-secret-with-at-least-32-bytes";

/// A one-method gRPC service answering `tenant/user/role` of its caller.
#[derive(Clone)]
struct Whoami;

impl tonic::server::NamedService for Whoami {
    const NAME: &'static str = SERVICE;
}

struct WhoamiCall;

impl tonic::server::UnaryService<()> for WhoamiCall {
    type Response = String;
    type Future = Ready<Result<tonic::Response<String>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<()>) -> Self::Future {
        ready(director_platform::identity::caller(&request).map(|caller| {
            tonic::Response::new(format!(
                "{}/{}/{}",
                caller.tenant_id, caller.user_id, caller.role
            ))
        }))
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Whoami {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(tonic_prost::ProstCodec::<String, ()>::default());
            Ok(grpc.unary(WhoamiCall, request).await)
        })
    }
}

/// An encoded descriptor set declaring `test.Whoami`, which the test server runs, and
/// `test.Elsewhere`, which it does not (reflection only needs the shape).
fn descriptor_set() -> &'static [u8] {
    use prost_types::{
        DescriptorProto, FileDescriptorProto, FileDescriptorSet, MethodDescriptorProto,
        ServiceDescriptorProto,
    };
    let file = FileDescriptorProto {
        name: Some("test/whoami.proto".to_owned()),
        package: Some("test".to_owned()),
        message_type: vec![DescriptorProto {
            name: Some("Nothing".to_owned()),
            ..Default::default()
        }],
        service: ["Whoami", "Elsewhere"]
            .map(|name| ServiceDescriptorProto {
                name: Some(name.to_owned()),
                method: vec![MethodDescriptorProto {
                    name: Some("Call".to_owned()),
                    input_type: Some(".test.Nothing".to_owned()),
                    output_type: Some(".test.Nothing".to_owned()),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .to_vec(),
        syntax: Some("proto3".to_owned()),
        ..Default::default()
    };
    let set = FileDescriptorSet { file: vec![file] };
    Box::leak(set.encode_to_vec().into_boxed_slice())
}

struct Running {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    tokens: Arc<InternalTokens>,
}

async fn start(pool: PgPool, health_interval: Duration, drain_deadline: Duration) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let tokens = Arc::new(InternalTokens::new(
        &Secret::from(SECRET),
        Duration::from_secs(60),
    ));
    let opts = ServeOptions {
        name: "whoami",
        service_names: vec![SERVICE],
        descriptor_set: descriptor_set(),
        health: health_check(pool),
        tokens: Arc::clone(&tokens),
        shutdown: shutdown.clone(),
        drain_deadline,
        health_interval,
    };
    let routes = tonic::service::Routes::new(Whoami);
    let task = tokio::spawn(serve(listener, routes, opts));
    Running {
        addr,
        shutdown,
        task,
        tokens,
    }
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn health(client: &mut HealthClient<Channel>, service: &str) -> Result<i32, tonic::Status> {
    client
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .map(|response| response.into_inner().status)
}

async fn whoami(channel: Channel, token: Option<&str>) -> Result<String, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    grpc.unary(
        request,
        http::uri::PathAndQuery::from_static("/test.Whoami/Call"),
        tonic_prost::ProstCodec::<(), String>::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn health_is_not_serving_while_the_database_is_down() {
    let pool = connect_lazy(&dead_database_config("200")).unwrap();
    let running = start(pool, Duration::from_millis(100), Duration::from_secs(1)).await;
    let mut client = HealthClient::new(channel(running.addr).await);

    // Several intervals later it is still down.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        health(&mut client, "").await.unwrap(),
        ServingStatus::NotServing as i32
    );
    assert_eq!(
        health(&mut client, SERVICE).await.unwrap(),
        ServingStatus::NotServing as i32
    );
    assert_eq!(
        health(&mut client, "no.Such").await.unwrap_err().code(),
        tonic::Code::NotFound
    );

    running.shutdown.cancel();
    running.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn health_turns_serving_once_the_database_answers_and_shutdown_stops_within_the_deadline() {
    let db = TestDb::create().await;
    let pool = connect_lazy(&db.config()).unwrap();
    let running = start(
        pool.clone(),
        Duration::from_millis(200),
        Duration::from_millis(500),
    )
    .await;
    let mut client = HealthClient::new(channel(running.addr).await);

    let started = Instant::now();
    loop {
        let status = health(&mut client, "").await.unwrap();
        if status == ServingStatus::Serving as i32 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "still {status} after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        health(&mut client, SERVICE).await.unwrap(),
        ServingStatus::Serving as i32
    );

    // A watch stream never ends by itself, so draining can only stop at the deadline.
    let mut watch = client
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        watch.message().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );

    let stopping = Instant::now();
    running.shutdown.cancel();
    let update = tokio::time::timeout(Duration::from_secs(2), watch.message())
        .await
        .expect("health must change when shutdown begins")
        .unwrap()
        .unwrap();
    assert_eq!(update.status, ServingStatus::NotServing as i32);

    tokio::time::timeout(Duration::from_secs(3), running.task)
        .await
        .expect("serve must return within the drain deadline")
        .unwrap()
        .unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(3));

    pool.close().await;
    db.drop().await;
}

#[tokio::test]
async fn services_need_an_internal_token_and_see_its_caller() {
    let pool = connect_lazy(&dead_database_config("200")).unwrap();
    let running = start(pool, Duration::from_secs(1), Duration::from_secs(1)).await;
    let channel = channel(running.addr).await;

    let denied = whoami(channel.clone(), None).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);

    let denied = whoami(channel.clone(), Some("garbage")).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::Unauthenticated);

    let token = running
        .tokens
        .mint(&Caller::new("user-5", "tenant-9", Role::Dispatcher))
        .unwrap();
    assert_eq!(
        whoami(channel.clone(), Some(&token)).await.unwrap(),
        "tenant-9/user-5/dispatcher"
    );

    // Health needs no token.
    let mut client = HealthClient::new(channel);
    assert!(health(&mut client, "").await.is_ok());

    running.shutdown.cancel();
    running.task.await.unwrap().unwrap();
}

#[tokio::test]
async fn reflection_lists_only_the_services_this_server_runs() {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let pool = connect_lazy(&dead_database_config("200")).unwrap();
    let running = start(pool, Duration::from_secs(1), Duration::from_secs(1)).await;
    let mut client = ServerReflectionClient::new(channel(running.addr).await);

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(futures::stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection answer {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "grpc.health.v1.Health".to_owned(),
            "grpc.reflection.v1.ServerReflection".to_owned(),
            "test.Whoami".to_owned(),
        ]
    );

    drop(responses);
    running.shutdown.cancel();
    running.task.await.unwrap().unwrap();
}
