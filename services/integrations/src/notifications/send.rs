//! The queue job that delivers one notification ([`SendNotification`]), with what it needs
//! registered as the worker's extension ([`Outbox`]).
//!
//! Delivery is at least once: a crash after the provider accepted a message and before the
//! log says `sent` sends it again on the next attempt. A notification already `sent` or
//! `dead` is never sent again (a duplicate job does nothing).

use director_platform::catalog;
use director_platform::identity::Caller;
use director_store::jobs::{self as queue, Attempt, AttemptFailed, job_span};
use graphile_worker::{IntoTaskHandlerResult, TaskHandler, WorkerContext};
use tracing::Instrument as _;

use super::store::{Delivery, NotificationRow, NotificationStore};
use crate::access::service_caller;
use crate::domain::{NotificationChannel, NotificationId, SendNotification};
use crate::error::IntegrationsError;
use crate::providers::Providers;

/// What delivering a notification takes: the delivery log and the tenants' providers.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub notifications: NotificationStore,
    pub providers: Providers,
}

impl TaskHandler for SendNotification {
    const IDENTIFIER: &'static str = SendNotification::QUEUE_IDENTIFIER;

    async fn run(self, ctx: WorkerContext) -> impl IntoTaskHandlerResult {
        let Some(app) = ctx.get_ext::<Outbox>().cloned() else {
            return Err(AttemptFailed::new(
                "the worker was started without the service's outbox",
            ));
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

/// Why an attempt could not even be recorded: the queue retries it.
#[derive(Debug, thiserror::Error)]
enum Bookkeeping {
    #[error("could not read notification {notification}: {source}")]
    Read {
        notification: NotificationId,
        source: sqlx::Error,
    },
    #[error("could not record delivery of {notification}: {source}")]
    Record {
        notification: NotificationId,
        source: sqlx::Error,
    },
}

/// One delivery attempt.
async fn deliver(
    app: &Outbox,
    job: &SendNotification,
    attempt: i32,
    last_attempt: bool,
) -> Result<Attempt, Bookkeeping> {
    let caller = service_caller(&job.tenant_id);
    let store = &app.notifications;
    let row = store
        .get(&caller, job.notification_id)
        .await
        .map_err(|source| Bookkeeping::Read {
            notification: job.notification_id,
            source,
        })?;
    let Some(row) = row.filter(|row| row.status.awaits_delivery()) else {
        return Ok(Attempt::Finished);
    };
    let delivery = match send(app, &caller, &row).await {
        Ok(provider_id) => Delivery::Sent(provider_id),
        Err(error) if error.is_retryable() && !last_attempt => Delivery::Failed(error.to_string()),
        Err(error) => Delivery::Dead(error.to_string()),
    };
    if let Delivery::Failed(error) | Delivery::Dead(error) = &delivery {
        tracing::warn!(notification_id = %row.id, channel = row.channel.as_str(), attempt, error, "notification not delivered");
    }
    store
        .record(&caller, row.id, attempt, &delivery)
        .await
        .map_err(|source| Bookkeeping::Record {
            notification: row.id,
            source,
        })?;
    Ok(match delivery {
        Delivery::Failed(error) => Attempt::Retry(error),
        Delivery::Dead(error) => Attempt::GiveUp(error),
        Delivery::Sent(_) => Attempt::Finished,
    })
}

/// Hands the message to its provider — the tenant's own or the shared one, as it is now —
/// and answers the provider's id for it when there is one.
async fn send(
    app: &Outbox,
    caller: &Caller,
    row: &NotificationRow,
) -> Result<Option<String>, IntegrationsError> {
    let providers = app.providers.for_tenant(caller).await?;
    match row.channel {
        NotificationChannel::Sms => {
            let to = row.recipient.as_deref().unwrap_or_default();
            let twilio = providers.twilio()?;
            let sid = twilio.client.send_sms(to, &row.message).await?;
            Ok(Some(sid))
        }
        NotificationChannel::Slack => {
            providers
                .slack()?
                .post(&row.message, row.recipient.as_deref())
                .await?;
            Ok(None)
        }
    }
}
