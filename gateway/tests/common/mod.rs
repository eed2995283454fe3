//! Shared test harness: a gateway on 127.0.0.1:0, the test-only echo service (compiled from
//! `tests/proto` when the tests run and served generically from its descriptors), a fake
//! JWKS server, token minting and gRPC-Web framing.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{Buf, BufMut, Bytes};
use director_gateway::{Gateway, GatewayConfig};
use director_platform::config::{Env, Secret};
use director_platform::identity::user_token::{UserTokenClaims, mint_hs256};
use director_platform::identity::{InternalTokens, Role};
use futures::future::BoxFuture;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, ReflectMessage as _, Value,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

/// The Supabase HS256 secret every test gateway accepts.
pub const JWT_SECRET: &str = "test-supabase-jwt-secret-0123456789abcdef";
/// The cluster secret of the internal tokens.
pub const INTERNAL_SECRET: &str = "test-internal-token-secret-0123456789abcdef";
/// The test-only echo service and its package.
pub const ECHO_SERVICE: &str = "director.testing.v1.EchoService";
pub const ECHO_PACKAGE: &str = "director.testing.v1";
/// The echo service's unary and server-streaming methods, as gRPC paths.
pub const ECHO_PATH: &str = "/director.testing.v1.EchoService/Echo";
pub const STREAM_PATH: &str = "/director.testing.v1.EchoService/EchoStream";
/// The echo service's resumable stream, over REST (Server-Sent Events).
pub const WATCH_ROUTE: &str = "/api/testing/watch";

/// An environment for a test gateway: HS256 secret, internal token secret, dev mode, plus
/// `overrides` (later entries win).
pub fn env(overrides: &[(&str, &str)]) -> Env {
    let mut pairs: HashMap<String, String> = [
        ("ENVIRONMENT", "dev"),
        ("SUPABASE_JWT_SECRET", JWT_SECRET),
        ("INTERNAL_TOKEN_SECRET", INTERNAL_SECRET),
        ("RATE_LIMIT_PER_SECOND", "1000"),
        ("RATE_LIMIT_BURST", "1000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (name, value) in overrides {
        pairs.insert((*name).to_owned(), (*value).to_owned());
    }
    Env::from_pairs(pairs)
}

/// A gateway configuration from [`env`].
pub fn config(overrides: &[(&str, &str)]) -> GatewayConfig {
    GatewayConfig::from_env(&env(overrides)).unwrap()
}

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

/// An address nothing listens on.
pub async fn unreachable_uri() -> http::Uri {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}").parse().unwrap()
}

/// A running gateway; stopped when dropped.
pub struct TestGateway {
    pub addr: SocketAddr,
    pub url: String,
    shutdown: CancellationToken,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl TestGateway {
    /// `url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// Cancels the gateway's shutdown token and waits for `Gateway::serve` to return (it
    /// returns `Ok` after draining, or after its drain deadline); how long that took.
    pub async fn shut_down(mut self) -> Duration {
        let started = std::time::Instant::now();
        self.shutdown.cancel();
        if let Some(served) = self.served.take() {
            served.await.unwrap();
        }
        started.elapsed()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Builds and serves a gateway on 127.0.0.1:0.
pub async fn spawn_gateway(
    config: GatewayConfig,
    pool: DescriptorPool,
    upstreams: Vec<(String, http::Uri)>,
) -> TestGateway {
    let gateway = Gateway::build(config, pool, upstreams).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let served = tokio::spawn(async move { gateway.serve(listener, token).await.unwrap() });
    TestGateway {
        addr,
        url: format!("http://{addr}"),
        shutdown,
        served: Some(served),
    }
}

/// A gateway in front of a fresh echo upstream, with the echo pool alone.
pub async fn spawn_echo_stack(overrides: &[(&str, &str)]) -> (TestGateway, EchoUpstream) {
    let upstream = spawn_echo_upstream().await;
    let gateway = spawn_gateway(
        config(overrides),
        echo_pool(),
        vec![(ECHO_PACKAGE.to_owned(), upstream.uri.clone())],
    )
    .await;
    (gateway, upstream)
}

/// An HS256 Supabase-shaped token for `sub` (own tenant, admin).
pub fn token(sub: &str) -> String {
    mint_hs256(JWT_SECRET, &UserTokenClaims::new(sub)).unwrap()
}

/// An HS256 token for `sub` in `tenant` with `role`.
pub fn token_for(sub: &str, tenant: &str, role: Role) -> String {
    let mut claims = UserTokenClaims::new(sub);
    claims.tenant_id = Some(tenant.to_owned());
    claims.role = Some(role);
    mint_hs256(JWT_SECRET, &claims).unwrap()
}

/// A native gRPC (HTTP/2) channel to `gateway`.
pub async fn grpc_channel(gateway: &TestGateway) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(gateway.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A native gRPC request for `message` with `authorization` metadata.
pub fn authorized(message: DynamicMessage, authorization: &str) -> Request<DynamicMessage> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", authorization.parse().unwrap());
    request
}

/// A unary call of `path` (an echo-service method, or one the gateway does not know) with the
/// answer decoded as an `EchoResponse` of `pool`; waits for `client` to be ready first.
pub async fn echo_unary(
    client: &mut tonic::client::Grpc<tonic::transport::Channel>,
    pool: &DescriptorPool,
    path: &'static str,
    request: Request<DynamicMessage>,
) -> Result<DynamicMessage, Status> {
    client.ready().await.unwrap();
    client
        .unary(
            request,
            http::uri::PathAndQuery::from_static(path),
            DynamicCodec::new(echo_response_descriptor(pool)),
        )
        .await
        .map(Response::into_inner)
}

/// A plain HTTP/1.1 client.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// The echo upstream, served generically from descriptors with a DynamicMessage codec.
// ---------------------------------------------------------------------------------------

/// A protobuf codec over `DynamicMessage`: encodes any message, decodes as `decode`.
#[derive(Clone)]
pub struct DynamicCodec {
    decode: MessageDescriptor,
}

impl DynamicCodec {
    pub fn new(decode: MessageDescriptor) -> Self {
        Self { decode }
    }
}

pub struct DynamicEncoder;
pub struct DynamicDecoder(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.decode.clone())
    }
}

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst)
            .map_err(|error| Status::internal(error.to_string()))
    }
}

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let bytes = src.copy_to_bytes(src.remaining());
        DynamicMessage::decode(self.0.clone(), bytes)
            .map(Some)
            .map_err(|error| Status::invalid_argument(error.to_string()))
    }
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

