//! What the service's APIs and job handlers share: its stores, the third parties, and the
//! other Director services it calls. Registered as the job worker's extension, so a handler
//! reaches the same parts as a request.

use director_platform::client::ServiceClient;

use crate::jobs::store::JobStore;
use crate::notifications::store::NotificationStore;
use crate::providers::Providers;

/// The service's parts.
#[derive(Debug, Clone)]
pub struct App {
    pub jobs: JobStore,
    pub notifications: NotificationStore,
    /// Each tenant's Vessey, Slack and Twilio clients: its own settings, or the deployment's.
    pub providers: Providers,
    /// Drivers and tasks are upserted here.
    pub dispatch: ServiceClient,
    /// Farms are created and looked up here.
    pub companies: ServiceClient,
}
