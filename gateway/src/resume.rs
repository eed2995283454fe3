//! Server streams that outlive their replica.
//!
//! A watch held by the gateway (Server-Sent Events, gRPC, gRPC-Web, Connect: every protocol
//! reaches a service through [`crate::upstream::UpstreamChannel`]) is reopened on another
//! replica when the one serving it dies or drains, below the protocol layer: the client's
//! response keeps streaming, without a gap, an error or a repeated message. Which streams can
//! be reopened is read from the descriptors ([`ResumePlans`]):
//!
//! - **by event id**: a server-streaming method whose request has a top-level `after_event_id`
//!   and whose response has an `event_id` (the conventions of [`crate::event_ids`], which
//!   the REST layer's SSE ids follow too; e.g. `WatchTasks`): it is reopened with
//!   `after_event_id` set to the `event_id` of the last message forwarded, so the service
//!   sends exactly what came after;
//! - **by subscribing again**: another server-streaming method marked `NO_SIDE_EFFECTS` whose
//!   messages are each a whole state (e.g. `WatchJob`): it is reopened as it was first sent,
//!   and a first message identical to the last one forwarded is skipped.
//!
//! When is a stream reopened: when its connection fails mid-stream (a crashed replica: the
//! body fails), or when it ends — cleanly or UNAVAILABLE — and its replica has left the
//! rotation within [`DRAIN_GRACE`] (a draining replica ends its streams and sends GOAWAY at
//! about the same moment). A stream a service ends on its own (a finished job) therefore ends
//! [`DRAIN_GRACE`] later than it did. Reopening is tried [`REOPEN_ATTEMPTS`] times with a
//! short backoff; after that a failed stream fails UNAVAILABLE and a cleanly ended one ends
//! as the service ended it (the client may reconnect with its last event id).
//!
//! A reopened stream is authorized afresh: the internal token sent first lives
//! `INTERNAL_TOKEN_TTL_MS` (a minute), a watch much longer. The caller's handler attaches a
//! [`Reauthorize`] extension that mints a new one for the same caller (the client's own token
//! still bounds the stream: the gateway ends it when that expires).
//!
//! A reopenable stream is asked for uncompressed messages (`grpc-accept-encoding` is not
//! passed on), so their event ids can be read; a stream whose request is itself compressed is
//! not reopened.
//!
//! Messages are forwarded whole (a message cut by a lost connection is dropped: the reopened
//! stream sends it again), so the frames a client reads are re-chunked at message boundaries.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use director_platform::balance::{Balanced, ServedBy, clone_head, failure};
use futures::future::BoxFuture;
use http::HeaderMap;
use http_body::Frame;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use prost::Message;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    Value,
};
use prost_types::method_options::IdempotencyLevel;
use tonic::Status;
use tonic::body::Body;
use tower::ServiceExt;

use crate::event_ids::{AFTER_EVENT_ID_FIELD, EVENT_ID_FIELD, convention_field, event_id};

/// How long a stream that ended waits for its replica to be seen leaving.
pub const DRAIN_GRACE: Duration = Duration::from_millis(300);
/// How many times a stream is reopened in a row before the client hears about it.
pub const REOPEN_ATTEMPTS: u32 = 3;
/// The wait before the second reopening attempt (doubled for the next).
const REOPEN_BACKOFF: Duration = Duration::from_millis(100);
/// The largest request of a reopenable stream (one message; kept to send again).
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Length of a gRPC message prefix.
const PREFIX_LEN: usize = 5;

/// Mints the `authorization` of a reopened stream, for the caller it was first opened for
/// (a request extension; see the module docs).
#[derive(Clone)]
pub struct Reauthorize(Arc<dyn Fn() -> Option<http::HeaderValue> + Send + Sync>);

impl Reauthorize {
    /// Reauthorizes with what `mint` returns (`None`: the first authorization is kept).
    pub fn new(mint: impl Fn() -> Option<http::HeaderValue> + Send + Sync + 'static) -> Self {
        Self(Arc::new(mint))
    }
}

impl std::fmt::Debug for Reauthorize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reauthorize")
    }
}

/// The head of a request to send again, with a fresh authorization when it carries a
/// [`Reauthorize`].
fn reauthorized(head: &http::request::Parts) -> http::request::Parts {
    let mut head = clone_head(head);
    let fresh = head
        .extensions
        .get::<Reauthorize>()
        .and_then(|reauthorize| (reauthorize.0)());
    if let Some(authorization) = fresh {
        head.headers
            .insert(http::header::AUTHORIZATION, authorization);
    }
    head
}

