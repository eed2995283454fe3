//! REST/JSON ⇄ gRPC transcoding, generic over the descriptor pool: every method carrying a
//! `google.api.http` annotation becomes a route, with no hand-written handler per RPC.
//!
//! The route table is built once ([`RestApi::new`]); a request is matched against it
//! ([`RestApi::matches`]), turned into the method's request message (path variables, query,
//! JSON body, derived update mask), sent to the owning service over its shared channel, and
//! the answer rendered as JSON (every field present, `null` for unset) or, for server
//! streams, as Server-Sent Events (with the `event_id` / `after_event_id` + `Last-Event-ID`
//! resume conventions described in `sse`).
//!
//! Answers:
//! - success: 200 `application/json` for every unary method (creations too — the reference
//!   API answered 200), `text/event-stream` for server streams;
//! - unknown path: 404 NOT_FOUND `Not Found` (FastAPI's text, as the edge answers);
//! - known path, other method: 405 with an `Allow` header, code UNIMPLEMENTED (the resource
//!   exists but does not implement that method); returned as `Ok` because the header cannot
//!   travel inside an [`ApiError`];
//! - body with a non-JSON `Content-Type`: 415 (INVALID_ARGUMENT); a missing `Content-Type` is
//!   read as JSON, as the reference (FastAPI) did;
//! - body over `Outbound::max_body_bytes`: 413 (RESOURCE_EXHAUSTED);
//! - bad input: 400 INVALID_ARGUMENT naming every offending field;
//! - upstream errors: the standard gRPC → HTTP mapping ([`ApiError::from_status`]);
//!   upstream too slow: 504 DEADLINE_EXCEEDED; unreachable: 503 UNAVAILABLE.

/// Bodies larger than this are transcoded with `block_in_place` (multi-threaded runtimes).
const LARGE_BODY_BYTES: usize = 64 * 1024;

mod call;
pub mod codec;
mod json_in;
mod json_out;
pub mod names;
mod request;
mod routes;
pub(crate) mod sse;
pub mod template;
pub mod wire_json;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use prost_reflect::{DescriptorPool, DynamicMessage};
use tonic::Code;

pub use json_out::render as render_json;
pub use routes::{PathMatch, RestRoute, RouteMatch};
pub use wire_json::{Fallback, ResponsePlan};

use crate::connection::is_body_read_timeout;
use crate::error::ApiError;
use crate::upstream::{Outbound, Upstreams};

/// The REST surface: the route table and the transcoder.
#[derive(Debug, Clone)]
pub struct RestApi {
    routes: Vec<RestRoute>,
}

impl RestApi {
    /// Builds the route table from every `google.api.http` binding in `pool`. Fails on a
    /// malformed template, a binding naming a missing field, a client-streaming method or two
    /// methods bound to the same method and path.
    pub fn new(pool: &DescriptorPool) -> anyhow::Result<Self> {
        Ok(Self {
            routes: routes::build_routes(pool)?,
        })
    }

    /// The routes of the services whose package `served` accepts: what a gateway with those
    /// upstreams documents.
    pub fn restricted_to(&self, served: impl Fn(&str) -> bool) -> Self {
        Self {
            routes: self
                .routes
                .iter()
                .filter(|route| served(route.method.parent_service().package_name()))
                .cloned()
                .collect(),
        }
    }

    /// Every route, in descriptor order.
    pub fn routes(&self) -> &[RestRoute] {
        &self.routes
    }

    /// The route for `method` and `path` (the full request path, `/api/...`).
    pub fn matches(&self, method: &http::Method, path: &str) -> RouteMatch<'_> {
        routes::find(&self.routes, method, path)
    }

    /// Transcodes one request. `req` must carry the full path (`/api/...`), not one with a
    /// mount prefix stripped.
    pub async fn handle(
        &self,
        req: http::Request<Body>,
        upstreams: &Upstreams,
        outbound: Outbound,
    ) -> Result<Response, ApiError> {
        let (parts, body) = req.into_parts();
        let found = match self.matches(&parts.method, parts.uri.path()) {
            RouteMatch::Found(found) => found,
            RouteMatch::MethodNotAllowed(allowed) => return Ok(method_not_allowed(&allowed)),
            RouteMatch::NotFound => return Err(not_found()),
        };
        let route = found.route;
        let body = if route.body.is_some() {
            read_body(&parts.headers, body, outbound.max_body_bytes).await?
        } else {
            Bytes::new()
        };
        // A large body (up to MAX_BODY_BYTES of JSON, say 60,000 keys) is parsed off the
        // async workers, so other requests keep being served meanwhile.
        let message = if body.len() > LARGE_BODY_BYTES
            && tokio::runtime::Handle::current().runtime_flavor()
                == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(|| {
                transcode(&found, parts.uri.query(), &parts.headers, &body)
            })?
        } else {
            transcode(&found, parts.uri.query(), &parts.headers, &body)?
        };

        if route.server_streaming {
            let stream = call::server_streaming(route, message, upstreams, &outbound).await?;
            return Ok(sse::respond(route, stream, &outbound));
        }
        let answer = call::unary(route, message, upstreams, &outbound).await?;
        let json = route.render_encoded_response(&answer).map_err(|error| match error {
            ResponseError::Decode(error) => call::upstream_error(
                route.grpc_path(),
                &outbound,
                &tonic::Status::internal(format!("decoding the response failed: {error}")),
            ),
            ResponseError::Render(error) => {
                tracing::error!(rpc = route.grpc_path(), error = %error, "could not render the response");
                ApiError::new(Code::Internal, "An error occurred")
            }
        })?;
        Ok((
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response())
    }
}

