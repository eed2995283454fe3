//! The bodies of proxied gRPC calls (native and gRPC-Web, which reaches the proxy already
//! converted to native framing).
//!
//! - [`CappedMessages`]: request messages are read frame by frame; a message whose
//!   length prefix exceeds the cap fails the body before its bytes are forwarded, so an
//!   oversized message never reaches (nor is decoded by) a service.
//! - [`GuardedResponse`]: the response ends with UNAUTHENTICATED when the caller's token
//!   expires (a stream outliving its token would keep serving a lapsed session), and the
//!   messages of INTERNAL, UNKNOWN and DATA_LOSS statuses are replaced like REST's unless
//!   `DEBUG` exposes them (they describe the service, not the request). A response body that
//!   fails (the upstream's connection was lost: UNAVAILABLE, see
//!   `director_platform::balance`) ends with its status as trailers, so the client reads a
//!   gRPC status instead of a reset stream (which gRPC clients report as INTERNAL).

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::Frame;
use tonic::Status;
use tonic::body::Body;

/// Length of a gRPC message prefix: a compression flag and a big-endian u32 length.
const PREFIX_LEN: usize = 5;

/// A request body whose gRPC messages may each be at most `max_message_bytes` long.
#[derive(Debug)]
pub struct CappedMessages {
    body: Body,
    max_message_bytes: usize,
    /// The prefix of the next message, as far as it has arrived.
    prefix: [u8; PREFIX_LEN],
    prefix_filled: usize,
    /// Bytes of the current message still to pass.
    payload_left: u64,
}

impl CappedMessages {
    /// Caps each message of `body` at `max_message_bytes`.
    pub fn new(body: Body, max_message_bytes: usize) -> Self {
        Self {
            body,
            max_message_bytes,
            prefix: [0; PREFIX_LEN],
            prefix_filled: 0,
            payload_left: 0,
        }
    }

    /// Follows the framing through `chunk`; fails on a message over the cap.
    fn inspect(&mut self, mut chunk: &[u8]) -> Result<(), Status> {
        while !chunk.is_empty() {
            if self.payload_left > 0 {
                let skipped = usize::try_from(self.payload_left)
                    .unwrap_or(usize::MAX)
                    .min(chunk.len());
                chunk.advance(skipped);
                self.payload_left -= skipped as u64;
                continue;
            }
            let wanted = (PREFIX_LEN - self.prefix_filled).min(chunk.len());
            self.prefix[self.prefix_filled..self.prefix_filled + wanted]
                .copy_from_slice(&chunk[..wanted]);
            self.prefix_filled += wanted;
            chunk.advance(wanted);
            if self.prefix_filled == PREFIX_LEN {
                self.prefix_filled = 0;
                let length = u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]);
                if u64::from(length) > self.max_message_bytes as u64 {
                    return Err(Status::resource_exhausted(format!(
                        "Request message is larger than {} bytes",
                        self.max_message_bytes
                    )));
                }
                self.payload_left = u64::from(length);
            }
        }
        Ok(())
    }
}

