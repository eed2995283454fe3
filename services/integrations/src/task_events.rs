//! The receiving end of Dispatch's task-event relay (`TaskEventSinkService`): turns task
//! events into notifications, exactly once in effect.
//!
//! Dispatch delivers each event at least once. Consumption is idempotent by event id: the id
//! goes into `consumed_task_events` in the same transaction as the notifications the event
//! causes (and their delivery jobs), so a redelivered event — before or after that commit —
//! finds its id taken and does nothing. An event's effects:
//! - `assigned` (or `created` with a driver): one SMS to the driver's phone, when the driver
//!   has one and the tenant has Twilio (its own or the shared one) — unless a Vessey import
//!   made the change (`origin` `import`): the import sends each driver one summary instead;
//! - `completed`, `cancelled`: one Slack message naming the task and its farm, when the tenant
//!   has Slack.
//!
//! Each is charged to the tenant's spending limits: beyond them, or to a phone whose calling
//! code is not allowed, the notification is recorded `refused` with the reason and never sent.

use std::collections::HashMap;

use director_platform::client::CallContext;
use director_platform::error::{FieldViolation, invalid_argument};
use director_platform::identity::{Caller, writer};
use director_proto::companies::GetCompanyRequest;
use director_proto::companies::companies_service_client::CompaniesServiceClient;
use director_proto::dispatch::{Task, TaskEventKind};
use director_proto::internal::integrations::task_event_sink_service_server::TaskEventSinkService;
use director_proto::internal::integrations::{
    DeliverTaskEventsRequest, DeliverTaskEventsResponse, TaskEventDelivery,
};
use tonic::{Code, Request, Response, Status};

use crate::app::App;
use crate::domain::NotificationChannel;
use crate::error::IntegrationsError;
use crate::notifications::store::NewNotification;
use crate::providers::TenantProviders;

/// The `origin` of the events a Vessey import causes.
const IMPORT_ORIGIN: &str = "import";

/// Most events per delivery.
const MAX_EVENTS: usize = 500;

/// The task-event sink.
#[derive(Debug, Clone)]
pub struct TaskEventSink {
    app: App,
}

impl TaskEventSink {
    pub fn new(app: App) -> Self {
        Self { app }
    }
}

/// One delivered event, checked.
struct Event {
    id: i64,
    kind: TaskEventKind,
    task: Task,
    driver_phone: Option<String>,
    /// `import` when a Vessey import made the change.
    origin: Option<String>,
}

#[tonic::async_trait]
impl TaskEventSinkService for TaskEventSink {
    async fn deliver_task_events(
        &self,
        request: Request<DeliverTaskEventsRequest>,
    ) -> Result<Response<DeliverTaskEventsResponse>, Status> {
        let caller = writer(&request, "Only services deliver task events")?;
        let cx = CallContext::of(&request)?;
        let events = checked(request.into_inner().events)?;
        let delivered = i32::try_from(events.len()).unwrap_or(i32::MAX);
        let fresh = self.unconsumed(&caller, events).await?;
        let providers = self.app.providers.for_tenant(&caller).await?;
        let farms = self.farm_names(&cx, &fresh, &providers).await?;
        let consumed = self
            .consume(&caller, fresh, &farms, &providers)
            .await
            .map_err(IntegrationsError::from)?;
        Ok(Response::new(DeliverTaskEventsResponse {
            consumed,
            duplicates: delivered - consumed,
        }))
    }
}

impl TaskEventSink {
    /// The events whose ids have not been consumed yet (a cheap first pass; `consume` is
    /// what settles races).
    async fn unconsumed(&self, caller: &Caller, events: Vec<Event>) -> Result<Vec<Event>, Status> {
        let ids: Vec<i64> = events.iter().map(|event| event.id).collect();
        let query = sqlx::query_as::<_, (i64,)>(
            "SELECT event_id FROM consumed_task_events
             WHERE tenant_id = $1 AND event_id = ANY($2)",
        )
        .bind(caller.tenant_id.as_str())
        .bind(&ids);
        let seen: Vec<(i64,)> = self
            .app
            .notifications
            .db()
            .fetch_all(caller, query)
            .await
            .map_err(IntegrationsError::from)?;
        Ok(events
            .into_iter()
            .filter(|event| !seen.iter().any(|(id,)| *id == event.id))
            .collect())
    }

    /// The farm (company) name of every task a Slack message will name, asked of Companies
    /// as the caller. A company Companies no longer knows is named by its id.
    async fn farm_names(
        &self,
        cx: &CallContext,
        events: &[Event],
        providers: &TenantProviders,
    ) -> Result<HashMap<String, String>, Status> {
        let mut names = HashMap::new();
        if providers.slack().is_err() {
            return Ok(names);
        }
        let mut companies = CompaniesServiceClient::new(self.app.companies.channel());
        for event in events.iter().filter(|event| posts_to_slack(event.kind)) {
            let id = &event.task.company_id;
            if names.contains_key(id) {
                continue;
            }
            let request = self
                .app
                .companies
                .request(cx, GetCompanyRequest { id: id.clone() })?;
            let name = match companies.get_company(request).await {
                Ok(response) => response
                    .into_inner()
                    .company
                    .map_or_else(|| id.clone(), |company| company.name),
                Err(status) if status.code() == Code::NotFound => id.clone(),
                Err(status) => return Err(IntegrationsError::service("companies", &status).into()),
            };
            names.insert(id.clone(), name);
        }
        Ok(names)
    }