// ---------------------------------------------------------------------------------------
// gRPC-Web framing (what a browser's grpc-web client sends and reads).
// ---------------------------------------------------------------------------------------

/// One length-prefixed data frame.
pub fn grpc_web_frame(message: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(5 + message.len());
    frame.put_u8(0);
    frame.put_u32(u32::try_from(message.len()).unwrap());
    frame.extend_from_slice(message);
    frame
}

/// A gRPC-Web response body split into its data messages and its trailers.
pub fn parse_grpc_web(mut body: &[u8]) -> (Vec<Bytes>, HashMap<String, String>) {
    let mut messages = Vec::new();
    let mut trailers = HashMap::new();
    while body.len() >= 5 {
        let flag = body.get_u8();
        let length = body.get_u32() as usize;
        let payload = &body[..length];
        if flag & 0x80 == 0 {
            messages.push(Bytes::copy_from_slice(payload));
        } else {
            for line in String::from_utf8_lossy(payload).split("\r\n") {
                if let Some((name, value)) = line.split_once(':') {
                    trailers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                }
            }
        }
        body = &body[length..];
    }
    assert!(body.is_empty(), "trailing bytes in a grpc-web body");
    (messages, trailers)
}

/// Decodes a grpc-web-text body: base64 chunks, each padded, concatenated. Decoding quantum
/// by quantum (4 characters) handles the padding in the middle.
pub fn decode_grpc_web_text(body: &[u8]) -> Vec<u8> {
    let clean: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::new();
    for quantum in clean.chunks(4) {
        out.extend(STANDARD.decode(quantum).unwrap());
    }
    out
}

// ---------------------------------------------------------------------------------------
// A fake Supabase JWKS endpoint that counts its hits.
// ---------------------------------------------------------------------------------------

/// Two fixed P-256 test keys (PKCS#8 PEM) and their public coordinates, for ES256 tokens.
pub const EC_KEY_A_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg6HZiAUY9m9ZMkemK
rMjLTZDcCqT6m6WGKqkCwGCoO0qhRANCAARxs3x9CtAZrnL7IhEu/XVyouX7T3De
J/6YF9O5CzfXRJcdW8atvWhMQTfqTBzCxIOGjRFB9LN3epQW2lDF+Fgz
-----END PRIVATE KEY-----
";
pub const EC_KEY_A_XY: (&str, &str) = (
    "cbN8fQrQGa5y-yIRLv11cqLl-09w3if-mBfTuQs310Q",
    "lx1bxq29aExBN-pMHMLEg4aNEUH0s3d6lBbaUMX4WDM",
);
pub const EC_KEY_B_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1QoAYiMQ7AqFxudC
pLDRATwiTQ662jmpntv6pzt5LgahRANCAARokvL3iPGt4gxdno/g4rJNifaGWXPF
NcBNqXySnHzhMlTaC5ClA8xSwvXR2f7w/C9GX5Dpw3zhhGUBiq5D9xbd
-----END PRIVATE KEY-----
";
pub const EC_KEY_B_XY: (&str, &str) = (
    "aJLy94jxreIMXZ6P4OKyTYn2hllzxTXATal8kpx84TI",
    "VNoLkKUDzFLC9dHZ_vD8L0ZfkOnDfOGEZQGKrkP3Ft0",
);

