//! The HTTP machinery every client shares: one `reqwest::Client` per provider that follows
//! same-origin redirects only, and [`Transport::send`], which runs one call with a per-attempt
//! timeout, a bounded body, and retries (backon: exponential backoff with jitter, or the
//! provider's `Retry-After`) on 5xx, 408, 429, timeouts and connection errors — never on other
//! 4xx.
//!
//! Nothing it produces holds a secret or a URL: reqwest's errors are described by kind
//! ([`describe`]), the provider's error message is cleaned by the client's [`Redactor`] before it
//! is kept, and every message leaving [`Transport::send`] (and the retry `warn!`) passes through
//! the redactor once more.
//!
//! Retrying a POST after a timeout or a dropped connection can deliver it twice (the provider
//! may have acted before the answer was lost). Twilio and Slack POSTs are retried anyway, on
//! 5xx, 429, timeouts and connection errors: a duplicate notification is judged better than a
//! lost one, and the integrations service records each delivery so a job-level retry does not
//! resend what already succeeded.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Client, RequestBuilder, Response, StatusCode, Url, redirect};

use serde::de::DeserializeOwned;

use crate::config::RetryPolicy;
use crate::egress::{EgressPolicy, EgressRefused, GuardedResolver, Purpose};
use crate::error::ProviderError;
use crate::redact::Redactor;

/// Redirects followed in one call at most (same origin only).
const MAX_REDIRECTS: usize = 5;
/// How much of an error answer is read to find the provider's message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
/// How much of the provider's message is kept.
const MESSAGE_LIMIT: usize = 300;

/// The largest answer accepted for a collections page.
pub(crate) const PAGE_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// The largest answer accepted for any other call.
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;

/// One call as the retry loop sees it.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// How messages name it: `"Vessey GET /drivers/7"`. Never holds a credential, a URL or an
    /// account identifier (Twilio's SID is part of its URL: the label says `Messages.json`).
    pub(crate) label: String,
    /// Per attempt, until the body is read.
    pub(crate) timeout: Duration,
    /// The largest successful body accepted.
    pub(crate) body_limit: usize,
}

/// A successful answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) body: Bytes,
}

/// One shared HTTP client (a reqwest `Client`: connection pool, TLS set-up) and, for tenants'
/// configurations, the egress guard it enforces. Cheap to clone: clones share the pool.
///
/// - [`HttpClient::operator`]: for the operator's configuration, from the environment. No
///   egress checks; proxy settings from the environment are honoured.
/// - [`HttpClient::guarded`]: for a tenant's configuration. Its DNS resolver refuses a name
///   when any address it resolves to is forbidden by the [`EgressPolicy`], a request to a
///   forbidden IP literal (or with a scheme, credentials or Slack host the policy refuses) is
///   refused before it is sent, and proxy settings from the environment are ignored (a proxy
///   resolves names itself, past the guard). Refusals are [`ProviderError::Refused`].
///
/// Both follow redirects within the original origin only.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: Client,
    guard: Option<Arc<EgressPolicy>>,
}

impl HttpClient {
    /// An unguarded client, for the operator's configuration.
    pub fn operator() -> Result<Self, ProviderError> {
        Ok(Self {
            client: build_client(None)?,
            guard: None,
        })
    }

    /// A client that enforces `policy`, for tenants' configurations.
    pub fn guarded(policy: EgressPolicy) -> Result<Self, ProviderError> {
        Self::guarded_by(Arc::new(policy))
    }

    pub(crate) fn guarded_by(policy: Arc<EgressPolicy>) -> Result<Self, ProviderError> {
        Ok(Self {
            client: build_client(Some(GuardedResolver::new(policy.as_ref().clone())))?,
            guard: Some(policy),
        })
    }

    /// The policy this client enforces; `None` for the operator's.
    pub fn policy(&self) -> Option<&EgressPolicy> {
        self.guard.as_deref()
    }
}

/// The two shared clients a process needs: build once at start-up and hand
/// [`Self::operator`] or [`Self::tenant`] to the clients' `new_with` constructors
/// (`VesseyClient::new_with(config, retry, clients.tenant())`), so every provider client
/// shares their connection pools instead of setting up TLS per call.
#[derive(Debug, Clone)]
pub struct HttpClients {
    operator: HttpClient,
    tenant: HttpClient,
    policy: Arc<EgressPolicy>,
}

impl HttpClients {
    /// The operator's client and a client guarded by `policy` for tenants.
    pub fn new(policy: EgressPolicy) -> Result<Self, ProviderError> {
        let policy = Arc::new(policy);
        Ok(Self {
            operator: HttpClient::operator()?,
            tenant: HttpClient::guarded_by(policy.clone())?,
            policy,
        })
    }

