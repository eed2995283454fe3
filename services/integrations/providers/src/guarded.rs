//! Tenants' provider clients, built on one guarded HTTP client: the egress policy
//! ([`crate::egress`]) applied to every URL a tenant's settings name, before the client is
//! built and again at each connection.

use std::sync::Arc;

use reqwest::Url;

use crate::config::{RetryPolicy, SlackConfig, TwilioConfig, VesseyConfig};
use crate::egress::{EgressPolicy, Purpose};
use crate::error::ProviderError;
use crate::http::HttpClient;
use crate::slack::SlackClient;
use crate::twilio::TwilioClient;
use crate::vessey::VesseyClient;

/// Clients for tenants' settings, all on one shared guarded HTTP client
/// ([`HttpClient::guarded`]) with one retry policy: build once per process, then one client per
/// tenant configuration, cheaply (no TLS set-up per client).
///
/// Each constructor first checks the configuration's URL against the policy (the rules of
/// [`EgressPolicy::check_url`]; settings were checked when saved, but the policy may have
/// changed since) and answers [`ProviderError::Refused`] naming the setting and the rule.
#[derive(Debug, Clone)]
pub struct GuardedHttp {
    http: HttpClient,
    policy: Arc<EgressPolicy>,
    retry: RetryPolicy,
}

impl GuardedHttp {
    /// The guarded client for `policy`; its provider clients retry per `retry`.
    pub fn new(policy: EgressPolicy, retry: RetryPolicy) -> Result<Self, ProviderError> {
        let policy = Arc::new(policy);
        Ok(Self {
            http: HttpClient::guarded_by(policy.clone())?,
            policy,
            retry,
        })
    }

    /// The policy enforced, for checking settings when they are saved.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// The shared guarded client, for the clients' `new_with` constructors.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// A Vessey client for a tenant's settings.
    pub fn vessey(&self, config: VesseyConfig) -> Result<VesseyClient, ProviderError> {
        self.admit(&config.base_url, Purpose::Vessey, "Vessey API URL")?;
        Ok(VesseyClient::new_with(
            config,
            self.retry.clone(),
            &self.http,
        ))
    }

    /// A Slack client for a tenant's webhook.
    pub fn slack(&self, config: SlackConfig) -> Result<SlackClient, ProviderError> {
        self.admit(
            config.webhook_url.expose(),
            Purpose::Slack,
            "Slack webhook URL",
        )?;
        Ok(SlackClient::new_with(
            config,
            self.retry.clone(),
            &self.http,
        ))
    }

    /// A Twilio client for a tenant's account (and a Twilio API URL the policy admits).
    pub fn twilio(&self, config: TwilioConfig) -> Result<TwilioClient, ProviderError> {
        self.admit(&config.api_url, Purpose::Twilio, "Twilio API URL")?;
        Ok(TwilioClient::new_with(
            config,
            self.retry.clone(),
            &self.http,
        ))
    }

    fn admit(&self, url: &Url, purpose: Purpose, what: &str) -> Result<(), ProviderError> {
        self.policy.check(url, purpose).map_err(|reason| {
            ProviderError::Refused(format!("the tenant's {what} is refused: {reason}"))
        })
    }
}
