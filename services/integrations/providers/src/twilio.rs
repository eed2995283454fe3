//! The Twilio client: send one SMS through the Messages API.

use std::fmt;

use serde::Deserialize;

use crate::config::{PrintableUrl, RetryPolicy, TwilioConfig};
use crate::egress::Purpose;
use crate::error::ProviderError;
use crate::http::{BODY_LIMIT, Call, HttpClient, Transport, join_segments};
use crate::redact::{Redactor, url_credentials};

/// Sends SMS through Twilio. Cheap to clone.
///
/// A send is retried on 5xx, 429, timeouts and connection errors, so a message whose answer
/// was lost can be delivered twice (see [`crate`]); a 4xx is final and becomes
/// [`ProviderError::Rejected`] with Twilio's message.
#[derive(Clone)]
pub struct TwilioClient {
    config: TwilioConfig,
    messages_url: reqwest::Url,
    http: Transport,
}

impl fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioClient")
            // Not the messages URL: its path holds the account SID.
            .field("api_url", &PrintableUrl(&self.config.api_url))
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct CreatedMessage {
    sid: String,
}

impl TwilioClient {
    /// A client for the configured Twilio account with an unguarded HTTP client of its own (the
    /// operator's configuration; prefer [`Self::new_with`] and a shared client).
    pub fn new(config: TwilioConfig, retry: RetryPolicy) -> Result<Self, ProviderError> {
        let http = Transport::new(Purpose::Twilio, retry, redactor(&config))?;
        Ok(Self::on(config, http))
    }

    /// A client for the configured Twilio account on the shared `http` client:
    /// [`crate::HttpClients::tenant`] for a tenant's settings (guarded),
    /// [`crate::HttpClients::operator`] for the environment's.
    pub fn new_with(config: TwilioConfig, retry: RetryPolicy, http: &HttpClient) -> Self {
        let http = Transport::with_http(http, Purpose::Twilio, retry, redactor(&config));
        Self::on(config, http)
    }

    fn on(config: TwilioConfig, http: Transport) -> Self {
        let messages_url = join_segments(
            &config.api_url,
            &[
                "2010-04-01",
                "Accounts",
                &config.account_sid,
                "Messages.json",
            ],
        );
        Self {
            http,
            messages_url,
            config,
        }
    }

    /// Sends `body` to `to` (E.164) from the configured number; returns Twilio's message SID.
    pub async fn send_sms(&self, to: &str, body: &str) -> Result<String, ProviderError> {
        let call = Call {
            label: "Twilio POST Messages.json".to_owned(),
            timeout: self.config.timeouts.call,
            body_limit: BODY_LIMIT,
        };
        let form = [
            ("From", self.config.from_number.as_str()),
            ("To", to),
            ("Body", body),
        ];
        let answer = self
            .http
            .send(&call, || {
                self.http
                    .client()
                    .post(self.messages_url.clone())
                    .basic_auth(
                        &self.config.account_sid,
                        Some(self.config.auth_token.expose()),
                    )
                    .form(&form)
            })
            .await?;
        let created: CreatedMessage = self.http.parse_json(&call, &answer)?;
        Ok(created.sid)
    }
}

/// What a Twilio client's messages must never hold: the account SID (it is in the URL's path
/// too), the auth token, the basic-auth value made of both, and any credential in the API URL.
fn redactor(config: &TwilioConfig) -> Redactor {
    use base64::Engine;
    let sid = &config.account_sid;
    let token = config.auth_token.expose();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{token}"));
    let mut secrets = vec![sid.clone(), token.to_owned(), basic];
    secrets.extend(url_credentials(&config.api_url));
    Redactor::new(secrets)
}
