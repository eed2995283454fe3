//! The gateway process: built once from its configuration, the descriptor pool and the
//! upstream map, then serving one listener that speaks HTTP/1.1 and h2c (prior knowledge),
//! choosing per request between native gRPC, gRPC-Web, Connect and REST (see [`Protocol`]).
//!
//! Connections are capped and timed out as [`connection`] says. Layers, outermost first:
//! [`RestCompression`] (REST answers only) → [`Edge`] (request id, span, security headers,
//! access log) → CORS → [`Shed`] (concurrency cap) → protocol dispatch.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use director_platform::config::Environment;
use director_platform::identity::InternalTokens;
use http::{Request, Response};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::util::BoxCloneSyncService;
use tower::{Layer, ServiceExt, service_fn};
use tracing::{debug, info, warn};

use crate::api::http_service;
use crate::auth::Authenticator;
use crate::client_addr::ClientAddr;
use crate::compression::RestCompression;
use crate::config::GatewayConfig;
use crate::connect::{self, connect_service};
use crate::connection::{
    self, Activity, AddressConnections, ConnectionCap, Inactive, ReadTimeoutBody,
};
use crate::cors;
use crate::edge::{Edge, GrpcMethods};
use crate::limits::{GuardedBody, RateLimits, Shed, StreamCaps};
use crate::local_grpc::local_services;
use crate::openapi::openapi_document;
use crate::protocol::Protocol;
use crate::proxy::{GrpcService, forwarding, grpc_service, grpc_web_service};
use crate::rest::RestApi;
use crate::state::AppState;
use crate::upstream::Upstreams;

/// How long open connections may take to finish after shutdown begins.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// The whole HTTP stack as one cloneable service.
type GatewayService = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// A gateway ready to serve.
#[derive(Debug)]
pub struct Gateway {
    state: Arc<AppState>,
    grpc_methods: Arc<GrpcMethods>,
    connect_methods: Arc<connect::Methods>,
    config: GatewayConfig,
    health: HealthReporter,
}

impl Gateway {
    /// Builds everything a request needs, once: REST routes and the OpenAPI document from
    /// `descriptors`, the gRPC routing table (service → the channel of its package's upstream),
    /// reflection, the token verifier and the rate limiters.
    ///
    /// `upstreams` maps protobuf packages to upstream base URIs
    /// (e.g. `("director.companies.v1", "http://127.0.0.1:50051")`). A service whose package has
    /// no upstream answers UNIMPLEMENTED. Call it within a Tokio runtime (the upstream
    /// channels connect lazily but need the runtime to exist).
    pub fn build(
        config: GatewayConfig,
        descriptors: DescriptorPool,
        upstreams: Vec<(String, http::Uri)>,
    ) -> anyhow::Result<Self> {
        let upstreams = Upstreams::new(
            upstreams,
            config.limits.connect_timeout,
            config.limits.max_concurrent_requests,
            &descriptors,
        );
        let mut grpc_services = HashMap::new();
        let mut streaming_methods = HashSet::new();
        for service in descriptors.services() {
            match upstreams.channel_for_package(service.package_name()) {
                Some(channel) => {
                    grpc_services.insert(service.full_name().to_owned(), channel);
                    streaming_methods.extend(
                        service
                            .methods()
                            .filter(prost_reflect::MethodDescriptor::is_server_streaming)
                            .map(|method| format!("/{}/{}", service.full_name(), method.name())),
                    );
                }
                None => debug!(
                    service = service.full_name(),
                    "no upstream serves this package"
                ),
            }
        }
        let grpc_methods = grpc_methods(&descriptors, &streaming_methods);
        let connect_methods = connect::Methods::new(&descriptors);
        let rest = RestApi::new(&descriptors).context("building the REST routes")?;
        // The document describes what this gateway serves: routes of packages with an upstream.
        let served = rest.restricted_to(|package| upstreams.channel_for_package(package).is_some());
        let openapi_json = serde_json::to_vec(&openapi_document(&served, &descriptors))
            .context("serializing the OpenAPI document")?;
        let (local_grpc, health) =
            local_services(&descriptors, grpc_services.keys().map(String::as_str))
                .context("building gRPC reflection")?;
        let state = AppState {
            authenticator: Authenticator::new(&config.auth)?,
            rate_limits: Arc::new(RateLimits::new(&config.limits)),
            stream_caps: StreamCaps::new(&config.limits),
            tokens: Arc::new(InternalTokens::new(
                &config.internal_token.secret,
                config.internal_token.ttl,
            )),
            upstreams,
            grpc_services,
            streaming_methods,
            local_grpc,
            rest,
            openapi_json: openapi_json.into(),
            limits: config.limits.clone(),
            expose_internal_errors: config.common.debug,
            shutdown: CancellationToken::new(),
        };
        director_platform::metrics::install();
        Ok(Self {
            state: Arc::new(state),
            grpc_methods: Arc::new(grpc_methods),
            connect_methods: Arc::new(connect_methods),
            config,
            health,
        })
    }