impl RestApi {
    /// The request message `handle` would send upstream for this request, without calling
    /// anything: route matching (404, or 405 without its `Allow` header), content type, path
    /// variables, query and body. `uri` is the full request URI (`/api/...?...`).
    pub fn request_message(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<(&RestRoute, DynamicMessage), ApiError> {
        match self.matches(method, uri.path()) {
            RouteMatch::Found(found) => {
                let message = transcode(&found, uri.query(), headers, body)?;
                Ok((found.route, message))
            }
            RouteMatch::MethodNotAllowed(_) => {
                Err(ApiError::new(Code::Unimplemented, "Method Not Allowed")
                    .with_http_status(StatusCode::METHOD_NOT_ALLOWED))
            }
            RouteMatch::NotFound => Err(not_found()),
        }
    }
}

impl RestRoute {
    /// The JSON answer of this route for an upstream response (`response_body` applied).
    pub fn render_response(&self, response: &DynamicMessage) -> Result<Vec<u8>, serde_json::Error> {
        json_out::render(response, self.response_field.as_ref())
    }

    /// The JSON answer of this route for an upstream response still in protobuf binary form:
    /// rendered straight from the bytes ([`wire_json`]) or, where that path gives up, decoded
    /// as a `DynamicMessage` and rendered by [`RestRoute::render_response`]. Either way the
    /// same bytes.
    pub fn render_encoded_response(&self, response: &[u8]) -> Result<Vec<u8>, ResponseError> {
        if let Some(Ok(json)) = self.render_encoded_fast(response) {
            return Ok(json);
        }
        let message = DynamicMessage::decode(self.method.output(), response)
            .map_err(ResponseError::Decode)?;
        self.render_response(&message)
            .map_err(ResponseError::Render)
    }

    /// The fast path of [`RestRoute::render_encoded_response`] alone: `None` when this route's
    /// answers always take the dynamic path, `Err` when it gave up on this answer.
    pub fn render_encoded_fast(&self, response: &[u8]) -> Option<Result<Vec<u8>, Fallback>> {
        self.response_plan
            .as_ref()
            .map(|plan| plan.render(response))
    }
}

/// Why an upstream answer could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    /// It is not a valid message of the method's output type.
    #[error("{0}")]
    Decode(prost::DecodeError),
    /// It has no JSON form (a timestamp out of range, say).
    #[error("{0}")]
    Render(serde_json::Error),
}

/// Content type check (only when a body was sent), then the request message.
fn transcode(
    found: &PathMatch<'_>,
    query: Option<&str>,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<DynamicMessage, ApiError> {
    let route = found.route;
    let body: &[u8] = if route.body.is_some() { body } else { &[] };
    if !body.iter().all(u8::is_ascii_whitespace) {
        check_json_content_type(headers)?;
    }
    let last_event_id = headers.get(LAST_EVENT_ID);
    request::build_request(route, &found.values, query, body, last_event_id)
}

/// What a browser's `EventSource` sends when it reconnects: the id of the last event it saw.
const LAST_EVENT_ID: &str = "last-event-id";

/// 404 for a path no route has.
pub fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "Not Found")
}

/// 405 with `Allow` listing the methods the path has.
pub fn method_not_allowed(allowed: &[http::Method]) -> Response {
    let list = allowed
        .iter()
        .map(http::Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = ApiError::new(Code::Unimplemented, "Method Not Allowed")
        .with_http_status(StatusCode::METHOD_NOT_ALLOWED)
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&list) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// Reads the body up to `limit` bytes (413 beyond, checked against `Content-Length` first).
async fn read_body(headers: &http::HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            Code::ResourceExhausted,
            format!("Request body too large (limit {limit} bytes)"),
        )
        .with_http_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(error) if is_body_read_timeout(&*error) => Err(ApiError::new(
            Code::DeadlineExceeded,
            format!("Request body not received in time: {error}"),
        )
        .with_http_status(StatusCode::REQUEST_TIMEOUT)),
        Err(error) => Err(ApiError::invalid_argument(format!(
            "Could not read the request body: {error}"
        ))),
    }
}

/// `application/json`, `application/<x>+json` (any parameters), or no `Content-Type` at all.
pub(crate) fn check_json_content_type(headers: &http::HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        Ok(())
    } else {
        Err(
            ApiError::invalid_argument("Content-Type must be application/json")
                .with_http_status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        )
    }
}
