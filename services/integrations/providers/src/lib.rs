//! Director's clients of third parties — Vessey, Twilio, Slack — as the integrations service
//! uses them.
//!
//! [`ProvidersConfig::from_env`] reads which integrations are configured (a missing one is
//! reported, not fatal); [`VesseyClient`], [`TwilioClient`] and [`SlackClient`] make the calls.
//!
//! Two kinds of configuration reach these clients: the operator's, from the environment, and a
//! tenant's own settings. A tenant chooses its URLs, so its clients go through the egress guard
//! ([`EgressPolicy`], read by [`EgressPolicy::from_env`]): [`EgressPolicy::check_url`] and
//! [`EgressPolicy::check_resolves`] when the settings are saved, and at every call the guarded
//! HTTP client of [`HttpClients::tenant`], which refuses forbidden addresses where names resolve
//! and IP literals before sending ([`ProviderError::Refused`]). Build one [`HttpClients`] per
//! process and pass [`HttpClients::tenant`] or [`HttpClients::operator`] to the clients'
//! `new_with` constructors, so they share connection pools (or use [`GuardedHttp`],
//! which builds tenants' clients on one guarded client); `new` still builds a client with an
//! unguarded pool of its own.
//!
//! Every call:
//! - has a per-attempt timeout ([`Timeouts`]: 10 s, 30 s for a collections page);
//! - is retried with exponential backoff and jitter ([`RetryPolicy`]) on 5xx, 408, 429,
//!   timeouts and connection errors, waiting what `Retry-After` asks (seconds or an HTTP
//!   date, capped at [`RetryPolicy::retry_after_cap`]) when present; never on other 4xx;
//! - follows redirects only within the configured origin (scheme, host, port): a redirect to
//!   another host is refused with [`ProviderError::Rejected`];
//! - reads at most 1 MiB of answer (8 MiB for a collections page), counted while streaming;
//! - fails with a [`ProviderError`] naming the call and never a credential, a URL or
//!   Twilio's account SID: transport failures are described by kind (`"could not connect:
//!   connection refused"`), never by reqwest's text (which carries the URL), and the provider's
//!   own explanation is cleaned of the client's secrets before it is kept, should the provider
//!   echo our request back. The retry log line is built the same way.
//!
//! Retrying a POST whose answer was lost (timeout, dropped connection) may deliver it twice:
//! Twilio and Slack sends are retried anyway, because a lost notification is worse than a
//! duplicate; the integrations service records each delivery so a job retry does not resend
//! one that succeeded.

mod config;
pub mod egress;
mod error;
mod guarded;
mod http;
mod provider;
mod redact;
mod shared;
mod slack;
mod twilio;
mod vessey;

pub use config::{
    DEFAULT_TWILIO_API_URL, Missing, ProvidersConfig, RetryPolicy, SecretUrl, SlackConfig,
    Timeouts, TwilioConfig, VesseyConfig,
};
pub use egress::{
    DEFAULT_SLACK_WEBHOOK_HOSTS, EgressPolicy, EgressRefused, Purpose, UrlRefused, forbidden_range,
};
pub use error::ProviderError;
pub use guarded::GuardedHttp;
pub use http::{HttpClient, HttpClients};
pub use provider::Provider;
pub use slack::SlackClient;
pub use twilio::TwilioClient;
pub use vessey::{Page, RejectedRecord, VesseyClient, VesseyCollection, VesseyDriver};
