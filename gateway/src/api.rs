//! The HTTP (non-gRPC) side of the gateway: its own public routes (`/api`, health, OpenAPI
//! and documentation pages, limited per client address except liveness), then, for everything
//! else under `/api/`, the edge checks in order (body size, content type, admission — the
//! token, then the caller's rate limit, or the address' for a missing or bad token —, route
//! lookup) before the request is handed to the REST transcoder.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::{Html, IntoResponse, Response};
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use tonic::metadata::MetadataMap;
use tower::service_fn;
use tower::util::BoxCloneSyncService;

use crate::admission::admit;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::limits::{GuardedBody, body_too_large, declared_length_exceeds, too_many_streams};
use crate::openapi::{self, assets, assets::Asset};
use crate::proxy::GrpcService;
use crate::request_id::RequestId;
use crate::rest::{self, RouteMatch, method_not_allowed, not_found};
use crate::state::AppState;
use crate::upstream::Outbound;
use crate::{forward, health};

/// Routes the gateway answers itself, without authentication.
#[derive(Debug, Clone, Copy)]
enum GatewayRoute {
    Banner,
    Liveness,
    Readiness,
    OpenApi,
    Docs,
    Redoc,
    /// A script or stylesheet of the documentation pages.
    DocsAsset(&'static Asset),
}

impl GatewayRoute {
    fn of(path: &str) -> Option<Self> {
        Some(match path {
            "/api" | "/api/" => Self::Banner,
            "/api/health" => Self::Liveness,
            "/api/health/ready" => Self::Readiness,
            "/api/openapi.json" => Self::OpenApi,
            "/api/docs" => Self::Docs,
            "/api/redoc" => Self::Redoc,
            _ => Self::DocsAsset(assets::find(path)?),
        })
    }

    /// Its path, as the `http_route` label.
    fn template(self) -> &'static str {
        match self {
            Self::Banner => "/api",
            Self::Liveness => "/api/health",
            Self::Readiness => "/api/health/ready",
            Self::OpenApi => "/api/openapi.json",
            Self::Docs => "/api/docs",
            Self::Redoc => "/api/redoc",
            Self::DocsAsset(asset) => asset.path,
        }
    }

    /// Liveness costs nothing and a kubelet polls it from one address: it is the one route
    /// exempt from the per-address limit. Readiness checks every upstream, so it is limited
    /// like the other public routes (the limit is far above any probe's rate).
    fn is_rate_limited(self) -> bool {
        !matches!(self, Self::Liveness)
    }
}

/// The HTTP side as a service.
pub(crate) fn http_service(state: Arc<AppState>) -> GrpcService {
    BoxCloneSyncService::new(service_fn(move |request: Request<Body>| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(state, request).await) }
    }))
}

/// The route template a REST answer was given for (`/api/companies/{id}`), or
/// [`HttpRoute::UNMATCHED`]: a response extension the edge reads for its metrics, so the raw
/// path (ids and all) never becomes a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute(pub String);

impl HttpRoute {
    /// The label of requests that matched no route.
    pub const UNMATCHED: &'static str = "unmatched";
}

async fn handle(state: Arc<AppState>, request: Request<Body>) -> Response {
    let path = request.uri().path().to_owned();
    // Looked up once, here, for the metrics label and for the transcoder below; acted upon
    // only after the edge checks, in their order.
    let gateway_route = GatewayRoute::of(&path);
    let matched = (gateway_route.is_none() && path.starts_with("/api/"))
        .then(|| state.rest.matches(request.method(), &path));
    let label = match (gateway_route, &matched) {
        (Some(route), _) => route.template().to_owned(),
        (None, Some(RouteMatch::Found(found))) => found.route.template.clone(),
        _ => HttpRoute::UNMATCHED.to_owned(),
    };
    let mut response = match respond(&state, request, gateway_route, matched).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    response.extensions_mut().insert(HttpRoute(label));
    response
}

