//! The echo upstream: the test-only echo service (`tests/proto`), compiled when the tests run
//! and served generically from its descriptors, with health; and its messages.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use director_platform::config::Secret;
use director_platform::identity::InternalTokens;
use futures::future::BoxFuture;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, ReflectMessage as _, Value,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

use super::{DynamicCodec, ECHO_SERVICE, INTERNAL_SECRET};

/// Compiles the echo proto now. The encoded set (not `prost_types`, which would drop the
/// `google.api.http` options) is what the pools are decoded from.
fn compile_echo(include_imports: bool) -> Vec<u8> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut compiler =
        protox::Compiler::new([manifest.join("tests/proto"), manifest.join("../proto")]).unwrap();
    compiler
        .include_imports(include_imports)
        .include_source_info(true);
    compiler
        .open_files(["director/testing/v1/echo.proto"])
        .unwrap();
    compiler.encode_file_descriptor_set()
}

/// The echo proto with its imports (a pool of its own).
pub fn echo_pool() -> DescriptorPool {
    DescriptorPool::decode(compile_echo(true).as_slice()).unwrap()
}

/// Director's own contracts plus the echo proto: what a real deployment serves, and more.
pub fn director_pool_with_echo() -> DescriptorPool {
    let mut pool = DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).unwrap();
    pool.decode_file_descriptor_set(compile_echo(false).as_slice())
        .unwrap();
    pool
}

/// The test upstream: answers every method of the echo service from its descriptor.
#[derive(Clone)]
pub struct EchoServer {
    pool: DescriptorPool,
    tokens: Arc<InternalTokens>,
}

impl NamedService for EchoServer {
    const NAME: &'static str = ECHO_SERVICE;
}

impl tower::Service<http::Request<tonic::body::Body>> for EchoServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let name = request.uri().path().rsplit('/').next().unwrap_or_default();
            let service = this.pool.get_service_by_name(ECHO_SERVICE).unwrap();
            let Some(method) = service.methods().find(|method| method.name() == name) else {
                return Ok(Status::unimplemented("no such method").into_http());
            };
            let codec = DynamicCodec::new(method.input());
            let mut grpc = tonic::server::Grpc::new(codec);
            if method.name() == "WatchEchoes" {
                return Ok(grpc.server_streaming(WatchHandler, request).await);
            }
            let handler = EchoHandler {
                method: method.clone(),
                tokens: this.tokens.clone(),
            };
            Ok(if method.is_server_streaming() {
                grpc.server_streaming(handler, request).await
            } else {
                grpc.unary(handler, request).await
            })
        })
    }
}

#[derive(Clone)]
struct EchoHandler {
    method: MethodDescriptor,
    tokens: Arc<InternalTokens>,
}

impl EchoHandler {
    /// The echo for `request`, numbered `sequence`, after checking the internal token.
    fn echo(
        &self,
        request: &Request<DynamicMessage>,
        sequence: i32,
    ) -> Result<DynamicMessage, Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("no internal token"))?;
        let caller = self
            .tokens
            .verify(token)
            .map_err(|error| Status::unauthenticated(error.to_string()))?;
        let request_id = request
            .metadata()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let grpc_timeout = request
            .metadata()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let input = request.get_ref();
        // A name `internal:<message>` makes the service fail as a broken one would.
        if let Some(name) = input.get_field_by_name("name")
            && let Some(message) = name
                .as_str()
                .and_then(|name| name.strip_prefix("internal:"))
        {
            return Err(Status::internal(message.to_owned()));
        }
        // A name `invalid:<field>` is refused as validation refuses a bad field: with a
        // google.rpc.BadRequest naming it.
        if let Some(name) = input.get_field_by_name("name")
            && let Some(field) = name.as_str().and_then(|name| name.strip_prefix("invalid:"))
        {
            let mut details = tonic_types::ErrorDetails::new();
            details.add_bad_request_violation(field, "is invalid");
            return Err(<Status as tonic_types::StatusExt>::with_error_details(
                tonic::Code::InvalidArgument,
                format!("Invalid {field}"),
                details,
            ));
        }
        let mut output = DynamicMessage::new(self.method.output());
        for field in ["name", "count", "mood"] {
            output.set_field_by_name(field, input.get_field_by_name(field).unwrap().into_owned());
        }
        output.set_field_by_name("sequence", Value::I32(sequence));
        output.set_field_by_name("user_id", Value::String(caller.user_id.into()));
        output.set_field_by_name("tenant_id", Value::String(caller.tenant_id.into()));
        output.set_field_by_name("role", Value::String(caller.role.as_str().to_owned()));
        output.set_field_by_name("request_id", Value::String(request_id));
        output.set_field_by_name("grpc_timeout", Value::String(grpc_timeout));
        Ok(output)
    }
}

impl tonic::server::UnaryService<DynamicMessage> for EchoHandler {
    type Response = DynamicMessage;
    type Future = BoxFuture<'static, Result<Response<DynamicMessage>, Status>>;

    fn call(&mut self, request: Request<DynamicMessage>) -> Self::Future {
        let result = self.echo(&request, 0).map(Response::new);
        // A name `slow:<ms>` answers after that many milliseconds.
        let delay = request
            .get_ref()
            .get_field_by_name("name")
            .and_then(|name| {
                name.as_str()
                    .and_then(|name| name.strip_prefix("slow:"))
                    .and_then(|millis| millis.parse().ok())
            })
            .map(Duration::from_millis);
        Box::pin(async move {
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            result
        })
    }
}

