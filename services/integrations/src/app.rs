//! What the service's APIs and job handlers share: its stores, the third parties, and the
//! other Director services it calls. Registered as the job worker's extension, so a handler
//! reaches the same parts as a request.

use director_platform::client::ServiceClient;
use director_platform::identity::{Caller, Role};
use director_providers::{ProviderError, ProvidersConfig, SlackClient, TwilioClient, VesseyClient};

use crate::jobs::store::JobStore;
use crate::notifications::store::NotificationStore;

/// The identity jobs act with towards other services: an admin of the job's tenant.
pub const SERVICE_USER: &str = "service:integrations";

/// The service's parts.
#[derive(Debug, Clone)]
pub struct App {
    pub jobs: JobStore,
    pub notifications: NotificationStore,
    pub providers: Providers,
    /// Drivers and tasks are upserted here.
    pub dispatch: ServiceClient,
    /// Farms are created and looked up here.
    pub companies: ServiceClient,
}

impl App {
    /// The caller a background job of `tenant_id` acts as.
    pub fn service_caller(tenant_id: &str) -> Caller {
        Caller::new(SERVICE_USER, tenant_id, Role::Admin)
    }
}

/// The third-party clients, each built only when its credentials are configured.
#[derive(Debug, Clone)]
pub struct Providers {
    config: ProvidersConfig,
    vessey: Result<VesseyClient, ProviderError>,
    twilio: Result<TwilioClient, ProviderError>,
    slack: Result<SlackClient, ProviderError>,
}

impl Providers {
    /// Clients for every configured third party; an unconfigured one answers
    /// FAILED_PRECONDITION naming what is missing when used.
    pub fn new(config: ProvidersConfig) -> Self {
        let retry = config.retry.clone();
        let vessey = match &config.vessey {
            Ok(vessey) => VesseyClient::new(vessey.clone(), retry.clone()),
            Err(missing) => Err(not_configured("vessey", &missing.0)),
        };
        let twilio = match &config.twilio {
            Ok(twilio) => TwilioClient::new(twilio.clone(), retry.clone()),
            Err(missing) => Err(not_configured("twilio", &missing.0)),
        };
        let slack = match &config.slack {
            Ok(slack) => SlackClient::new(slack.clone(), retry),
            Err(missing) => Err(not_configured("slack", &missing.0)),
        };
        Self {
            config,
            vessey,
            twilio,
            slack,
        }
    }

    pub fn config(&self) -> &ProvidersConfig {
        &self.config
    }

    pub fn vessey(&self) -> Result<&VesseyClient, ProviderError> {
        self.vessey.as_ref().map_err(Clone::clone)
    }

    pub fn twilio(&self) -> Result<&TwilioClient, ProviderError> {
        self.twilio.as_ref().map_err(Clone::clone)
    }

    pub fn slack(&self) -> Result<&SlackClient, ProviderError> {
        self.slack.as_ref().map_err(Clone::clone)
    }
}

fn not_configured(integration: &'static str, missing: &[&'static str]) -> ProviderError {
    ProviderError::NotConfigured {
        integration,
        missing: missing.to_vec(),
    }
}