async fn respond(
    state: &AppState,
    request: Request<Body>,
    gateway_route: Option<GatewayRoute>,
    matched: Option<RouteMatch<'_>>,
) -> Result<Response, ApiError> {
    if let Some(route) = gateway_route {
        if route.is_rate_limited()
            && let Err(error) = check_address(state, &request)
        {
            return Ok(refuse(state, request, error).await);
        }
        return gateway_route_answer(state, route, request.method()).await;
    }
    let Some(matched) = matched else {
        let error = check_address(state, &request)
            .err()
            .unwrap_or_else(not_found);
        return Ok(refuse(state, request, error).await);
    };
    if declared_length_exceeds(&request, state.limits.max_body_bytes) {
        // Not worth reading: the connection is closed after the answer instead.
        let mut response = body_too_large(state.limits.max_body_bytes).into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(response);
    }
    if let Err(error) = check_content_type(&request) {
        return Ok(refuse(state, request, error).await);
    }
    let admitted = admit(
        state,
        request.headers(),
        state.rate_limits.client_address(&request),
    )
    .await;
    let Authenticated { caller, expires_at } = match admitted {
        Ok(authenticated) => authenticated,
        Err(refusal) => return Ok(refuse(state, request, refusal.into()).await),
    };
    let streaming = match matched {
        RouteMatch::Found(found) => found.route.server_streaming,
        RouteMatch::NotFound => return Ok(refuse(state, request, not_found()).await),
        RouteMatch::MethodNotAllowed(allowed) => {
            let mut answer = method_not_allowed(&allowed);
            if !drain_small_body(state, request).await {
                answer
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            return Ok(answer);
        }
    };
    // A Server-Sent Events stream counts against its caller's and tenant's stream caps for
    // as long as it is open.
    let stream_permit = if streaming {
        match state
            .stream_caps
            .admit_caller(&caller.tenant_id, &caller.user_id)
        {
            Some(permit) => Some(permit),
            None => return Ok(refuse(state, request, too_many_streams()).await),
        }
    } else {
        None
    };
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(|| RequestId::from_headers(request.headers()));
    let headers = forward::upstream_headers(&state.tokens, &caller, &request_id)?;
    let reauthorize = streaming.then(|| forward::reauthorize(&state.tokens, &caller, &request_id));
    let outbound = Outbound {
        metadata: MetadataMap::from_headers(headers),
        timeout: state.limits.upstream_timeout,
        max_body_bytes: state.limits.max_body_bytes,
        expose_internal_errors: state.expose_internal_errors,
        shutdown: state.shutdown.clone(),
        token_expires_at: expires_at,
        reauthorize,
    };
    let response = state
        .rest
        .handle(request, &state.upstreams, outbound)
        .await?;
    Ok(match stream_permit {
        Some(permit) => response.map(|body| Body::new(GuardedBody::new(body, permit))),
        None => response,
    })
}

/// Request bodies up to this size are read before a refusal is answered, so the client's
/// keep-alive connection stays usable; larger ones get `Connection: close`.
const SMALL_BODY_BYTES: usize = 64 * 1024;

/// How long reading a refused request's small body may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The answer `error` to a request refused before its body was read: the body, when it is
/// small, is read first (an HTTP/1 client may have sent it already, and a connection with
/// unread body bytes cannot carry the next request); otherwise the connection is closed.
async fn refuse(state: &AppState, request: Request<Body>, error: ApiError) -> Response {
    let mut response = error.into_response();
    if !drain_small_body(state, request).await {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads and discards the body of `request` when it is at most [`SMALL_BODY_BYTES`]; whether
/// the whole body was read.
async fn drain_small_body(state: &AppState, request: Request<Body>) -> bool {
    if !has_body(&request) {
        return true;
    }
    let limit = SMALL_BODY_BYTES.min(state.limits.max_body_bytes.max(1));
    if declared_length_exceeds(&request, limit) {
        return false;
    }
    let body = http_body_util::Limited::new(request.into_body(), limit);
    matches!(
        tokio::time::timeout(DRAIN_TIMEOUT, body.collect()).await,
        Ok(Ok(_))
    )
}

/// Charges unauthenticated work to the client's address.
fn check_address(state: &AppState, request: &Request<Body>) -> Result<(), ApiError> {
    state
        .rate_limits
        .check_address(request)
        .map_err(|limited| limited.to_api_error())
}

async fn gateway_route_answer(
    state: &AppState,
    route: GatewayRoute,
    method: &Method,
) -> Result<Response, ApiError> {
    if method != Method::GET && method != Method::HEAD {
        return Ok(method_not_allowed(&[Method::GET, Method::HEAD]));
    }
    Ok(match route {
        GatewayRoute::Banner => axum::Json(serde_json::json!({
            "message": "IntegrationDirector API",
            "docs": "/api/docs",
        }))
        .into_response(),
        GatewayRoute::Liveness => axum::Json(health::liveness()).into_response(),
        GatewayRoute::Readiness => {
            let readiness =
                health::readiness(&state.upstreams, state.limits.readiness_timeout).await;
            let status = if readiness.is_ready() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            (status, axum::Json(readiness)).into_response()
        }
        GatewayRoute::OpenApi => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            state.openapi_json.clone(),
        )
            .into_response(),
        GatewayRoute::Docs => Html(openapi::docs_html()).into_response(),
        GatewayRoute::Redoc => Html(openapi::redoc_html()).into_response(),
        GatewayRoute::DocsAsset(asset) => assets::response(asset),
    })
}

/// Bodies must be JSON (checked before authentication so a cross-site form post that skips
/// the CORS preflight is refused cheaply); the rule itself is the transcoder's.
fn check_content_type(request: &Request<Body>) -> Result<(), ApiError> {
    if has_body(request) {
        rest::check_json_content_type(request.headers())
    } else {
        Ok(())
    }
}

fn has_body(request: &Request<Body>) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|length| length.trim() != "0")
}
