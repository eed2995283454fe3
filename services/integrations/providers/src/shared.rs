//! The deployment's own clients: built from the environment's configuration
//! ([`ProvidersConfig`]), unguarded (the operator's URLs are not the egress guard's business).

use crate::config::ProvidersConfig;
use crate::error::ProviderError;
use crate::provider::Provider;
use crate::slack::SlackClient;
use crate::twilio::TwilioClient;
use crate::vessey::VesseyClient;

impl ProvidersConfig {
    /// A Vessey client, or `NotConfigured` naming the unset variables.
    pub fn vessey_client(&self) -> Result<VesseyClient, ProviderError> {
        match &self.vessey {
            Ok(config) => VesseyClient::new(config.clone(), self.retry.clone()),
            Err(missing) => Err(missing.error_for(Provider::Vessey)),
        }
    }

    /// A Twilio client, or `NotConfigured` naming the unset variables.
    pub fn twilio_client(&self) -> Result<TwilioClient, ProviderError> {
        match &self.twilio {
            Ok(config) => TwilioClient::new(config.clone(), self.retry.clone()),
            Err(missing) => Err(missing.error_for(Provider::Twilio)),
        }
    }

    /// A Slack client, or `NotConfigured` naming `SLACK_WEBHOOK_URL`.
    pub fn slack_client(&self) -> Result<SlackClient, ProviderError> {
        match &self.slack {
            Ok(config) => SlackClient::new(config.clone(), self.retry.clone()),
            Err(missing) => Err(missing.error_for(Provider::Slack)),
        }
    }
}