/// How a stream is reopened.
#[derive(Debug)]
enum Plan {
    /// With `after` set to the `event_id` of the last message forwarded.
    AfterEventId {
        request: MessageDescriptor,
        after: FieldDescriptor,
        response: MessageDescriptor,
        id_field: FieldDescriptor,
    },
    /// As first sent; a repeat of the last message forwarded is skipped.
    Resubscribe,
}

/// The reopenable streams, by path (`/package.Service/Method`).
#[derive(Debug, Clone, Default)]
pub struct ResumePlans {
    by_path: Arc<HashMap<String, Arc<Plan>>>,
}

impl ResumePlans {
    /// The reopenable server streams of `descriptors` (see the module docs).
    pub fn from_descriptors(descriptors: &DescriptorPool) -> Self {
        let by_path = descriptors
            .services()
            .flat_map(|service| service.methods().collect::<Vec<_>>())
            .filter(|method| method.is_server_streaming() && !method.is_client_streaming())
            .filter_map(|method| {
                let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
                plan_for(&method).map(|plan| (path, Arc::new(plan)))
            })
            .collect();
        Self {
            by_path: Arc::new(by_path),
        }
    }

    fn get(&self, path: &str) -> Option<Arc<Plan>> {
        self.by_path.get(path).cloned()
    }

    /// Whether the stream at `path` is reopened when its replica goes away.
    pub fn resumes(&self, path: &str) -> bool {
        self.by_path.contains_key(path)
    }
}

fn plan_for(method: &MethodDescriptor) -> Option<Plan> {
    let request = method.input();
    let response = method.output();
    if let (Some(after), Some(id_field)) = (
        convention_field(&request, AFTER_EVENT_ID_FIELD),
        convention_field(&response, EVENT_ID_FIELD),
    ) {
        return Some(Plan::AfterEventId {
            request,
            after,
            response,
            id_field,
        });
    }
    let level = method
        .method_descriptor_proto()
        .options
        .as_ref()
        .map(prost_types::MethodOptions::idempotency_level);
    (level == Some(IdempotencyLevel::NoSideEffects)).then_some(Plan::Resubscribe)
}

/// An upstream's channel: balanced over its replicas, reopenable streams reopened.
#[derive(Debug, Clone)]
pub struct Resuming {
    channel: Balanced,
    plans: ResumePlans,
}

impl Resuming {
    /// `channel`, with the streams of `plans` reopened when their replica goes away.
    pub fn new(channel: Balanced, plans: ResumePlans) -> Self {
        Self { channel, plans }
    }
}

impl tower::Service<http::Request<Body>> for Resuming {
    type Response = http::Response<Body>;
    type Error = Status;
    type Future = BoxFuture<'static, Result<http::Response<Body>, Status>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        tower::Service::<http::Request<Body>>::poll_ready(&mut self.channel, cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let channel = self.channel.clone();
        match self.plans.get(request.uri().path()) {
            Some(plan) => Box::pin(open(channel, plan, request)),
            None => Box::pin(channel.oneshot(request)),
        }
    }
}

/// Whether a response is trailers-only: the call failed before any message.
fn is_trailers_only(response: &http::Response<Body>) -> bool {
    response.headers().contains_key("grpc-status")
}

async fn open(
    channel: Balanced,
    plan: Arc<Plan>,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, Status> {
    let (mut head, body) = request.into_parts();
    // Uncompressed answers, so that each message's event id can be read (compressing is the
    // service's option, never an obligation).
    head.headers.remove("grpc-accept-encoding");
    let request_bytes = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return Err(match error.downcast::<Status>() {
                Ok(status) => *status,
                Err(_) => Status::resource_exhausted(format!(
                    "A streaming request is larger than {MAX_REQUEST_BYTES} bytes"
                )),
            });
        }
    };
    let response = channel
        .clone()
        .oneshot(http::Request::from_parts(
            clone_head(&head),
            Body::new(Full::new(request_bytes.clone())),
        ))
        .await?;
    // A compressed request cannot be rewritten to continue after an event: not reopened.
    let compressed = request_bytes.first().is_some_and(|flag| *flag != 0);
    if is_trailers_only(&response) || compressed {
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let stream = Stream {
        served: parts.extensions.get::<ServedBy>().cloned(),
        channel,
        plan,
        head,
        request: request_bytes,
        body,
        buffer: BytesMut::new(),
        last_event_id: None,
        last_message: None,
        skip_repeat: false,
    };
    let frames = futures::stream::unfold(Some(stream), |stream| async move {
        let mut stream = stream?;
        match stream.next().await {
            Next::Frame(frame) => Some((frame, Some(stream))),
            Next::Last(frame) => Some((frame, None)),
        }
    });
    Ok(http::Response::from_parts(
        parts,
        Body::new(StreamBody::new(frames)),
    ))
}