    /// Serves `listener` until `shutdown` is cancelled, then stops accepting, ends open
    /// Server-Sent Event streams, reports NOT_SERVING on its own health service and lets open
    /// connections finish (10 s at most).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        self.state
            .authenticator
            .spawn_refresh(shutdown.child_token());
        self.state
            .rate_limits
            .clone()
            .spawn_cleanup(shutdown.child_token());
        let service = self.service();
        let builder = connection::builder(&self.config.limits);
        let connection_cap = ConnectionCap::new(self.config.limits.max_connections);
        let per_address = AddressConnections::new(self.config.limits.max_connections_per_address);
        let trusted_proxies = self.config.limits.trusted_proxies.clone();
        let body_read_timeout = self.config.limits.body_read_timeout;
        let first_request_timeout = self.config.limits.header_read_timeout;
        let idle_timeout = self.config.limits.connection_idle_timeout;
        let connections = TaskTracker::new();
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "gateway listening");
        }
        loop {
            let permit = tokio::select! {
                () = shutdown.cancelled() => break,
                permit = connection_cap.admit() => match permit {
                    Some(permit) => permit,
                    None => break,
                },
            };
            let (stream, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Typically too many open files: back off instead of spinning.
                        warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Closed at once (dropped) when its address already holds its share.
            let slot = if trusted_proxies.trusts(peer.ip()) {
                None
            } else {
                match per_address.admit(peer.ip()) {
                    Some(slot) => Some(slot),
                    None => {
                        metrics::counter!("director_gateway_connections_refused_total")
                            .increment(1);
                        debug!(%peer, "connection cap of the address reached, closing");
                        drop(stream);
                        continue;
                    }
                }
            };
            let _ = stream.set_nodelay(true);
            let service = service.clone();
            let activity = Activity::new();
            let per_connection = {
                let activity = Arc::clone(&activity);
                service_fn(move |mut request: Request<hyper::body::Incoming>| {
                    let in_flight = activity.begin();
                    request.extensions_mut().insert(ClientAddr(peer));
                    let request = request
                        .map(|body| Body::new(ReadTimeoutBody::new(body, body_read_timeout)));
                    let call = service.clone().oneshot(request);
                    async move {
                        let Ok(response) = call.await;
                        Ok::<_, Infallible>(
                            response.map(|body| Body::new(GuardedBody::new(body, in_flight))),
                        )
                    }
                })
            };
            let connection = builder
                .serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(per_connection),
                )
                .into_owned();
            let shutdown = shutdown.clone();
            connections.spawn(async move {
                let mut connection = std::pin::pin!(connection);
                let mut closing = false;
                // An idle connection asked to close gracefully (an HTTP/2 GOAWAY waits for the
                // client's ping answer) is dropped if it has not closed within this long.
                let mut closed_by = None;
                loop {
                    let grace = async {
                        match closed_by {
                            Some(deadline) => tokio::time::sleep_until(deadline).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        () = grace => {
                            debug!(%peer, "idle connection did not close, dropping it");
                            break;
                        }
                        ended = connection.as_mut() => {
                            if let Err(error) = ended {
                                debug!(%error, %peer, "connection ended with an error");
                            }
                            break;
                        }
                        () = shutdown.cancelled(), if !closing => {
                            connection.as_mut().graceful_shutdown();
                            closing = true;
                        }
                        why = activity.inactive(first_request_timeout, idle_timeout), if !closing => {
                            match why {
                                Inactive::NoFirstRequest => {
                                    debug!(%peer, "no request within the header read timeout, closing");
                                    break;
                                }
                                Inactive::Idle => {
                                    debug!(%peer, "idle connection, closing");
                                    connection.as_mut().graceful_shutdown();
                                    closing = true;
                                    closed_by = Some(
                                        tokio::time::Instant::now() + first_request_timeout,
                                    );
                                }
                            }
                        }
                    }
                }
                drop(slot);
                drop(permit);
            });
        }
        drop(listener);
        // Open Server-Sent Event streams end now instead of holding their connections until
        // the drain deadline.
        self.state.shutdown.cancel();
        self.health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        info!("gateway draining connections");
        connections.close();
        tokio::select! {
            () = connections.wait() => info!("gateway stopped"),
            () = tokio::time::sleep(DRAIN_DEADLINE) => warn!("drain deadline reached, closing connections"),
        }
        Ok(())
    }

    /// The configuration the gateway was built with.
    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    fn service(&self) -> GatewayService {
        let dispatch = Dispatch {
            grpc: grpc_service(self.state.clone()),
            grpc_web: grpc_web_service(self.state.clone()),
            connect: connect_service(
                forwarding(self.state.clone()),
                Arc::clone(&self.connect_methods),
                &self.state.limits,
                self.state.shutdown.clone(),
            ),
            http: http_service(self.state.clone()),
        };
        let shed = Shed::new(dispatch, self.state.limits.max_concurrent_requests);
        let cors = cors::layer(&self.config.cors).layer(shed);
        let edge = Edge::new(
            cors,
            self.config.common.environment == Environment::Prod,
            Arc::clone(&self.grpc_methods),
        );
        BoxCloneSyncService::new(RestCompression::new(edge))
    }
}