    /// For configurations from the environment: not guarded.
    pub fn operator(&self) -> &HttpClient {
        &self.operator
    }

    /// For configurations a tenant supplied: guarded.
    pub fn tenant(&self) -> &HttpClient {
        &self.tenant
    }

    /// The policy the tenants' client enforces (for checking settings when they are saved).
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }
}

/// A reqwest client following same-origin redirects only; with `resolver`, the guarded kind.
fn build_client(resolver: Option<GuardedResolver>) -> Result<Client, ProviderError> {
    let mut builder = Client::builder()
        .redirect(same_origin_redirects())
        .user_agent(concat!("director/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5));
    if let Some(resolver) = resolver {
        builder = builder.dns_resolver(resolver).no_proxy();
    }
    builder.build().map_err(|e| {
        ProviderError::Unavailable(format!("could not set up an HTTP client: {}", describe(&e)))
    })
}

/// A provider client's view of its [`HttpClient`]: what the calls are for (the Slack host
/// rule), its retry policy and the secrets its messages must not hold.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    http: HttpClient,
    purpose: Purpose,
    retry: RetryPolicy,
    redactor: Redactor,
}

impl Transport {
    /// A transport with a client of its own (unguarded), as before shared clients existed.
    pub(crate) fn new(
        purpose: Purpose,
        retry: RetryPolicy,
        redactor: Redactor,
    ) -> Result<Self, ProviderError> {
        let http = HttpClient::operator().map_err(|error| {
            ProviderError::Unavailable(format!("{error} (for {})", purpose_name(purpose)))
        })?;
        Ok(Self::with_http(&http, purpose, retry, redactor))
    }

    /// A transport on the shared `http` client (guarded or not).
    pub(crate) fn with_http(
        http: &HttpClient,
        purpose: Purpose,
        retry: RetryPolicy,
        redactor: Redactor,
    ) -> Self {
        Self {
            http: http.clone(),
            purpose,
            retry,
            redactor,
        }
    }

    /// The underlying client, to build requests with.
    pub(crate) fn client(&self) -> &Client {
        &self.http.client
    }

    /// With a guard: the reason `build`'s request may not be sent (checked once per call;
    /// redirects stay within its origin). Names are judged by the addresses they resolve to,
    /// in the client's resolver; this catches what never reaches it: IP literals (reqwest
    /// connects to them directly), and the scheme, credential and Slack host rules.
    fn refused(&self, build: &impl Fn() -> RequestBuilder) -> Option<String> {
        let policy = self.http.guard.as_deref()?;
        // A request that cannot be built is never sent either: the attempt reports it.
        let request = build().build().ok()?;
        policy
            .check_for_send(request.url(), self.purpose)
            .err()
            .map(|refused| refused.reason)
    }

    /// Sends the request `build` makes (once per attempt), retrying transient failures, and
    /// returns the 2xx answer's body.
    ///
    /// Failures: 404 → `NotFound("{label}: not found")` (callers may say it better); other
    /// non-retryable 4xx and refused redirects → `Rejected`; transient failures that outlast
    /// the retries → `Unavailable("{label} failed after N attempts: ...")`; oversized or
    /// unexpected answers → `InvalidResponse`. No message holds one of the client's secrets
    /// (see [`crate::redact`]), nor a URL.
    pub(crate) async fn send(
        &self,
        call: &Call,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Answer, ProviderError> {
        if let Some(reason) = self.refused(&build) {
            let refused = ProviderError::Refused(format!("{} refused: {reason}", call.label));
            return Err(self.redact_error(refused));
        }
        let attempts = AtomicU32::new(0);
        let policy = &self.retry;
        let outcome = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            attempt(
                build().timeout(call.timeout),
                call.body_limit,
                &self.redactor,
            )
            .await
        })
        .retry(backoff(policy))
        .when(AttemptError::is_transient)
        .adjust(|error, backoff| {
            // `None` means the attempts are used up; a Retry-After does not add one.
            backoff.map(|delay| match error.retry_after() {
                Some(asked) => asked.min(policy.retry_after_cap),
                None => delay.min(policy.max_delay),
            })
        })
        .notify(|error, delay| {
            let error = self.redactor.redact(&error.to_string());
            tracing::warn!(
                call = %call.label,
                %error,
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "third-party call failed; retrying"
            );
        })
        .await;
        outcome.map_err(|error| {
            let error = error.into_provider_error(call, attempts.load(Ordering::Relaxed));
            self.redact_error(error)
        })
    }

    /// The answer's body parsed as `T`; `InvalidResponse` naming the call otherwise (the parser's
    /// message may quote the body, so it is redacted too).
    pub(crate) fn parse_json<T: DeserializeOwned>(
        &self,
        call: &Call,
        answer: &Answer,
    ) -> Result<T, ProviderError> {
        serde_json::from_slice(&answer.body).map_err(|e| {
            self.redact_error(ProviderError::InvalidResponse(format!(
                "{}: unexpected answer: {e}",
                call.label
            )))
        })
    }

    /// What this client's messages must never hold, to clean text made outside the transport.
    pub(crate) fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// `error` with the client's secrets replaced in its message: the last line of defence,
    /// should any part of a message have picked one up.
    fn redact_error(&self, error: ProviderError) -> ProviderError {
        let redact = |text: String| self.redactor.redact(&text);
        match error {
            ProviderError::NotFound(m) => ProviderError::NotFound(redact(m)),
            ProviderError::Rejected { status, message } => ProviderError::Rejected {
                status,
                message: redact(message),
            },
            ProviderError::Unavailable(m) => ProviderError::Unavailable(redact(m)),
            ProviderError::InvalidResponse(m) => ProviderError::InvalidResponse(redact(m)),
            ProviderError::Refused(m) => ProviderError::Refused(redact(m)),
            other @ ProviderError::NotConfigured { .. } => other,
        }
    }
}

