//! The `director.integrations.v1.NotificationsService` gRPC API.

use director_platform::contract_rules;
use director_platform::identity::writer;
use director_platform::time::to_timestamp;
use director_platform::validate::{self, Violations};
use director_proto::integrations::notifications_service_server::NotificationsService;
use director_proto::integrations::{
    ListNotificationsRequest, ListNotificationsResponse, Notification, SendSlackMessageRequest,
    SendSlackMessageResponse, SendSmsRequest, SendSmsResponse,
};
use tonic::{Request, Response, Status};

use super::store::{NewNotification, NotificationRow, NotificationStore};
use crate::access::DRIVERS_CANNOT_USE;
use crate::domain::{NotificationChannel, NotificationStatus, PhoneE164};
use crate::error::IntegrationsError;
use crate::providers::Providers;

/// The Notifications gRPC service.
#[derive(Debug, Clone)]
pub struct NotificationsApi {
    store: NotificationStore,
    providers: Providers,
}

impl NotificationsApi {
    pub fn new(store: NotificationStore, providers: Providers) -> Self {
        Self { store, providers }
    }
}

#[tonic::async_trait]
impl NotificationsService for NotificationsApi {
    async fn send_sms(
        &self,
        request: Request<SendSmsRequest>,
    ) -> Result<Response<SendSmsResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_USE)?;
        contract_rules::check(request.get_ref())?;
        let request = request.into_inner();
        // The contract's rules held: `to` normalises to E.164, `message` is not blank.
        let mut violations = Violations::new();
        let to = violations.check("to", PhoneE164::parse(&request.to));
        let message = request.message;
        violations.into_result()?;
        // Refused now rather than queued to fail for certain.
        let providers = self.providers.for_tenant(&caller).await?;
        let twilio = providers.twilio().map_err(IntegrationsError::from)?;
        if let Some(to) = &to {
            let mut violations = Violations::new();
            violations.check(
                "to",
                self.store
                    .limits()
                    .check_destination(to.as_str(), &twilio.from_number)
                    .map_err(|refused| refused.to_string()),
            );
            violations.into_result()?;
        }
        let new = NewNotification {
            channel: NotificationChannel::Sms,
            recipient: to.map(String::from),
            message,
            source_event_id: None,
            dedup_key: None,
        };
        let row = self.store.queue(&caller, new).await?;
        Ok(Response::new(SendSmsResponse {
            notification: Some(notification_message(row)),
        }))
    }

    async fn send_slack_message(
        &self,
        request: Request<SendSlackMessageRequest>,
    ) -> Result<Response<SendSlackMessageResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_USE)?;
        contract_rules::check(request.get_ref())?;
        let request = request.into_inner();
        // The contract's rules held; the text is sent as written (not trimmed: it is the
        // user's), the channel trimmed and absent when blank.
        let text = request.text;
        let channel = validate::present(request.channel.as_deref());
        self.providers
            .for_tenant(&caller)
            .await?
            .slack()
            .map_err(IntegrationsError::from)?;
        let new = NewNotification {
            channel: NotificationChannel::Slack,
            recipient: channel,
            message: text,
            source_event_id: None,
            dedup_key: None,
        };
        let row = self.store.queue(&caller, new).await?;
        Ok(Response::new(SendSlackMessageResponse {
            notification: Some(notification_message(row)),
        }))
    }

    async fn list_notifications(
        &self,
        request: Request<ListNotificationsRequest>,
    ) -> Result<Response<ListNotificationsResponse>, Status> {
        let caller = writer(&request, DRIVERS_CANNOT_USE)?;
        contract_rules::check(request.get_ref())?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let status = violations
            .check(
                "status",
                NotificationStatus::filter_from_proto(request.status),
            )
            .flatten();
        let page = validate::page(request.skip, request.limit, &mut violations);
        violations.into_result()?;
        let rows = self
            .store
            .list(&caller, status, page)
            .await
            .map_err(IntegrationsError::from)?;
        Ok(Response::new(ListNotificationsResponse {
            notifications: rows.into_iter().map(notification_message).collect(),
        }))
    }
}

/// A stored notification as the API shows it.
pub fn notification_message(row: NotificationRow) -> Notification {
    Notification {
        id: row.id.to_string(),
        channel: row.channel.to_proto() as i32,
        recipient: row.recipient,
        message: row.message,
        status: row.status.to_proto() as i32,
        attempts: row.attempts,
        last_error: row.last_error,
        provider_id: row.provider_id,
        created_at: Some(to_timestamp(row.created_at)),
        updated_at: Some(to_timestamp(row.updated_at)),
    }
}
