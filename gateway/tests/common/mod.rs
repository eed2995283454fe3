//! Shared test harness: a gateway on 127.0.0.1:0 and the clients and tokens to call it. Its
//! parts by job: [`echo`], the test-only echo service the gateway fronts (compiled from
//! `tests/proto` when the tests run and served generically from its descriptors, with
//! [`dynamic_codec`]); [`held_streams`], streams held open through the gateway; [`grpc_web`]
//! framing; [`jwks`], a fake JWKS server and ES256 tokens.
// Each test binary uses a part of the harness (the re-exports below included).
#![allow(clippy::unwrap_used, dead_code, unused_imports)]

pub mod dynamic_codec;
pub mod echo;
pub mod grpc_web;
pub mod held_streams;
pub mod jwks;

pub use dynamic_codec::*;
pub use echo::*;
pub use grpc_web::*;
pub use held_streams::*;
pub use jwks::*;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use director_gateway::{Gateway, GatewayConfig};
use director_platform::config::Env;
use director_platform::identity::Role;
use director_platform::identity::user_token::{UserTokenClaims, mint_hs256};
use prost_reflect::{DescriptorPool, DynamicMessage};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
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
