//! gRPC services the gateway answers itself: server reflection (v1 and v1alpha), so
//! `grpcurl -plaintext localhost:8080 list` shows every service the gateway routes (and only
//! those: service-to-service APIs are not listed), and `grpc.health.v1.Health` for the
//! gateway process. Both are public.
//!
//! Reflection knows only the files of the routed (public) services and what they import, so
//! internal packages cannot be described by symbol or file name either; a reflection stream
//! takes at most `max_reflection_requests` requests and answers at most
//! `max_reflection_bytes`, then ends with RESOURCE_EXHAUSTED ([`LimitedReflection`],
//! [`CappedReflectionAnswers`]). `Health/Watch` is not served through the gateway (a held
//! watch costs a stream for nothing a probe needs).

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::Frame;
use prost::Message as _;
use tonic::Status;
use tonic::body::Body;

use crate::limits::StreamPermit;

/// The health watch path, refused through the gateway.
pub const HEALTH_WATCH: &str = "/grpc.health.v1.Health/Watch";

use prost_reflect::DescriptorPool;
use tonic::service::Routes;
use tonic_health::server::HealthReporter;

/// Whether a gRPC path belongs to a locally served, public service.
pub fn is_local(path: &str) -> bool {
    path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
        || path.starts_with("/grpc.health.v1.Health/")
}

/// Whether a gRPC path is a reflection stream.
pub fn is_reflection(path: &str) -> bool {
    path.starts_with("/grpc.reflection.")
}

/// The files declaring `routed` services and, transitively, the files they import, encoded
/// as one `FileDescriptorSet`: what reflection may describe.
fn public_files<'a>(pool: &DescriptorPool, routed: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut seen = HashSet::new();
    let mut pending: Vec<prost_reflect::FileDescriptor> = routed
        .into_iter()
        .filter_map(|name| pool.get_service_by_name(name))
        .map(|service| service.parent_file())
        .collect();
    let mut files = Vec::new();
    while let Some(file) = pending.pop() {
        if !seen.insert(file.name().to_owned()) {
            continue;
        }
        pending.extend(file.dependencies());
        files.push(file.file_descriptor_proto().clone());
    }
    prost_types::FileDescriptorSet { file: files }.encode_to_vec()
}

/// Reflection listing `routed` services (full names) and health, as tonic routes, and the
/// health reporter (overall status `""` starts SERVING; set NOT_SERVING when shutting down).
pub fn local_services<'a>(
    pool: &DescriptorPool,
    routed: impl IntoIterator<Item = &'a str> + Clone,
) -> anyhow::Result<(Routes, HealthReporter)> {
    let encoded = public_files(pool, routed.clone());
    let builder = || {
        routed
            .clone()
            .into_iter()
            .chain(["grpc.health.v1.Health"])
            .fold(
                tonic_reflection::server::Builder::configure()
                    .register_encoded_file_descriptor_set(&encoded)
                    .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
                |builder, name| builder.with_service_name(name),
            )
    };
    let reflection_v1 = builder().build_v1()?;
    let reflection_v1alpha = builder().build_v1alpha()?;
    let (reporter, health) = tonic_health::server::health_reporter();
    let routes = Routes::new(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(health)
        .prepare();
    Ok((routes, reporter))
}

/// Set by [`LimitedReflection`] when a stream asked more than it may, read by
/// [`CappedReflectionAnswers`] to end the answers with RESOURCE_EXHAUSTED.
pub type Exceeded = Arc<AtomicBool>;

/// A reflection request stream cut after `max_messages` requests (gRPC length-prefixed
/// messages are counted as they pass): the service answers those, then sees the stream end.
#[derive(Debug)]
pub struct LimitedReflection {
    inner: Body,
    max_messages: usize,
    messages: usize,
    /// Bytes left of the current message's body, once its 5-byte prefix was read.
    remaining: usize,
    /// The prefix read so far.
    prefix: Vec<u8>,
    exceeded: Exceeded,
}

impl LimitedReflection {
    /// `inner`, allowed `max_messages` messages; `exceeded` is set when it asks for more.
    pub fn new(inner: Body, max_messages: usize, exceeded: Exceeded) -> Self {
        Self {
            inner,
            max_messages,
            messages: 0,
            remaining: 0,
            prefix: Vec::with_capacity(5),
            exceeded,
        }
    }

    /// How many bytes of `data` belong to allowed messages (all of it unless a message past
    /// the limit starts in it).
    fn allowed(&mut self, data: &[u8]) -> usize {
        let mut offset = 0;
        while offset < data.len() {
            if self.remaining > 0 {
                let skip = self.remaining.min(data.len() - offset);
                self.remaining -= skip;
                offset += skip;
                continue;
            }
            if self.prefix.is_empty() && self.messages == self.max_messages {
                return offset;
            }
            let take = (5 - self.prefix.len()).min(data.len() - offset);
            self.prefix.extend_from_slice(&data[offset..offset + take]);
            offset += take;
            if self.prefix.len() == 5 {
                self.messages += 1;
                let length = u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]);
                self.remaining = length as usize;
                self.prefix.clear();
            }
        }
        offset
    }
}

impl http_body::Body for LimitedReflection {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.exceeded.load(Ordering::Acquire) {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                Ok(mut data) => {
                    let allowed = this.allowed(&data);
                    if allowed < data.len() {
                        this.exceeded.store(true, Ordering::Release);
                        data.truncate(allowed);
                    }
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.exceeded.load(Ordering::Acquire) || self.inner.is_end_stream()
    }
}

/// RESOURCE_EXHAUSTED trailers saying why.
fn exhausted_trailers(message: &str) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("8"));
    if let Ok(value) = http::HeaderValue::try_from(message) {
        trailers.insert("grpc-message", value);
    }
    trailers
}

/// A reflection answer stream that, past `max_bytes`, ends with RESOURCE_EXHAUSTED trailers
/// instead of more answers, and whose trailers say RESOURCE_EXHAUSTED when its requests were
/// cut; it holds the stream's place under the address' stream cap.
#[derive(Debug)]
pub struct CappedReflectionAnswers {
    inner: Body,
    max_bytes: usize,
    max_requests: usize,
    sent: usize,
    done: bool,
    exceeded: Exceeded,
    _permit: StreamPermit,
}

impl CappedReflectionAnswers {
    /// `inner`, allowed `max_bytes` of answers, holding `permit` until it ends; `exceeded`
    /// tells whether the requests were cut at `max_requests`.
    pub fn new(
        inner: Body,
        max_bytes: usize,
        max_requests: usize,
        exceeded: Exceeded,
        permit: StreamPermit,
    ) -> Self {
        Self {
            inner,
            max_bytes,
            max_requests,
            sent: 0,
            done: false,
            exceeded,
            _permit: permit,
        }
    }
}

impl http_body::Body for CappedReflectionAnswers {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) if frame.is_data() => {
                this.sent += frame.data_ref().map_or(0, Bytes::len);
                if this.sent > this.max_bytes {
                    this.done = true;
                    let message = format!(
                        "reflection answers are limited to {} bytes per stream",
                        this.max_bytes
                    );
                    return Poll::Ready(Some(Ok(Frame::trailers(exhausted_trailers(&message)))));
                }
            }
            Poll::Ready(Some(Ok(frame)))
                if frame.is_trailers() && this.exceeded.load(Ordering::Acquire) =>
            {
                this.done = true;
                let message = format!(
                    "at most {} reflection requests per stream",
                    this.max_requests
                );
                return Poll::Ready(Some(Ok(Frame::trailers(exhausted_trailers(&message)))));
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }
}