/// The backoff between attempts: `max_attempts - 1` retries.
fn backoff(policy: &RetryPolicy) -> ExponentialBuilder {
    let retries = policy.max_attempts.saturating_sub(1);
    ExponentialBuilder::default()
        .with_jitter()
        .with_factor(2.0)
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(usize::try_from(retries).unwrap_or(usize::MAX))
}

/// One try: send, check the status, read the body within `limit`; the provider's message in
/// an error answer is cleaned of `redactor`'s secrets.
async fn attempt(
    request: RequestBuilder,
    limit: usize,
    redactor: &Redactor,
) -> Result<Answer, AttemptError> {
    let mut response = request.send().await.map_err(AttemptError::from_reqwest)?;
    let status = response.status();
    if status.is_success() {
        let body = read_limited(&mut response, limit).await?;
        return Ok(Answer { body });
    }
    let retry_after = retry_after(response.headers());
    let message = match read_limited(&mut response, ERROR_BODY_LIMIT).await {
        Ok(body) => provider_message(&body, redactor),
        Err(_) => String::new(),
    };
    Err(AttemptError::Status {
        status,
        retry_after,
        message,
    })
}

/// The body, refusing it as soon as it grows past `limit` bytes — counted while streaming, so
/// a body with no (or a false) `Content-Length` is bounded too.
async fn read_limited(response: &mut Response, limit: usize) -> Result<Bytes, AttemptError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(AttemptError::from_reqwest)? {
        if body.len() + chunk.len() > limit {
            return Err(AttemptError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// `Retry-After` as a wait from now: delay-seconds or an HTTP date (a past date is no wait).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = raw.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(raw).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The provider's explanation in an error body: a JSON `message` or `error` field (Twilio,
/// Vessey), else the text itself (Slack's `invalid_payload`), with the client's secrets
/// replaced (a provider may echo our request), then trimmed.
fn provider_message(body: &[u8], redactor: &Redactor) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|json| {
            ["message", "error"]
                .iter()
                .find_map(|field| json.get(field)?.as_str().map(str::to_owned))
        });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let text = redactor.redact(&text);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(MESSAGE_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Why one attempt failed.
#[derive(Debug)]
enum AttemptError {
    /// A non-2xx answer.
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
        message: String,
    },
    /// No complete answer within the timeout.
    Timeout,
    /// Connecting, sending or reading failed.
    Transport(String),
    /// A redirect we would not follow.
    RedirectRefused { status: u16, message: String },
    /// The egress guard's resolver refused the host.
    EgressRefused(String),
    /// A successful answer larger than `limit` bytes.
    TooLarge { limit: usize },
    /// The request could not even be built (a bug, not the provider's doing).
    Invalid(String),
}

impl AttemptError {
    fn from_reqwest(error: reqwest::Error) -> Self {
        // Nothing below prints the error itself, but should it ever be: no URL.
        let error = error.without_url();
        if error.is_timeout() {
            return Self::Timeout;
        }
        if let Some(refused) = find_source::<EgressRefused>(&error) {
            return Self::EgressRefused(refused.to_string());
        }
        if let Some(refused) = find_source::<RedirectRefused>(&error) {
            return Self::RedirectRefused {
                status: refused.status,
                message: refused.to_string(),
            };
        }
        if error.is_builder() {
            return Self::Invalid(describe(&error));
        }
        Self::Transport(describe(&error))
    }

    /// Worth another attempt: the provider is down, overloaded, slow or unreachable.
    fn is_transient(&self) -> bool {
        match self {
            Self::Status { status, .. } => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
            Self::Timeout | Self::Transport(_) => true,
            Self::RedirectRefused { .. }
            | Self::EgressRefused(_)
            | Self::TooLarge { .. }
            | Self::Invalid(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn into_provider_error(self, call: &Call, attempts: u32) -> ProviderError {
        let label = &call.label;
        if self.is_transient() {
            let plural = if attempts == 1 { "" } else { "s" };
            return ProviderError::Unavailable(format!(
                "{label} failed after {attempts} attempt{plural}: {self}"
            ));
        }
        match self {
            Self::Status { status, .. } if status == StatusCode::NOT_FOUND => {
                ProviderError::NotFound(format!("{label}: not found"))
            }
            Self::Status {
                status, message, ..
            } if status.is_client_error() => ProviderError::Rejected {
                status: status.as_u16(),
                message: if message.is_empty() {
                    format!("{label} was refused: {status}")
                } else {
                    format!("{label} was refused ({status}): {message}")
                },
            },
            Self::RedirectRefused { status, message } => ProviderError::Rejected {
                status,
                message: format!("{label}: {message}"),
            },
            Self::EgressRefused(reason) => {
                ProviderError::Refused(format!("{label} refused: {reason}"))
            }
            other => ProviderError::InvalidResponse(format!("{label}: {other}")),
        }
    }
}

impl fmt::Display for AttemptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status {
                status, message, ..
            } => {
                write!(f, "{status}")?;
                if !message.is_empty() {
                    write!(f, " ({message})")?;
                }
                Ok(())
            }
            Self::Timeout => f.write_str("timed out"),
            Self::Transport(message) | Self::Invalid(message) | Self::EgressRefused(message) => {
                f.write_str(message)
            }
            Self::RedirectRefused { message, .. } => f.write_str(message),
            Self::TooLarge { limit } => {
                write!(f, "answer larger than {} KiB refused", limit / 1024)
            }
        }
    }
}

/// The redirect policy: follow up to [`MAX_REDIRECTS`] redirects within the origin (scheme,
/// host, port) of the original request; refuse any other. Base URLs come from configuration
/// only, and a redirect elsewhere must not carry our credentials (or our trust) with it.
fn same_origin_redirects() -> redirect::Policy {
    redirect::Policy::custom(|attempt| {
        let Some(original) = attempt.previous().first() else {
            return attempt.follow();
        };
        if attempt.previous().len() > MAX_REDIRECTS {
            let refused = RedirectRefused::too_many(attempt.status());
            return attempt.error(refused);
        }
        if original.origin() == attempt.url().origin() {
            attempt.follow()
        } else {
            let refused = RedirectRefused::other_origin(attempt.status(), attempt.url());
            attempt.error(refused)
        }
    })
}

/// Why the redirect policy stopped a call; recovered from the reqwest error's sources.
#[derive(Debug)]
struct RedirectRefused {
    status: u16,
    reason: String,
}

impl RedirectRefused {
    fn other_origin(status: StatusCode, to: &Url) -> Self {
        // Only the origin: the rest of a URL may carry a token.
        let origin = to.origin().ascii_serialization();
        Self {
            status: status.as_u16(),
            reason: format!("refused to follow a {status} redirect to another host ({origin})"),
        }
    }

    fn too_many(status: StatusCode) -> Self {
        Self {
            status: status.as_u16(),
            reason: format!("refused to follow more than {MAX_REDIRECTS} redirects"),
        }
    }
}

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl StdError for RedirectRefused {}

/// The first error of type `T` in `error`'s source chain.
fn find_source<'a, T: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(candidate) = current {
        if let Some(found) = candidate.downcast_ref::<T>() {
            return Some(found);
        }
        current = candidate.source();
    }
    None
}