/// The gateway's own gRPC services (reflection, health): (path, streaming).
const LOCAL_METHODS: [(&str, bool); 4] = [
    ("/grpc.health.v1.Health/Check", false),
    ("/grpc.health.v1.Health/Watch", true),
    (
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        true,
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        true,
    ),
];

/// Every method of `descriptors` and the gateway's own, by path, for the metrics' routes.
fn grpc_methods(descriptors: &DescriptorPool, streaming: &HashSet<String>) -> GrpcMethods {
    let mut methods = GrpcMethods {
        known: descriptors
            .services()
            .flat_map(|service| {
                service
                    .methods()
                    .map(|method| format!("/{}/{}", service.full_name(), method.name()))
                    .collect::<Vec<_>>()
            })
            .collect(),
        streaming: streaming.clone(),
    };
    for (path, is_streaming) in LOCAL_METHODS {
        methods.known.insert(path.to_owned());
        if is_streaming {
            methods.streaming.insert(path.to_owned());
        }
    }
    methods
}

/// Chooses the handler by the request's protocol.
#[derive(Clone)]
struct Dispatch {
    grpc: GrpcService,
    grpc_web: GrpcService,
    connect: GrpcService,
    http: GrpcService,
}

impl tower::Service<Request<Body>> for Dispatch {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = tower::util::Oneshot<GrpcService, Request<Body>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let handler = match Protocol::of(&request) {
            Protocol::Grpc => self.grpc.clone(),
            Protocol::GrpcWeb => self.grpc_web.clone(),
            Protocol::Connect(_) => self.connect.clone(),
            Protocol::Rest => self.http.clone(),
        };
        handler.oneshot(request)
    }
}