/// What a reopenable stream yields next.
enum Next {
    Frame(Result<Frame<Bytes>, Status>),
    Last(Result<Frame<Bytes>, Status>),
}

/// What an attempt to reopen came to.
enum Reopened {
    Yes,
    /// The service answered the reopened call with an error: the client's answer.
    Refused(HeaderMap),
    No,
}

/// One reopenable stream.
struct Stream {
    channel: Balanced,
    plan: Arc<Plan>,
    head: http::request::Parts,
    /// The request as first sent (one framed message).
    request: Bytes,
    body: Body,
    served: Option<ServedBy>,
    /// Bytes of a message not complete yet.
    buffer: BytesMut,
    last_event_id: Option<String>,
    last_message: Option<Bytes>,
    skip_repeat: bool,
}

impl Stream {
    async fn next(&mut self) -> Next {
        loop {
            if let Some(message) = next_message(&mut self.buffer) {
                if std::mem::take(&mut self.skip_repeat)
                    && self.last_message.as_ref() == Some(&message)
                {
                    continue;
                }
                self.forwarded(&message);
                return Next::Frame(Ok(Frame::data(message)));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.buffer.extend_from_slice(&data),
                    Err(frame) => {
                        let Ok(trailers) = frame.into_trailers() else {
                            continue;
                        };
                        let code = trailers
                            .get("grpc-status")
                            .and_then(|value| value.to_str().ok())
                            .and_then(|value| value.parse::<i32>().ok())
                            .map(tonic::Code::from);
                        let drained =
                            matches!(code, Some(tonic::Code::Ok | tonic::Code::Unavailable))
                                && went_away(self.served.clone()).await;
                        if drained {
                            match self.reopen().await {
                                Reopened::Yes => continue,
                                Reopened::Refused(answer) => {
                                    return Next::Last(Ok(Frame::trailers(answer)));
                                }
                                Reopened::No => {}
                            }
                        }
                        return Next::Last(Ok(Frame::trailers(trailers)));
                    }
                },
                // The connection failed mid-stream (a service's own errors are trailers), or
                // the stream stopped without trailers: cut.
                lost @ (Some(Err(_)) | None) => {
                    tracing::info!(
                        path = self.head.uri.path(),
                        "a stream lost its replica; reopening it"
                    );
                    match self.reopen().await {
                        Reopened::Yes => continue,
                        Reopened::Refused(answer) => {
                            return Next::Last(Ok(Frame::trailers(answer)));
                        }
                        Reopened::No => {
                            let status = match lost {
                                Some(Err(status)) => status,
                                _ => failure::connection_lost(),
                            };
                            return Next::Last(Err(status));
                        }
                    }
                }
            }
        }
    }

    /// Notes what the client has received.
    fn forwarded(&mut self, message: &Bytes) {
        match &*self.plan {
            Plan::AfterEventId {
                response, id_field, ..
            } => {
                // A compressed message cannot be read here; the next event id read counts.
                if message[0] == 0
                    && let Ok(decoded) =
                        DynamicMessage::decode(response.clone(), &message[PREFIX_LEN..])
                    && let Some(id) = event_id(&decoded, id_field)
                {
                    self.last_event_id = Some(id);
                }
            }
            Plan::Resubscribe => self.last_message = Some(message.clone()),
        }
    }

    /// Opens the stream again on another replica, from where the client is.
    async fn reopen(&mut self) -> Reopened {
        self.buffer.clear();
        let request = continue_after(&self.plan, &self.request, self.last_event_id.as_deref());
        let mut backoff = REOPEN_BACKOFF;
        for attempt in 0..REOPEN_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            let reopened = self
                .channel
                .clone()
                .oneshot(http::Request::from_parts(
                    reauthorized(&self.head),
                    Body::new(Full::new(request.clone())),
                ))
                .await;
            let Ok(response) = reopened else {
                continue;
            };
            if is_trailers_only(&response) {
                let unavailable = response.headers().get("grpc-status").map(|v| v.as_bytes())
                    == Some(b"14".as_slice());
                if unavailable {
                    continue;
                }
                let status = response
                    .headers()
                    .iter()
                    .filter(|(name, _)| name.as_str().starts_with("grpc-"))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect();
                return Reopened::Refused(status);
            }
            let (parts, body) = response.into_parts();
            self.served = parts.extensions.get::<ServedBy>().cloned();
            self.body = body;
            self.skip_repeat = matches!(*self.plan, Plan::Resubscribe);
            metrics::counter!("gateway_streams_reopened_total").increment(1);
            return Reopened::Yes;
        }
        Reopened::No
    }
}