/// A reqwest error described by its kind and cause, never by its text: reqwest's `Display`
/// carries the URL (Slack's webhook URL is its own secret, Twilio's path holds the account
/// SID), and a cause of unknown type could quote anything. So the description is built only
/// from what is known to be safe: reqwest's kind (`is_connect`, `is_body`, ...), the
/// [`io::ErrorKind`] of an I/O cause, hyper's fixed descriptions, a TLS failure, and the
/// resolver's refusal. `"could not connect: connection refused"`, `"reading the answer
/// failed: connection reset"`.
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "reading the answer failed"
    } else if error.is_redirect() {
        "following a redirect failed"
    } else if error.is_builder() {
        "the request could not be built"
    } else if error.is_request() {
        "sending the request failed"
    } else {
        "the HTTP exchange failed"
    };
    match cause_of(error) {
        Some(cause) => format!("{what}: {cause}"),
        None => what.to_owned(),
    }
}

/// The most telling cause in `error`'s chain that can be named without quoting it.
fn cause_of(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut found: Option<String> = None;
    let mut current = error.source();
    while let Some(cause) = current {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            // An I/O error's own `source()` skips its payload: look at it directly.
            if let Some(inner) = io.get_ref()
                && let Some(deeper) = cause_of_payload(inner)
            {
                return Some(deeper);
            }
            return io_kind(io.kind()).map(str::to_owned).or(found);
        }
        if let Some(tls) = cause.downcast_ref::<native_tls::Error>() {
            return Some(format!("TLS handshake failed ({tls})"));
        }
        if let Some(refused) = cause.downcast_ref::<EgressRefused>() {
            return Some(refused.to_string());
        }
        if let Some(hyper) = cause.downcast_ref::<hyper::Error>() {
            // hyper's descriptions are fixed phrases ("connection closed before message
            // completed"); a deeper cause, if any, is more precise.
            found = Some(hyper.to_string());
        } else if cause.to_string() == "dns error" {
            // hyper-util's connector wraps a resolver failure in this fixed message.
            found = Some("the host name could not be resolved".to_owned());
        }
        current = cause.source();
    }
    found
}