    /// Marks each event consumed and queues its notifications, all in one transaction;
    /// answers how many events were consumed by this call.
    async fn consume(
        &self,
        caller: &Caller,
        events: Vec<Event>,
        farms: &HashMap<String, String>,
        providers: &TenantProviders,
    ) -> Result<i32, sqlx::Error> {
        let store = &self.app.notifications;
        let mut tx = store.db().begin(caller).await?;
        let mut consumed = 0;
        for event in events {
            let inserted = sqlx::query(
                "INSERT INTO consumed_task_events (tenant_id, event_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(caller.tenant_id.as_str())
            .bind(event.id)
            .persistent(store.db().persistent())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                continue;
            }
            consumed += 1;
            let Some(notification) = notification_for(&event, farms, providers) else {
                continue;
            };
            let refused_destination = match (&notification.recipient, providers.twilio()) {
                (Some(phone), Ok(twilio)) if notification.channel == NotificationChannel::Sms => {
                    store
                        .limits()
                        .check_destination(phone, &twilio.from_number)
                        .err()
                }
                _ => None,
            };
            match refused_destination {
                Some(reason) => {
                    store
                        .refuse_in(&mut tx, caller, notification, &format!("to {reason}"))
                        .await?;
                }
                None => {
                    store
                        .queue_or_refuse_in(&mut tx, caller, notification)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(consumed)
    }
}

/// The notification `event` causes, if any (none when its channel is not configured for the
/// tenant).
fn notification_for(
    event: &Event,
    farms: &HashMap<String, String>,
    providers: &TenantProviders,
) -> Option<NewNotification> {
    let task = &event.task;
    let farm = || {
        farms
            .get(&task.company_id)
            .cloned()
            .unwrap_or_else(|| task.company_id.clone())
    };
    let (channel, recipient, message) = match event.kind {
        TaskEventKind::Assigned | TaskEventKind::Created
            if event.origin.as_deref() != Some(IMPORT_ORIGIN) =>
        {
            providers.twilio().ok()?;
            let phone = event.driver_phone.clone()?;
            let message = format!(
                "New collection assigned to you: {} on {}.",
                task.title, task.scheduled_for
            );
            (NotificationChannel::Sms, Some(phone), message)
        }
        TaskEventKind::Completed => {
            providers.slack().ok()?;
            let volume = task
                .volume_liters
                .map(|litres| format!(" ({litres} L)"))
                .unwrap_or_default();
            let message = format!(
                "Task completed: {} at {} on {}{volume}.",
                task.title,
                farm(),
                task.scheduled_for
            );
            (NotificationChannel::Slack, None, message)
        }
        TaskEventKind::Cancelled => {
            providers.slack().ok()?;
            let reason = task
                .cancel_reason
                .as_deref()
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default();
            let message = format!(
                "Task cancelled: {} at {} on {}{reason}",
                task.title,
                farm(),
                task.scheduled_for
            );
            (NotificationChannel::Slack, None, message)
        }
        _ => return None,
    };
    Some(NewNotification {
        channel,
        recipient,
        message,
        source_event_id: Some(event.id),
        dedup_key: None,
    })
}

fn posts_to_slack(kind: TaskEventKind) -> bool {
    matches!(kind, TaskEventKind::Completed | TaskEventKind::Cancelled)
}

/// The batch with its ids parsed, or INVALID_ARGUMENT naming what is wrong.
fn checked(deliveries: Vec<TaskEventDelivery>) -> Result<Vec<Event>, Status> {
    if deliveries.is_empty() || deliveries.len() > MAX_EVENTS {
        return Err(invalid_argument(
            "Invalid events",
            vec![FieldViolation::new(
                "events",
                format!("must hold 1 to {MAX_EVENTS} events"),
            )],
        ));
    }
    let mut violations = Vec::new();
    let mut events = Vec::with_capacity(deliveries.len());
    for (index, delivery) in deliveries.into_iter().enumerate() {
        let id = delivery.event_id.parse::<i64>().ok().filter(|id| *id > 0);
        let kind = TaskEventKind::try_from(delivery.event_kind)
            .ok()
            .filter(|kind| *kind != TaskEventKind::Unspecified);
        match (id, kind, delivery.task) {
            (Some(id), Some(kind), Some(task)) => events.push(Event {
                id,
                kind,
                task,
                driver_phone: delivery.driver_phone,
                origin: delivery.origin,
            }),
            (None, _, _) => violations.push(FieldViolation::new(
                format!("events[{index}].event_id"),
                "must be a positive decimal integer",
            )),
            (_, None, _) => violations.push(FieldViolation::new(
                format!("events[{index}].event_kind"),
                "must be a task event kind",
            )),
            (_, _, None) => violations.push(FieldViolation::new(
                format!("events[{index}].task"),
                "is required",
            )),
        }
    }
    if violations.is_empty() {
        Ok(events)
    } else {
        Err(invalid_argument("Invalid events", violations))
    }
}
