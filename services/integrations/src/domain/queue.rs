//! The payloads of the service's queue jobs: what a store enqueues, in the transaction that
//! records the row, and what a handler runs. Declared here, below both, so a store does not
//! know the handler that will run its job (the handlers implement `TaskHandler` for them).

use director_platform::catalog;
use director_platform::identity::TenantId;
use serde::{Deserialize, Serialize};

use super::ids::{JobId, NotificationId};

/// Runs the `jobs` row `job_id` of `tenant_id` (one attempt per queue run).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunJob {
    pub job_id: JobId,
    pub tenant_id: TenantId,
}

impl RunJob {
    /// The queue's name for it.
    pub const QUEUE_IDENTIFIER: &'static str = catalog::INTEGRATIONS_RUN_JOB;

    /// The queue payload.
    pub fn payload(&self) -> serde_json::Value {
        serde_json::json!({ "job_id": self.job_id, "tenant_id": self.tenant_id })
    }
}

/// Sends notification `notification_id` of `tenant_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendNotification {
    pub notification_id: NotificationId,
    pub tenant_id: TenantId,
}

impl SendNotification {
    /// The queue's name for it.
    pub const QUEUE_IDENTIFIER: &'static str = catalog::INTEGRATIONS_SEND_NOTIFICATION;

    /// The queue payload.
    pub fn payload(&self) -> serde_json::Value {
        serde_json::json!({ "notification_id": self.notification_id, "tenant_id": self.tenant_id })
    }
}
