//! Fake Vessey, Slack and Twilio: real HTTP servers (axum) that answer like the third parties
//! Director integrates with, record what they receive, and misbehave on demand. Used by the
//! providers' tests, the import benchmark and `director fakes` / `director up --fakes`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use director_fakes::{FakeVessey, RetryAfter};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let vessey = FakeVessey::sample().start(listener)?;
//! vessey.fail_next(2, director_fakes::StatusCode::SERVICE_UNAVAILABLE);
//! vessey.rate_limit_next(1, RetryAfter::Seconds(1));
//! // ... point a client at vessey.url() with key director_fakes::DEFAULT_VESSEY_API_KEY ...
//! assert!(vessey.received().is_empty());
//! # Ok(()) }
//! ```
//!
//! # Failure modes
//!
//! From the [`FakeServer`] handle, for any fake, queued in call order, one per request:
//! - [`FakeServer::fail_next`]`(n, status)`: the next `n` requests get `status` (e.g. 503);
//! - [`FakeServer::rate_limit_next`]`(n, retry_after)`: 429 with `Retry-After` in seconds
//!   ([`RetryAfter::Seconds`]) or as an HTTP date ([`RetryAfter::DateIn`]);
//! - [`FakeServer::delay_next`]`(n, d)`: the normal answer, `d` late;
//! - [`FakeServer::redirect_next`]`(url)`: `302 Found` to `url` (another host, or a path on
//!   this one);
//! - [`FakeServer::garbage_next`]`(n)`: 200 with a body that is not JSON.
//!
//! Every request is recorded before any fault applies: [`FakeServer::received`].
//!
//! Over HTTP, for manual trials against `director fakes`, the fake Vessey has magic driver
//! ids (`GET /drivers/{id}`), counted per fake instance:
//! - `flaky`: 503 twice, then 200;
//! - `rate-limited`: 429 with `Retry-After: 1` once, then 200;
//! - `bad-request`: always 400;
//! - `redirect`: 302 to another host, `http://127.0.0.2:<same port>/drivers/1`;
//! - `moved`: 302 to `/drivers/1` on the same host;
//! - `slow`: answers after 15 s ([`SLOW_DRIVER_DELAY`]);
//! - any other unknown id: 404 `{"error": ...}`.
//!
//! The fake Twilio refuses a `To` that is not E.164, or is [`INVALID_TO_NUMBER`], with 400
//! and Twilio's code 21211. The fake Slack answers `400 invalid_payload` to a body that is not
//! JSON with a non-empty `text`.
//!
//! # Data
//!
//! [`VesseyData::sample`]: five drivers (one inactive; phones such as `(555) 010-0001` and
//! `+44 7700 900123`, one missing) and twenty collections over six farms for any date, in
//! pages of 8. [`VesseyData::generated`] makes deterministic data of any size for benchmarks,
//! computed page by page.

mod all;
mod server;
mod slack;
mod twilio;
mod vessey;
mod vessey_data;

pub use all::{FakeAddrs, FakeThirdParties};
/// The status type the failure modes take, re-exported so users need not depend on axum.
pub use axum::http::StatusCode;
pub use server::{FakeServer, ReceivedRequest, RetryAfter};
pub use slack::{FakeSlack, WEBHOOK_PATH};
pub use twilio::{
    DEFAULT_TWILIO_ACCOUNT_SID, DEFAULT_TWILIO_AUTH_TOKEN, DEFAULT_TWILIO_FROM_NUMBER, FakeTwilio,
    INVALID_TO_NUMBER, TENANT_TWILIO_ACCOUNT_SID, TENANT_TWILIO_AUTH_TOKEN,
};
pub use vessey::{DEFAULT_VESSEY_API_KEY, FakeVessey, SLOW_DRIVER_DELAY};
pub use vessey_data::{Collection, Driver, GeneratedSpec, PageOf, VesseyData};
