//! The upstream's gRPC answer rewritten as a Connect answer.
//!
//! - Unary: the one message in the call's codec (gzip-compressed when the client accepts
//!   it and it is worth it), the upstream's header metadata as headers and its trailers as
//!   `trailer-*` headers; or an error: its HTTP status, the error JSON.
//! - Streaming: HTTP 200, each message enveloped as it arrives, then the end-of-stream
//!   message (flag 0x02) carrying the error, if any, and the trailers as `metadata`. When the
//!   gateway shuts down, open streams end at once with UNAVAILABLE (clients reconnect to
//!   another replica) instead of holding their connections until the drain deadline.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::BodyExt as _;
use prost_reflect::MessageDescriptor;
use serde_json::{Map, Value};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::Code;
use tonic::body::Body;

use super::codec::{Codec, GZIP, MIN_COMPRESSED_BYTES, gzip};
use super::envelope::{self, COMPRESSED, END_STREAM, Frames};
use super::error::ConnectError;
use super::request::Call;

/// Marks (as a response extension) a Connect answer that opened a stream, for the
/// open-streams gauge: a refusal answered at once opens none.
#[derive(Debug, Clone, Copy)]
pub struct OpenedConnectStream;

/// Headers of a gRPC answer that are about gRPC itself, not metadata for the client.
fn is_metadata(name: &HeaderName) -> bool {
    let name = name.as_str();
    !(name.starts_with("grpc-")
        || matches!(
            name,
            "content-type"
                | "content-length"
                | "content-encoding"
                | "transfer-encoding"
                | "te"
                | "trailer"
                | "connection"
                | "date"
        ))
}

/// The metadata of a gRPC header block.
fn metadata(headers: &HeaderMap) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
    headers.iter().filter(|(name, _)| is_metadata(name))
}