/// Whether the replica that served a stream has left the rotation (within [`DRAIN_GRACE`]).
async fn went_away(served: Option<ServedBy>) -> bool {
    match served {
        Some(served) => served.went_away_within(DRAIN_GRACE).await,
        None => false,
    }
}

/// The next whole message (prefix included) of `buffer`, taken out of it.
fn next_message(buffer: &mut BytesMut) -> Option<Bytes> {
    if buffer.len() < PREFIX_LEN {
        return None;
    }
    let length = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
    (buffer.len() >= PREFIX_LEN + length).then(|| buffer.split_to(PREFIX_LEN + length).freeze())
}

/// The request (`request`, one framed message) that continues a stream after event `last`:
/// with `after_event_id` set to it when the plan resumes by event id and an event was
/// forwarded; else the request as first sent.
fn continue_after(plan: &Plan, request: &Bytes, last: Option<&str>) -> Bytes {
    let (
        Plan::AfterEventId {
            request: descriptor,
            after,
            ..
        },
        Some(last),
    ) = (plan, last)
    else {
        return request.clone();
    };
    if request.len() < PREFIX_LEN || request[0] != 0 {
        return request.clone();
    }
    let Ok(mut message) = DynamicMessage::decode(descriptor.clone(), &request[PREFIX_LEN..]) else {
        return request.clone();
    };
    let Some(value) = field_value(after, last) else {
        return request.clone();
    };
    message.set_field(after, value);
    let encoded = message.encode_to_vec();
    let mut framed = BytesMut::with_capacity(PREFIX_LEN + encoded.len());
    framed.extend_from_slice(&[0]);
    framed.extend_from_slice(
        &u32::try_from(encoded.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    framed.extend_from_slice(&encoded);
    framed.freeze()
}

/// An event id as the value of the request's `after_event_id` field.
fn field_value(field: &FieldDescriptor, id: &str) -> Option<Value> {
    Some(match field.kind() {
        Kind::String => Value::String(id.to_owned()),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(id.parse().ok()?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(id.parse().ok()?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(id.parse().ok()?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(id.parse().ok()?),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> DescriptorPool {
        DescriptorPool::decode(director_proto::FILE_DESCRIPTOR_SET).expect("the descriptors")
    }

    fn framed(message: &impl Message) -> Bytes {
        let encoded = message.encode_to_vec();
        let mut framed = vec![0];
        framed.extend_from_slice(&u32::try_from(encoded.len()).unwrap_or(0).to_be_bytes());
        framed.extend_from_slice(&encoded);
        Bytes::from(framed)
    }

    #[test]
    fn watches_resume_by_event_id_or_by_subscribing_again_and_nothing_else_does() {
        let plans = ResumePlans::from_descriptors(&pool());
        assert!(matches!(
            plans
                .get("/director.dispatch.v1.TasksService/WatchTasks")
                .as_deref(),
            Some(Plan::AfterEventId { .. })
        ));
        assert!(matches!(
            plans
                .get("/director.integrations.v1.JobsService/WatchJob")
                .as_deref(),
            Some(Plan::Resubscribe)
        ));
        assert!(!plans.resumes("/director.dispatch.v1.TasksService/ListTasks"));
        assert!(!plans.resumes("/director.dispatch.v1.TasksService/CreateTask"));
    }

    #[test]
    fn a_reopened_watch_asks_for_what_came_after_the_last_event_forwarded() {
        use director_proto::dispatch::WatchTasksRequest;
        let plans = ResumePlans::from_descriptors(&pool());
        let plan = plans
            .get("/director.dispatch.v1.TasksService/WatchTasks")
            .expect("a plan");
        let first = framed(&WatchTasksRequest {
            after_event_id: String::new(),
        });
        assert_eq!(continue_after(&plan, &first, None), first, "no event yet");
        let mut again = BytesMut::from(&continue_after(&plan, &first, Some("42"))[..]);
        let message = next_message(&mut again).expect("one whole message");
        assert!(again.is_empty());
        let request = WatchTasksRequest::decode(&message[PREFIX_LEN..]).expect("a request");
        assert_eq!(request.after_event_id, "42");
    }

    #[test]
    fn messages_are_taken_whole_whatever_the_chunks() {
        let mut buffer = BytesMut::new();
        buffer.extend_from_slice(&[0, 0, 0, 0, 3, b'a']);
        assert_eq!(next_message(&mut buffer), None, "two bytes missing");
        buffer.extend_from_slice(b"bc\0\0\0\0\0");
        assert_eq!(
            next_message(&mut buffer).as_deref(),
            Some(&b"\0\0\0\0\x03abc"[..])
        );
        assert_eq!(
            next_message(&mut buffer).as_deref(),
            Some(&b"\0\0\0\0\0"[..])
        );
        assert!(buffer.is_empty());
    }
}
