//! The Slack client: post one message to the incoming webhook.

use std::fmt;

use serde::Serialize;

use crate::config::{RetryPolicy, SlackConfig};
use crate::egress::Purpose;
use crate::error::ProviderError;
use crate::http::{BODY_LIMIT, Call, HttpClient, Transport};
use crate::redact::{Redactor, secret_url_parts};

/// Posts to a Slack incoming webhook. Cheap to clone. The webhook URL is a credential: it never
/// appears in errors, logs or `Debug`.
///
/// A post is retried on 5xx, 429, timeouts and connection errors, so a message whose answer
/// was lost can appear twice (see [`crate`]).
#[derive(Clone)]
pub struct SlackClient {
    config: SlackConfig,
    http: Transport,
}

impl fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlackClient").finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Message<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
}

impl SlackClient {
    /// A client for the configured webhook with an unguarded HTTP client of its own (the
    /// operator's configuration; prefer [`Self::new_with`] and a shared client).
    pub fn new(config: SlackConfig, retry: RetryPolicy) -> Result<Self, ProviderError> {
        Ok(Self {
            http: Transport::new(Purpose::Slack, retry, redactor(&config))?,
            config,
        })
    }

    /// A client for the configured webhook on the shared `http` client:
    /// [`crate::HttpClients::tenant`] for a tenant's settings (guarded: the webhook's host
    /// must be in `SLACK_WEBHOOK_HOSTS`), [`crate::HttpClients::operator`] for the
    /// environment's.
    pub fn new_with(config: SlackConfig, retry: RetryPolicy, http: &HttpClient) -> Self {
        Self {
            http: Transport::with_http(http, Purpose::Slack, retry, redactor(&config)),
            config,
        }
    }

    /// Posts `text`, to `channel` when given (else the webhook's own channel).
    pub async fn post(&self, text: &str, channel: Option<&str>) -> Result<(), ProviderError> {
        let call = Call {
            label: "Slack POST webhook".to_owned(),
            timeout: self.config.timeouts.call,
            body_limit: BODY_LIMIT,
        };
        let message = Message { text, channel };
        self.http
            .send(&call, || {
                self.http
                    .client()
                    .post(self.config.webhook_url.expose().clone())
                    .json(&message)
            })
            .await?;
        Ok(())
    }
}

/// What a Slack client's messages must never hold: the webhook URL and its secret path.
fn redactor(config: &SlackConfig) -> Redactor {
    Redactor::new(secret_url_parts(config.webhook_url.expose()))
}