impl http_body::Body for CappedMessages {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let frame = ready!(Pin::new(&mut this.body).poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
            && let Err(status) = this.inspect(data)
        {
            return Poll::Ready(Some(Err(status)));
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
}

/// The message that replaces hidden internal error messages.
const HIDDEN_MESSAGE: &str = "An error occurred";

/// A proxied response body: ends with UNAUTHENTICATED when the token expires, and hides the
/// messages of internal errors in its trailers (see the module docs).
#[derive(Debug)]
pub struct GuardedResponse {
    body: Body,
    token_expiry: Pin<Box<tokio::time::Sleep>>,
    expose_internal_errors: bool,
    ended: bool,
}

impl GuardedResponse {
    /// Guards `body`, which must end by the time `token_expiry` fires.
    pub fn new(body: Body, token_expiry: tokio::time::Sleep, expose_internal_errors: bool) -> Self {
        Self {
            body,
            token_expiry: Box::pin(token_expiry),
            expose_internal_errors,
            ended: false,
        }
    }
}

impl http_body::Body for GuardedResponse {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            if let Some(Err(status)) = &frame {
                this.ended = true;
                let mut trailers = status_trailers(status);
                hide_internal_message(&mut trailers, this.expose_internal_errors);
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
            return Poll::Ready(frame.map(|frame| {
                frame.map(|frame| match frame.into_trailers() {
                    Ok(mut trailers) => {
                        this.ended = true;
                        hide_internal_message(&mut trailers, this.expose_internal_errors);
                        Frame::trailers(trailers)
                    }
                    Err(frame) => frame,
                })
            }));
        }
        ready!(this.token_expiry.as_mut().poll(cx));
        // The token lapsed mid-stream: the upstream call is dropped (and so cancelled) with
        // the body, and the client hears why its stream ended.
        this.ended = true;
        this.body = Body::empty();
        let mut trailers = HeaderMap::new();
        trailers.insert(
            "grpc-status",
            http::HeaderValue::from(tonic::Code::Unauthenticated as i32),
        );
        trailers.insert(
            "grpc-message",
            http::HeaderValue::from_static("Token has expired"),
        );
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.is_end_stream()
    }
}

/// `status` as gRPC trailers (`grpc-status`, `grpc-message`, details).
fn status_trailers(status: &Status) -> HeaderMap {
    let answer = status.clone().into_http::<Body>();
    answer
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("grpc-"))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

/// Replaces the `grpc-message` of an INTERNAL, UNKNOWN or DATA_LOSS status in `headers`
/// (trailers, or the headers of a trailers-only response) and drops its details, unless
/// `expose` is set; the original is logged.
pub fn hide_internal_message(headers: &mut HeaderMap, expose: bool) {
    let code = headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map(tonic::Code::from);
    if expose
        || !matches!(
            code,
            Some(tonic::Code::Internal | tonic::Code::Unknown | tonic::Code::DataLoss)
        )
    {
        return;
    }
    tracing::warn!(
        code = ?code,
        message = ?headers.get("grpc-message"),
        "upstream call failed; its message is hidden from the client"
    );
    headers.insert(
        "grpc-message",
        http::HeaderValue::from_static(HIDDEN_MESSAGE),
    );
    headers.remove("grpc-status-details-bin");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(length: u32) -> Vec<u8> {
        let mut frame = vec![0];
        frame.extend_from_slice(&length.to_be_bytes());
        frame
    }

    #[test]
    fn messages_within_the_cap_pass_whatever_the_chunking() {
        let mut stream = framed(3);
        stream.extend_from_slice(b"abc");
        stream.extend_from_slice(&framed(10));
        stream.extend_from_slice(&[7; 10]);
        let mut capped = CappedMessages::new(Body::empty(), 10);
        for byte in &stream {
            assert!(capped.inspect(std::slice::from_ref(byte)).is_ok());
        }
        let mut capped = CappedMessages::new(Body::empty(), 10);
        assert!(capped.inspect(&stream).is_ok());
    }

    #[test]
    fn a_message_over_the_cap_fails_at_its_prefix() {
        let mut capped = CappedMessages::new(Body::empty(), 10);
        let mut stream = framed(2);
        stream.extend_from_slice(b"ok");
        stream.extend_from_slice(&framed(11)[..3]);
        assert!(
            capped.inspect(&stream).is_ok(),
            "the prefix is not complete yet"
        );
        let status = capped.inspect(&framed(11)[3..]).expect_err("over the cap");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert_eq!(status.message(), "Request message is larger than 10 bytes");
    }

    /// A body that fails at once with `status`.
    struct Failing(Option<Status>);

    impl http_body::Body for Failing {
        type Data = Bytes;
        type Error = Status;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
            Poll::Ready(self.get_mut().0.take().map(Err))
        }
    }

    #[tokio::test]
    async fn a_failed_upstream_body_ends_with_its_status_as_trailers() {
        use http_body_util::BodyExt;
        let lost = Status::unavailable("the connection to the service was lost; try again");
        let mut guarded = GuardedResponse::new(
            Body::new(Failing(Some(lost))),
            tokio::time::sleep(std::time::Duration::from_secs(60)),
            false,
        );
        let frame = guarded
            .frame()
            .await
            .expect("a frame")
            .expect("trailers, not an error");
        let trailers = frame.into_trailers().expect("trailers");
        assert_eq!(trailers["grpc-status"], "14");
        assert!(guarded.frame().await.is_none(), "the response ended");
    }

    #[test]
    fn internal_messages_are_hidden_unless_exposed() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "13".parse().expect("a header value"));
        trailers.insert(
            "grpc-message",
            "pool timed out on db-3".parse().expect("a header value"),
        );
        trailers.insert(
            "grpc-status-details-bin",
            "AAAA".parse().expect("a header value"),
        );
        let mut exposed = trailers.clone();
        hide_internal_message(&mut exposed, true);
        assert_eq!(exposed, trailers);
        hide_internal_message(&mut trailers, false);
        assert_eq!(trailers["grpc-message"], HIDDEN_MESSAGE);
        assert!(!trailers.contains_key("grpc-status-details-bin"));

        let mut not_found = HeaderMap::new();
        not_found.insert("grpc-status", "5".parse().expect("a header value"));
        not_found.insert(
            "grpc-message",
            "Company not found".parse().expect("a header value"),
        );
        let before = not_found.clone();
        hide_internal_message(&mut not_found, false);
        assert_eq!(not_found, before);
    }
}
