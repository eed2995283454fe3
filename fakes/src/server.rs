//! What every fake shares: the listener task, the log of received requests, and the queue of
//! programmed faults that the next requests get instead of (or before) their normal answer.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Request bodies larger than this are refused with 413 (no client of the fakes sends more).
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// One request as the fake received it, before any fault or handler ran.
#[derive(Debug, Clone)]
pub struct ReceivedRequest {
    /// `GET`, `POST`, ...
    pub method: Method,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Every header as received (`authorization` included: these are fake credentials).
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Bytes,
    /// The body's fields when it was `application/x-www-form-urlencoded`, in order.
    pub form: Vec<(String, String)>,
}

impl ReceivedRequest {
    /// The header's value as text, when present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The first form field called `name`.
    pub fn form_field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The value of query parameter `name`, undecoded (the fakes' parameters are plain).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
    }
}

/// How a programmed 429 says when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP-date>`, the date being this long after the answer is sent. HTTP
    /// dates have whole-second precision, so the wait a client computes is up to a second
    /// shorter.
    DateIn(Duration),
}

impl RetryAfter {
    fn header_value(self) -> String {
        match self {
            Self::Seconds(seconds) => seconds.to_string(),
            Self::DateIn(delay) => httpdate::fmt_http_date(SystemTime::now() + delay),
        }
    }
}

/// One programmed misbehaviour, consumed by one request.
#[derive(Debug, Clone)]
enum Fault {
    Status(StatusCode),
    RateLimited(RetryAfter),
    Delay(Duration),
    Redirect(String),
    Garbage,
}

/// State shared between a running fake and its [`FakeServer`] handle.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    received: Mutex<Vec<ReceivedRequest>>,
    faults: Mutex<VecDeque<Fault>>,
}

/// Locks a mutex, recovering the data if a handler panicked while holding it (the fakes'
/// state stays meaningful: it is only ever appended to or popped from).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running fake: where it listens, what it received, and the knobs that make it misbehave.
///
/// Dropping the handle stops the server (in-flight answers are abandoned); [`Self::shutdown`]
/// stops it and waits.
///
/// Faults are queued: each `*_next` call appends entries, and each incoming request takes the
/// first one, so `fail_next(2, 503)` followed by `rate_limit_next(1, ..)` answers 503, 503,
/// 429, then normally.
pub struct FakeServer {
    name: &'static str,
    addr: SocketAddr,
    url: String,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeServer")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl FakeServer {
    /// Serves `routes` on `listener` behind the recording and fault layer. `path` is appended
    /// to `http://<addr>` to make [`Self::url`].
    pub(crate) fn spawn(
        name: &'static str,
        listener: TcpListener,
        path: &str,
        routes: Router,
        shutdown: CancellationToken,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let app = routes.layer(middleware::from_fn_with_state(
            (shared.clone(), shutdown.clone()),
            record_then_misbehave,
        ));
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::warn!(fake = name, %error, "fake server stopped with an error");
            }
        });
        Ok(Self {
            name,
            addr,
            url: format!("http://{addr}{path}"),
            shared,
            shutdown,
            task: Some(task),
        })
    }

    /// The URL to configure a client with (`VESSEY_API_URL`, `SLACK_WEBHOOK_URL`,
    /// `TWILIO_API_URL`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `http://<addr>`, for building other URLs on this server.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<ReceivedRequest> {
        lock(&self.shared.received).clone()
    }

    /// Forgets the requests received so far.
    pub fn clear_received(&self) {
        lock(&self.shared.received).clear();
    }

    /// The next `count` requests are answered `status` (normally a 5xx) with a JSON error body.
    pub fn fail_next(&self, count: usize, status: StatusCode) {
        self.push(count, Fault::Status(status));
    }

    /// The next `count` requests are answered 429 with this `Retry-After`.
    pub fn rate_limit_next(&self, count: usize, retry_after: RetryAfter) {
        self.push(count, Fault::RateLimited(retry_after));
    }

    /// The next `count` requests get their normal answer, `delay` late.
    pub fn delay_next(&self, count: usize, delay: Duration) {
        self.push(count, Fault::Delay(delay));
    }

    /// The next request is answered `302 Found` with `Location: location`.
    pub fn redirect_next(&self, location: impl Into<String>) {
        self.push(1, Fault::Redirect(location.into()));
    }

    /// The next `count` requests are answered 200 with a body that is not JSON.
    pub fn garbage_next(&self, count: usize) {
        self.push(count, Fault::Garbage);
    }

    /// Drops every fault not yet consumed.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    fn push(&self, count: usize, fault: Fault) {
        let mut faults = lock(&self.shared.faults);
        faults.extend(std::iter::repeat_n(fault, count));
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            // A panicked server task has nothing left to clean up.
            let _ = task.await;
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The outer layer of every fake: logs the request, then applies the next programmed fault,
/// if any, before (or instead of) the route.
async fn record_then_misbehave(
    State((shared, shutdown)): State<(Arc<Shared>, CancellationToken)>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
        Ok(body) => body,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
    };
    let form = form_fields(&parts.headers, &body).await;
    lock(&shared.received).push(ReceivedRequest {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body: body.clone(),
        form,
    });
    let request = Request::from_parts(parts, Body::from(body));

    let fault = lock(&shared.faults).pop_front();
    match fault {
        None => next.run(request).await,
        Some(Fault::Status(status)) => error_json(status, "injected failure"),
        Some(Fault::RateLimited(retry_after)) => rate_limited(retry_after),
        Some(Fault::Redirect(location)) => redirect(&location),
        Some(Fault::Garbage) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "<html>definitely not json",
        )
            .into_response(),
        Some(Fault::Delay(delay)) => {
            if sleep_unless_shutdown(delay, &shutdown).await {
                next.run(request).await
            } else {
                error_json(StatusCode::SERVICE_UNAVAILABLE, "fake shutting down")
            }
        }
    }
}

/// The form fields of a urlencoded body; empty for any other body.
async fn form_fields(headers: &HeaderMap, body: &Bytes) -> Vec<(String, String)> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Vec::new();
    }
    let mut request = Request::new(Body::from(body.clone()));
    *request.method_mut() = Method::POST;
    request.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    axum::Form::<Vec<(String, String)>>::from_request(request, &())
        .await
        .map(|axum::Form(fields)| fields)
        .unwrap_or_default()
}

/// Sleeps for `delay`; false when the fake was shut down first.
pub(crate) async fn sleep_unless_shutdown(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = shutdown.cancelled() => false,
    }
}

/// `status` with `{"error": message}`.
pub(crate) fn error_json(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// 429 with the given `Retry-After`.
pub(crate) fn rate_limited(retry_after: RetryAfter) -> Response {
    let mut response = error_json(StatusCode::TOO_MANY_REQUESTS, "rate limited");
    if let Ok(value) = HeaderValue::from_str(&retry_after.header_value()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// 302 to `location`.
pub(crate) fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::FOUND, [(header::LOCATION, value)]).into_response(),
        Err(_) => error_json(
            StatusCode::INTERNAL_SERVER_ERROR,
            "unusable redirect target",
        ),
    }
}