/// The public JWK of a P-256 key.
pub fn ec_jwk(kid: &str, (x, y): (&str, &str)) -> serde_json::Value {
    serde_json::json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid, "x": x, "y": y})
}

/// An ES256 token for `sub` signed with `pem` under `kid`, valid for an hour.
pub fn es256_token(pem: &str, kid: &str, sub: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "sub": sub, "aud": "authenticated", "role": "authenticated",
        "iat": now, "exp": now + 3600,
    });
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// A JWKS server whose key set can be changed and whose hits are counted.
#[derive(Clone)]
pub struct FakeJwks {
    pub url: String,
    hits: Arc<AtomicUsize>,
    served: Arc<AtomicUsize>,
    keys: Arc<Mutex<serde_json::Value>>,
}

impl FakeJwks {
    /// Serves `{"keys": keys}` at `/auth/v1/.well-known/jwks.json` on 127.0.0.1:0, each
    /// answer after 100 ms.
    pub async fn start(keys: Vec<serde_json::Value>) -> Self {
        Self::start_with_delay(keys, Duration::from_millis(100)).await
    }

    /// Like [`FakeJwks::start`], each answer after `delay`.
    pub async fn start_with_delay(keys: Vec<serde_json::Value>, delay: Duration) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let served_count = Arc::new(AtomicUsize::new(0));
        let document = Arc::new(Mutex::new(serde_json::json!({ "keys": keys })));
        let (counter, served, done) = (hits.clone(), document.clone(), served_count.clone());
        let app = axum::Router::new().route(
            "/auth/v1/.well-known/jwks.json",
            axum::routing::get(move || {
                let (counter, served, done) = (counter.clone(), served.clone(), done.clone());
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    // A little latency so concurrent requests overlap one refresh.
                    tokio::time::sleep(delay).await;
                    let document = served.lock().unwrap().clone();
                    done.fetch_add(1, Ordering::SeqCst);
                    axum::Json(document)
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            url: format!("http://{addr}"),
            hits,
            served: served_count,
            keys: document,
        }
    }

    /// Replaces the served key set.
    pub fn set_keys(&self, keys: Vec<serde_json::Value>) {
        *self.keys.lock().unwrap() = serde_json::json!({ "keys": keys });
    }

    /// How many times the key set was fetched.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` fetches were answered (e.g. the gateway's start-up fetch).
    pub async fn wait_for_hits(&self, n: usize) {
        for _ in 0..200 {
            if self.served.load(Ordering::SeqCst) >= n {
                // Let the gateway read and store the answer.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the JWKS was fetched {} times, expected {n}", self.hits());
    }
}

// ---------------------------------------------------------------------------------------
// Held streams: `WatchEchoes` answers `count` events, then (with `hold`) nothing until the
// caller goes away.
// ---------------------------------------------------------------------------------------

/// The echo service's resumable stream, as a gRPC path.
pub const WATCH_PATH: &str = "/director.testing.v1.EchoService/WatchEchoes";

/// A `WatchEchoes` request for `count` events, held open after them with `hold`.
pub fn watch_request(pool: &DescriptorPool, count: i32, hold: bool) -> DynamicMessage {
    let mut request = DynamicMessage::new(
        pool.get_message_by_name("director.testing.v1.WatchEchoesRequest")
            .unwrap(),
    );
    request.set_field_by_name("count", Value::I32(count));
    request.set_field_by_name("hold", Value::Bool(hold));
    request
}

/// The `WatchEchoes` response message.
pub fn watch_response_descriptor(pool: &DescriptorPool) -> MessageDescriptor {
    pool.get_message_by_name("director.testing.v1.WatchEchoesResponse")
        .unwrap()
}

/// A native gRPC `WatchEchoes` stream through `gateway` (one event, then held), once its
/// first message has arrived, so it is surely open end to end.
pub async fn open_held_grpc_stream(
    gateway: &TestGateway,
    authorization: &str,
) -> tonic::codec::Streaming<DynamicMessage> {
    let pool = echo_pool();
    let mut client = tonic::client::Grpc::new(grpc_channel(gateway).await);
    client.ready().await.unwrap();
    let mut stream = client
        .server_streaming(
            authorized(watch_request(&pool, 1, true), authorization),
            http::uri::PathAndQuery::from_static(WATCH_PATH),
            DynamicCodec::new(watch_response_descriptor(&pool)),
        )
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    stream
}

/// The same stream over gRPC-Web: the response, checked 200, before its body is read.
pub async fn open_held_grpc_web_stream(
    gateway: &TestGateway,
    authorization: &str,
) -> reqwest::Response {
    let request = watch_request(&echo_pool(), 1, true).encode_to_vec();
    let response = http()
        .post(gateway.at(WATCH_PATH))
        .header("content-type", "application/grpc-web+proto")
        .header("authorization", authorization)
        .body(grpc_web_frame(&request))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}