/// The payload of an `io::Error`, when it is a type named safely.
fn cause_of_payload(payload: &(dyn StdError + Send + Sync + 'static)) -> Option<String> {
    if let Some(tls) = payload.downcast_ref::<native_tls::Error>() {
        return Some(format!("TLS handshake failed ({tls})"));
    }
    if let Some(hyper) = payload.downcast_ref::<hyper::Error>() {
        return Some(hyper.to_string());
    }
    None
}

/// A fixed phrase for the I/O failures a call meets; `None` for the uninformative ones.
fn io_kind(kind: io::ErrorKind) -> Option<&'static str> {
    use io::ErrorKind as K;
    Some(match kind {
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "connection reset",
        K::ConnectionAborted => "connection aborted",
        K::NotConnected | K::BrokenPipe => "connection closed",
        K::UnexpectedEof => "connection closed before the answer was complete",
        K::TimedOut => "timed out",
        K::AddrNotAvailable | K::AddrInUse => "no local address available",
        K::HostUnreachable => "host unreachable",
        K::NetworkUnreachable | K::NetworkDown => "network unreachable",
        K::InvalidData => "invalid data",
        K::PermissionDenied => "permission denied",
        _ => return None,
    })
}

/// How messages name the provider of `purpose`.
fn purpose_name(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Vessey => "Vessey",
        Purpose::Twilio => "Twilio",
        Purpose::Slack => "Slack",
    }
}

/// Appends `segments` (each percent-encoded as one segment, `/` included) to `base`'s path.
pub(crate) fn join_segments(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));

        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(90));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(wait > Duration::from_secs(85) && wait <= Duration::from_secs(90));

        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(90));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&past).unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));

        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn provider_messages_come_from_json_fields_or_text_and_are_trimmed() {
        assert_eq!(
            provider_message(
                br#"{"code": 21211, "message": "bad  To"}"#,
                &Redactor::default()
            ),
            "bad To"
        );
        let none = Redactor::default();
        assert_eq!(provider_message(br#"{"error": "nope"}"#, &none), "nope");
        assert_eq!(
            provider_message(b"invalid_payload\n", &none),
            "invalid_payload"
        );
        let long = "x".repeat(1_000);
        assert_eq!(
            provider_message(long.as_bytes(), &none).chars().count(),
            MESSAGE_LIMIT + 1
        );
    }

    #[test]
    fn segments_are_appended_percent_encoded() {
        let base = Url::parse("https://vessey.example/api/v1/").unwrap();
        assert_eq!(
            join_segments(&base, &["drivers", "a/b c"]).as_str(),
            "https://vessey.example/api/v1/drivers/a%2Fb%20c"
        );
        let bare = Url::parse("https://vessey.example").unwrap();
        assert_eq!(
            join_segments(&bare, &["drivers"]).as_str(),
            "https://vessey.example/drivers"
        );
    }

    #[test]
    fn the_backoff_allows_max_attempts_minus_one_retries() {
        let policy = RetryPolicy {
            max_attempts: 4,
            ..RetryPolicy::default()
        };
        use backon::BackoffBuilder;
        assert_eq!(backoff(&policy).build().count(), 3);
    }
}
