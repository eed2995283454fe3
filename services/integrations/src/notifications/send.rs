//! The queue job that delivers one notification.
//!
//! Delivery is at least once: a crash after the provider accepted a message and before the
//! log says `sent` sends it again on the next attempt. A notification already `sent` or
//! `dead` is never sent again (a duplicate job does nothing).

use director_platform::catalog;
use director_platform::identity::Caller;
use director_store::jobs::{self as queue, Attempt, job_span};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use serde::{Deserialize, Serialize};
use tracing::Instrument as _;
use uuid::Uuid;

use super::store::{Delivery, NotificationRow};
use crate::app::App;
use crate::error::IntegrationsError;

/// Sends notification `notification_id` of `tenant_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendNotification {
    pub notification_id: Uuid,
    pub tenant_id: String,
}

impl SendNotification {
    /// The queue payload.
    pub fn payload(&self) -> serde_json::Value {
        serde_json::json!({ "notification_id": self.notification_id, "tenant_id": self.tenant_id })
    }
}

impl TaskHandler for SendNotification {
    const IDENTIFIER: &'static str = catalog::INTEGRATIONS_SEND_NOTIFICATION;

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let Some(app) = ctx.get_ext::<App>().cloned() else {
            return Err("the worker was started without the service's parts".to_owned());
        };
        let attempt = i32::from(*ctx.job().attempts());
        let last_attempt = attempt >= i32::from(*ctx.job().max_attempts());
        let span = job_span(&catalog::INTEGRATIONS, Self::IDENTIFIER, ctx.payload());
        let result = deliver(&app, &self, attempt, last_attempt)
            .instrument(span)
            .await;
        queue::end_attempt(app.notifications.pool(), *ctx.job().id(), result).await
    }
}

/// One delivery attempt.
async fn deliver(
    app: &App,
    job: &SendNotification,
    attempt: i32,
    last_attempt: bool,
) -> Result<Attempt, String> {
    let caller = App::service_caller(&job.tenant_id);
    let store = &app.notifications;
    let row = store
        .get(&caller, job.notification_id)
        .await
        .map_err(|error| {
            format!(
                "could not read notification {}: {error}",
                job.notification_id
            )
        })?;
    let Some(row) = row.filter(|row| matches!(row.status.as_str(), "queued" | "failed")) else {
        return Ok(Attempt::Finished);
    };
    let delivery = match send(app, &caller, &row).await {
        Ok(provider_id) => Delivery::Sent(provider_id),
        Err(error) if error.is_retryable() && !last_attempt => Delivery::Failed(error.to_string()),
        Err(error) => Delivery::Dead(error.to_string()),
    };
    if let Delivery::Failed(error) | Delivery::Dead(error) = &delivery {
        tracing::warn!(notification_id = %row.id, channel = row.channel, attempt, error, "notification not delivered");
    }
    store
        .record(&caller, row.id, attempt, &delivery)
        .await
        .map_err(|error| format!("could not record delivery of {}: {error}", row.id))?;
    Ok(match delivery {
        Delivery::Failed(error) => Attempt::Retry(error),
        Delivery::Dead(error) => Attempt::GiveUp(error),
        Delivery::Sent(_) => Attempt::Finished,
    })
}

/// Hands the message to its provider — the tenant's own or the shared one, as it is now —
/// and answers the provider's id for it when there is one.
async fn send(
    app: &App,
    caller: &Caller,
    row: &NotificationRow,
) -> Result<Option<String>, IntegrationsError> {
    let providers = app.providers.for_tenant(caller).await?;
    match row.channel.as_str() {
        "sms" => {
            let to = row.recipient.as_deref().unwrap_or_default();
            let twilio = providers.twilio()?;
            let sid = twilio.client.send_sms(to, &row.message).await?;
            Ok(Some(sid))
        }
        _ => {
            providers
                .slack()?
                .post(&row.message, row.recipient.as_deref())
                .await?;
            Ok(None)
        }
    }
}