/// The unary answer to `call` from the upstream's `response`.
/// Once `deadline` has passed since `started`, a failure is the deadline's, and reported as
/// such: the upstream enforcing the `grpc-timeout` it was sent answers CANCELLED, and the
/// channel, which enforces `grpc-timeout` too, fails the call (the proxy's UNAVAILABLE), each
/// racing the gateway's own timer.
pub(crate) async fn unary(
    call: &Call,
    response: Response<Body>,
    started: Instant,
    deadline: Duration,
) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let mut headers: HeaderMap = metadata(&parts.headers)
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let answer = match ConnectError::from_grpc(&parts.headers) {
        // A trailers-only answer: a refusal (authentication, limits) or an early error.
        Some(Err(error)) => Err(error),
        Some(Ok(())) => Err(ConnectError::new(
            Code::Internal,
            "The service answered without a message",
        )),
        None => match body.collect().await {
            Err(status) => Err(ConnectError::from_status(&status)),
            Ok(collected) => {
                let trailers = collected.trailers().cloned().unwrap_or_default();
                for (name, value) in metadata(&trailers) {
                    if let Ok(name) = HeaderName::try_from(format!("trailer-{name}")) {
                        headers.append(name, value.clone());
                    }
                }
                match ConnectError::from_grpc(&trailers) {
                    Some(Ok(())) => one_message(collected.to_bytes()),
                    Some(Err(error)) => Err(error),
                    None => Err(ConnectError::new(
                        Code::Internal,
                        "The service's answer ended without a status",
                    )),
                }
            }
        },
    };
    let answer = answer
        .map_err(|error| {
            let deadline_passed = started.elapsed() >= deadline;
            if deadline_passed && matches!(error.code, Code::Cancelled | Code::Unavailable) {
                ConnectError::new(Code::DeadlineExceeded, "Deadline exceeded")
            } else {
                error
            }
        })
        .and_then(|message| call.shape.codec.render(message, &call.method.output()));
    let mut response = match answer {
        Ok(message) => success(call, message),
        Err(error) => error.into_unary_response(),
    };
    for (name, value) in &headers {
        if !response.headers().contains_key(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// The one message of a unary answer's gRPC body.
fn one_message(body: Bytes) -> Result<Bytes, ConnectError> {
    let mut frames = Frames::default();
    frames.push(&body);
    let message = frames.next_frame();
    match message {
        Some(frame) if frame.flags & COMPRESSED != 0 => Err(ConnectError::new(
            Code::Internal,
            "The service compressed its answer though no compression was offered",
        )),
        Some(frame) if frames.next_frame().is_none() && !frames.has_partial() => Ok(frame.payload),
        Some(_) => Err(ConnectError::new(
            Code::Internal,
            "The service answered a unary call with more than one message",
        )),
        None => Err(ConnectError::new(
            Code::Internal,
            "The service answered without a message",
        )),
    }
}

/// A successful unary answer.
fn success(call: &Call, message: Bytes) -> Response<Body> {
    let compress = call.accepts_gzip && message.len() >= MIN_COMPRESSED_BYTES;
    let body = if compress { gzip(&message) } else { message };
    let mut response = Response::new(Body::new(http_body_util::Full::new(body)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        content_type("application/", call.shape.codec),
    );
    if compress {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(GZIP));
    }
    headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

fn content_type(prefix: &str, codec: Codec) -> HeaderValue {
    HeaderValue::try_from(format!("{prefix}{}", codec.name()))
        .unwrap_or_else(|_| HeaderValue::from_static("application/proto"))
}

/// The streaming answer to `call` from the upstream's `response`.
pub(crate) fn stream(
    call: &Call,
    response: Response<Body>,
    shutdown: &CancellationToken,
) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let ended = ConnectError::from_grpc(&parts.headers);
    let opened = ended.is_none();
    let body = match ended {
        // Trailers-only: the stream ends before its first message.
        Some(outcome) => {
            let error = outcome.err();
            Body::new(http_body_util::Full::new(end_stream(
                error.as_ref(),
                &HeaderMap::new(),
            )))
        }
        None => Body::new(StreamBody {
            upstream: body,
            frames: Frames::default(),
            codec: call.shape.codec,
            output: call.method.output(),
            gzip: call.accepts_gzip,
            shutdown: Box::pin(shutdown.clone().cancelled_owned()),
            ended: false,
        }),
    };
    let mut answer = Response::new(body);
    *answer.status_mut() = StatusCode::OK;
    let headers = answer.headers_mut();
    for (name, value) in metadata(&parts.headers) {
        headers.append(name, value.clone());
    }
    headers.insert(
        header::CONTENT_TYPE,
        content_type("application/connect+", call.shape.codec),
    );
    if call.accepts_gzip {
        headers.insert("connect-content-encoding", HeaderValue::from_static(GZIP));
    }
    if opened {
        answer.extensions_mut().insert(OpenedConnectStream);
    }
    answer
}

/// A stream's end-of-stream message: `{"error": …, "metadata": {name: [values]}}`.
pub(crate) fn end_stream(error: Option<&ConnectError>, trailers: &HeaderMap) -> Bytes {
    let mut end = Map::new();
    if let Some(error) = error {
        end.insert("error".into(), error.to_json());
    }
    let mut fields = Map::new();
    for (name, value) in metadata(trailers) {
        let values = fields
            .entry(name.as_str().to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = values {
            values.push(Value::from(String::from_utf8_lossy(value.as_bytes())));
        }
    }
    if !fields.is_empty() {
        end.insert("metadata".into(), Value::Object(fields));
    }
    let json = serde_json::to_vec(&Value::Object(end)).unwrap_or_default();
    let mut framed = BytesMut::new();
    envelope::put(&mut framed, END_STREAM, &json);
    framed.freeze()
}

/// A gRPC response stream re-framed as a Connect stream.
struct StreamBody {
    upstream: Body,
    frames: Frames,
    codec: Codec,
    output: MessageDescriptor,
    gzip: bool,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
    ended: bool,
}

impl StreamBody {
    /// The messages complete so far, as Connect envelopes.
    fn envelopes(&mut self) -> Result<BytesMut, ConnectError> {
        let mut out = BytesMut::new();
        while let Some(frame) = self.frames.next_frame() {
            if frame.flags & COMPRESSED != 0 {
                return Err(ConnectError::new(
                    Code::Internal,
                    "The service compressed a message though no compression was offered",
                ));
            }
            let message = self.codec.render(frame.payload, &self.output)?;
            if self.gzip && message.len() >= MIN_COMPRESSED_BYTES {
                envelope::put(&mut out, COMPRESSED, &gzip(&message));
            } else {
                envelope::put(&mut out, 0, &message);
            }
        }
        Ok(out)
    }

    /// Ends the stream with `error` (or success) and `trailers`; the upstream is dropped,
    /// which cancels its call if it was still running.
    fn end(&mut self, error: Option<&ConnectError>, trailers: &HeaderMap) -> Frame<Bytes> {
        self.ended = true;
        self.upstream = Body::empty();
        Frame::data(end_stream(error, trailers))
    }
}

impl http_body::Body for StreamBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            // Shutdown first, so a busy stream still ends promptly.
            if this.shutdown.as_mut().poll(cx).is_ready() {
                let error =
                    ConnectError::new(Code::Unavailable, "The server is shutting down; reconnect");
                return Poll::Ready(Some(Ok(this.end(Some(&error), &HeaderMap::new()))));
            }
            let frame = match Pin::new(&mut this.upstream).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(frame) => frame,
            };
            let frame = match frame {
                Some(Ok(frame)) => frame,
                Some(Err(status)) => {
                    let error = ConnectError::from_status(&status);
                    return Poll::Ready(Some(Ok(this.end(Some(&error), &HeaderMap::new()))));
                }
                None => {
                    let error = ConnectError::new(
                        Code::Internal,
                        if this.frames.has_partial() {
                            "The service's stream ended inside a message"
                        } else {
                            "The service's stream ended without a status"
                        },
                    );
                    return Poll::Ready(Some(Ok(this.end(Some(&error), &HeaderMap::new()))));
                }
            };
            match frame.into_data() {
                Ok(data) => {
                    this.frames.push(&data);
                    match this.envelopes() {
                        Ok(out) if out.is_empty() => {}
                        Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out.freeze())))),
                        Err(error) => {
                            return Poll::Ready(Some(
                                Ok(this.end(Some(&error), &HeaderMap::new())),
                            ));
                        }
                    }
                }
                Err(frame) => {
                    let Ok(trailers) = frame.into_trailers() else {
                        continue;
                    };
                    let error = match ConnectError::from_grpc(&trailers) {
                        Some(Ok(())) => None,
                        Some(Err(error)) => Some(error),
                        None => Some(ConnectError::new(
                            Code::Internal,
                            "The service's stream ended without a status",
                        )),
                    };
                    return Poll::Ready(Some(Ok(this.end(error.as_ref(), &trailers))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_stream_message_carries_the_error_and_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("10"));
        trailers.insert("x-cursor", HeaderValue::from_static("42"));
        let error = ConnectError::new(Code::Aborted, "stopped");
        let framed = end_stream(Some(&error), &trailers);
        assert_eq!(framed[0], END_STREAM);
        let json: Value = serde_json::from_slice(&framed[5..]).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!({
                "error": {"code": "aborted", "message": "stopped"},
                "metadata": {"x-cursor": ["42"]},
            })
        );
        let json: Value =
            serde_json::from_slice(&end_stream(None, &HeaderMap::new())[5..]).expect("JSON");
        assert_eq!(json, serde_json::json!({}));
    }
}
