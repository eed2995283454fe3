//! Server streams over REST as Server-Sent Events:
//! - each message is one event with the default type: `data: <json>\n\n` (rendered like a
//!   unary response, `response_body` applied);
//! - an upstream error mid-stream is `event: error\ndata: <error json>\n\n` (the gateway's one
//!   error shape), after which the stream ends;
//! - a comment line every 15 s keeps proxies from closing an idle stream;
//! - no deadline: the stream lasts until the service ends it or the client goes away
//!   (dropping the response body cancels the upstream call).

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use http::{HeaderValue, header};
use prost_reflect::{DynamicMessage, FieldDescriptor};
use serde_json::json;
use tonic::Code;
use tonic::codec::Streaming;

use super::call::{request_id, upstream_error};
use super::json_out;
use super::routes::RestRoute;
use crate::error::ApiError;
use crate::upstream::Outbound;

/// How often an idle stream gets a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

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
        request_id: request_id(outbound).map(str::to_owned),
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
    request_id: Option<String>,
    outbound: Outbound,
}

/// The event stream: messages until the upstream ends, or one error event.
fn events(state: StreamState) -> impl Stream<Item = Result<Event, Infallible>> + Send + 'static {
    futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.stream.message().await {
            Ok(Some(message)) => match message_event(&message, state.response_field.as_ref()) {
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
) -> Result<Event, serde_json::Error> {
    let bytes = json_out::render(message, field)?;
    // serde_json escapes control characters inside strings, so the text has no line breaks.
    Ok(Event::default().data(String::from_utf8_lossy(&bytes)))
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
