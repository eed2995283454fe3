//! A Connect request stream re-framed as a gRPC one as it arrives: each envelope is checked
//! against the message cap from its prefix, decompressed (`Connect-Content-Encoding: gzip`),
//! converted to protobuf when the call is JSON, and passed on as a gRPC message at once — a
//! bidirectional call (buf curl's reflection, for one) gets its answers before it closes its
//! side. A malformed stream fails the body with a status the proxy answers with.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::Frame;
use prost_reflect::MessageDescriptor;
use tonic::Status;

use super::codec::{Codec, gunzip};
use super::envelope::{self, COMPRESSED, END_STREAM, Frames};

/// The request body of a streaming Connect call, as gRPC.
pub(crate) struct RequestStream {
    body: axum::body::Body,
    frames: Frames,
    codec: Codec,
    input: MessageDescriptor,
    gzipped: bool,
    max_message_bytes: usize,
    failed: bool,
}

impl RequestStream {
    /// Re-frames `body`, whose messages are `input`s in `codec`, compressed when `gzipped`.
    pub(crate) fn new(
        body: axum::body::Body,
        codec: Codec,
        input: MessageDescriptor,
        gzipped: bool,
        max_message_bytes: usize,
    ) -> Self {
        Self {
            body,
            frames: Frames::default(),
            codec,
            input,
            gzipped,
            max_message_bytes,
            failed: false,
        }
    }

    /// The gRPC messages of the envelopes complete so far.
    fn messages(&mut self) -> Result<BytesMut, Status> {
        if let Some(length) = self.frames.pending_length()
            && length > self.max_message_bytes
        {
            return Err(Status::resource_exhausted(format!(
                "Request message is larger than {} bytes",
                self.max_message_bytes
            )));
        }
        let mut out = BytesMut::new();
        while let Some(frame) = self.frames.next_frame() {
            if frame.flags & END_STREAM != 0 {
                return Err(Status::invalid_argument(
                    "A request stream carries no end-of-stream message",
                ));
            }
            let message = if frame.flags & COMPRESSED == 0 {
                frame.payload
            } else if self.gzipped {
                gunzip(&frame.payload, self.max_message_bytes).map_err(to_status)?
            } else {
                return Err(Status::invalid_argument(
                    "A message is flagged compressed but connect-content-encoding names no compression",
                ));
            };
            let message = self
                .codec
                .to_proto(message, &self.input)
                .map_err(to_status)?;
            envelope::put(&mut out, 0, &message);
        }
        Ok(out)
    }
}

fn to_status(error: super::error::ConnectError) -> Status {
    Status::new(error.code, error.message)
}

impl std::fmt::Debug for RequestStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestStream")
            .field("codec", &self.codec)
            .field("input", &self.input.full_name())
            .finish_non_exhaustive()
    }
}

impl http_body::Body for RequestStream {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        loop {
            if this.failed {
                return Poll::Ready(None);
            }
            let frame = match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) if this.frames.has_partial() => {
                    this.failed = true;
                    return Poll::Ready(Some(Err(Status::invalid_argument(
                        "The request stream ends inside a message",
                    ))));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some(Err(error))) => {
                    this.failed = true;
                    return Poll::Ready(Some(Err(Status::cancelled(format!(
                        "Could not read the request stream: {error}"
                    )))));
                }
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            this.frames.push(&data);
            match this.messages() {
                Ok(out) if out.is_empty() => {}
                Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out.freeze())))),
                Err(status) => {
                    this.failed = true;
                    return Poll::Ready(Some(Err(status)));
                }
            }
        }
    }
}
