//! Server streams over REST as Server-Sent Events:
//! - each message is one event with the default type: `data: <json>\n\n` (rendered like a
//!   unary response, `response_body` applied);
//! - an upstream error mid-stream is `event: error\ndata: <error json>\n\n` (the gateway's one
//!   error shape), after which the stream ends;
//! - a comment line every 15 s keeps proxies from closing an idle stream;
//! - no deadline: the stream lasts until the service ends it, the client goes away (dropping
//!   the response body cancels the upstream call) or the gateway shuts down (the event stream
//!   then ends normally, the upstream call is cancelled and the connection can drain; a
//!   browser's `EventSource` reconnects, to another replica, with `Last-Event-ID`);
//! - except the caller's token: when it expires the stream ends with an UNAUTHENTICATED
//!   error event ("Token has expired"), so a revoked or lapsed session does not keep
//!   receiving a tenant's events; the client reconnects with a fresh token.
//!
//! Resuming, by the two field-name conventions of [`crate::event_ids`] (the gateway knows no
//! particular service):
//! - **`event_id`**: when a streamed response message has a top-level string or integer field
//!   named `event_id` and it is set (non-empty, non-zero), the event carries it as its SSE id
//!   (`id: <event_id>`); the data is unchanged (the field stays in the JSON too). An id an SSE
//!   field cannot carry (a line break or NUL in it) is left out.
//! - **`after_event_id`**: when the request message of a server-streaming route has a
//!   top-level string or integer field named `after_event_id`, a `Last-Event-ID` request
//!   header (what `EventSource` sends when it reconnects) sets it, converted like a query
//!   value (a value the field cannot hold, e.g. not a number for an integer field, is a 400
//!   naming `after_event_id`). An explicit value wins over the header: the query
//!   (`?after_event_id=7`), the body, or the path. An empty header is ignored. See
//!   [`resume_field`]; the request side is applied by `request::build_request`.

use std::convert::Infallible;
use std::pin::Pin;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use http::{HeaderValue, header};
use prost_reflect::{DynamicMessage, FieldDescriptor, MessageDescriptor};
use serde_json::json;
use tonic::Code;
use tonic::codec::Streaming;

use super::call::{request_id, upstream_error};
use super::json_out;
use super::routes::RestRoute;
use crate::auth::{AuthError, time_left};
use crate::error::ApiError;
use crate::event_ids::{AFTER_EVENT_ID_FIELD, EVENT_ID_FIELD, convention_field, event_id};
use crate::upstream::Outbound;

/// How often an idle stream gets a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The `after_event_id` field of a server-streaming route's request message, if it has one
/// that a `Last-Event-ID` header can fill (a top-level, singular string or integer field).
pub fn resume_field(route: &RestRoute) -> Option<FieldDescriptor> {
    if !route.server_streaming {
        return None;
    }
    convention_field(&route.method.input(), AFTER_EVENT_ID_FIELD)
}

/// The `event_id` field of a streamed response message, if it has a usable one.
fn event_id_field(response: &MessageDescriptor) -> Option<FieldDescriptor> {
    convention_field(response, EVENT_ID_FIELD)
}

/// Turns an open upstream stream into an SSE response.
pub fn respond(
    route: &RestRoute,
    stream: Streaming<DynamicMessage>,
    outbound: &Outbound,
) -> Response {
    let state = StreamState {
        stream,
        rpc: route.grpc_path().to_owned(),
        response_field: route.response_field.clone(),
        event_id_field: event_id_field(&route.method.output()),
        request_id: request_id(outbound).map(str::to_owned),
        token_expiry: Box::pin(tokio::time::sleep(time_left(outbound.token_expires_at))),
        outbound: outbound.clone(),
    };
    let mut response = Sse::new(events(state))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Everything the event stream needs, moved from one message to the next (no per-message
/// clones).
struct StreamState {
    stream: Streaming<DynamicMessage>,
    rpc: String,
    response_field: Option<FieldDescriptor>,
    event_id_field: Option<FieldDescriptor>,
    request_id: Option<String>,
    token_expiry: Pin<Box<tokio::time::Sleep>>,
    outbound: Outbound,
}

/// The event stream: messages until the upstream ends or the gateway shuts down, or one
/// error event (an upstream error, or the caller's token expiring).
fn events(state: StreamState) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        let next = tokio::select! {
            // Shutdown first, so a busy stream still ends promptly.
            biased;
            () = state.outbound.shutdown.cancelled() => return None,
            () = state.token_expiry.as_mut() => {
                let error = ApiError::from(AuthError::Expired);
                return Some((Ok(error_event(&error, state.request_id.as_deref())), None));
            }
            next = state.stream.message() => next,
        };
        match next {
            Ok(Some(message)) => match message_event(
                &message,
                state.response_field.as_ref(),
                state.event_id_field.as_ref(),
            ) {
                Ok(event) => Some((Ok(event), Some(state))),
                Err(error) => {
                    tracing::error!(rpc = state.rpc, error = %error, "could not render a streamed message");
                    let error = ApiError::new(Code::Internal, "An error occurred");
                    Some((Ok(error_event(&error, state.request_id.as_deref())), None))
                }
            },
            Ok(None) => None,
            Err(status) => {
                let error = upstream_error(&state.rpc, &state.outbound, &status);
                Some((Ok(error_event(&error, state.request_id.as_deref())), None))
            }
        }
    })
}

fn message_event(
    message: &DynamicMessage,
    field: Option<&FieldDescriptor>,
    event_id_field: Option<&FieldDescriptor>,
) -> Result<Event, serde_json::Error> {
    let bytes = json_out::render(message, field)?;
    let mut event = Event::default();
    if let Some(id) = event_id_field.and_then(|field| event_id(message, field)) {
        event = event.id(id);
    }
    // serde_json escapes control characters inside strings, so the text has no line breaks.
    Ok(event.data(String::from_utf8_lossy(&bytes)))
}

/// `event: error` with the gateway's error JSON.
pub fn error_event(error: &ApiError, request_id: Option<&str>) -> Event {
    Event::default()
        .event("error")
        .data(error_json(error, request_id).to_string())
}

/// The same JSON an [`ApiError`] response has as its body.
pub fn error_json(error: &ApiError, request_id: Option<&str>) -> serde_json::Value {
    json!({
        "error": error.message,
        "detail": error.message,
        "code": error.code_name(),
        "status": error.status().as_u16(),
        "fields": error.fields,
        "request_id": request_id.or(error.request_id.as_deref()),
    })
}