impl tonic::server::ServerStreamingService<DynamicMessage> for EchoHandler {
    type Response = DynamicMessage;
    type ResponseStream = futures::stream::BoxStream<'static, Result<DynamicMessage, Status>>;
    type Future = BoxFuture<'static, Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<DynamicMessage>) -> Self::Future {
        let count = request
            .get_ref()
            .get_field_by_name("count")
            .and_then(|value| value.as_i64())
            .unwrap_or(0)
            .clamp(0, 100);
        let echoes: Result<Vec<_>, Status> = (1..=count)
            .map(|sequence| self.echo(&request, i32::try_from(sequence).unwrap()))
            .collect();
        // A name `fail-after:<message>` ends the stream with ABORTED after its echoes.
        let failure = request
            .get_ref()
            .get_field_by_name("name")
            .and_then(|name| {
                name.as_str()
                    .and_then(|name| name.strip_prefix("fail-after:"))
                    .map(|message| Status::aborted(message.to_owned()))
            });
        Box::pin(async move {
            let echoes = echoes?;
            let stream: Self::ResponseStream = Box::pin(futures::stream::iter(
                echoes.into_iter().map(Ok).chain(failure.map(Err)),
            ));
            Ok(Response::new(stream))
        })
    }
}

/// Serves `WatchEchoes`: `count` events numbered after `after_event_id`, each echoing the
/// `after_event_id` it received, then (with `hold`) nothing until the caller goes away.
#[derive(Clone)]
struct WatchHandler;

impl tonic::server::ServerStreamingService<DynamicMessage> for WatchHandler {
    type Response = DynamicMessage;
    type ResponseStream = futures::stream::BoxStream<'static, Result<DynamicMessage, Status>>;
    type Future = BoxFuture<'static, Result<Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: Request<DynamicMessage>) -> Self::Future {
        let input = request.into_inner();
        let field = |name: &str| input.get_field_by_name(name).unwrap().into_owned();
        let after = field("after_event_id").as_str().unwrap().to_owned();
        let count = field("count").as_i32().unwrap().clamp(0, 100);
        let hold = field("hold").as_bool().unwrap();
        let output = input
            .descriptor()
            .parent_pool()
            .get_message_by_name("director.testing.v1.WatchEchoesResponse")
            .unwrap();
        let first = if after.is_empty() {
            0
        } else {
            after.parse::<i64>().unwrap_or(0)
        };
        let events: Vec<Result<DynamicMessage, Status>> = (1..=count)
            .map(|sequence| {
                let mut event = DynamicMessage::new(output.clone());
                let id = first + i64::from(sequence);
                event.set_field_by_name("event_id", Value::String(id.to_string()));
                event.set_field_by_name("after_event_id", Value::String(after.clone()));
                event.set_field_by_name("sequence", Value::I32(sequence));
                Ok(event)
            })
            .collect();
        Box::pin(async move {
            let events = futures::stream::iter(events);
            let stream: Self::ResponseStream = if hold {
                Box::pin(futures::StreamExt::chain(
                    events,
                    futures::stream::pending(),
                ))
            } else {
                Box::pin(events)
            };
            Ok(Response::new(stream))
        })
    }
}

/// A running echo upstream with a grpc.health.v1 service (SERVING).
pub struct EchoUpstream {
    pub uri: http::Uri,
    pub health: tonic_health::server::HealthReporter,
    /// TCP connections the upstream has accepted so far.
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    shutdown: CancellationToken,
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Serves the echo service and health on 127.0.0.1:0 (h2c).
pub async fn spawn_echo_upstream() -> EchoUpstream {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (health, health_service) = tonic_health::server::health_reporter();
    let echo = EchoServer {
        pool: echo_pool(),
        tokens: Arc::new(InternalTokens::new(
            &Secret::new(INTERNAL_SECRET.to_owned()),
            Duration::from_secs(60),
        )),
    };
    let routes = tonic::service::Routes::new(echo).add_service(health_service);
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = connections.clone();
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        move |stream| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            stream
        },
    );
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, token.cancelled_owned())
            .await
            .unwrap();
    });
    EchoUpstream {
        uri: format!("http://{addr}").parse().unwrap(),
        health,
        connections,
        shutdown,
    }
}

/// An `EchoRequest` of `pool`.
pub fn echo_request(pool: &DescriptorPool, name: &str, count: i64, mood: i32) -> DynamicMessage {
    let mut request = DynamicMessage::new(
        pool.get_message_by_name("director.testing.v1.EchoRequest")
            .unwrap(),
    );
    request.set_field_by_name("name", Value::String(name.to_owned()));
    request.set_field_by_name("count", Value::I64(count));
    request.set_field_by_name("mood", Value::EnumNumber(mood));
    request
}

/// The `EchoResponse` descriptor of `pool`.
pub fn echo_response_descriptor(pool: &DescriptorPool) -> MessageDescriptor {
    pool.get_message_by_name("director.testing.v1.EchoResponse")
        .unwrap()
}

/// A string field of a dynamic message.
pub fn text(message: &DynamicMessage, field: &str) -> String {
    message
        .get_field_by_name(field)
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}
