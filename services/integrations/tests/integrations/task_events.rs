//! The task-event sink: an event causes its notification once, however often it is
//! delivered; events that do not notify, or whose channel is not configured, cause nothing.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use director_fakes::{FakeAddrs, FakeThirdParties};
use director_platform::identity::{Caller, Role};
use director_proto::dispatch::{Task, TaskEventKind};
use director_proto::integrations::ListNotificationsRequest;
use director_proto::integrations::notifications_service_client::NotificationsServiceClient;
use director_proto::internal::integrations::task_event_sink_service_client::TaskEventSinkServiceClient;
use director_proto::internal::integrations::{DeliverTaskEventsRequest, TaskEventDelivery};
use director_store::testing::{TestService, eventually, spawn_service};

fn assigned(event_id: &str, phone: Option<&str>) -> TaskEventDelivery {
    TaskEventDelivery {
        event_id: event_id.to_owned(),
        event_kind: TaskEventKind::Assigned as i32,
        task: Some(Task {
            id: "5b0c8f6e-0000-4000-8000-000000000001".to_owned(),
            company_id: "5b0c8f6e-0000-4000-8000-000000000002".to_owned(),
            title: "Morning pickup".to_owned(),
            scheduled_for: "2026-11-23".to_owned(),
            ..Task::default()
        }),
        driver_phone: phone.map(str::to_owned),
        driver_name: Some("Ada".to_owned()),
        origin: None,
    }
}

async fn deliver(
    service: &TestService,
    caller: &Caller,
    events: Vec<TaskEventDelivery>,
) -> (i32, i32) {
    let answer = TaskEventSinkServiceClient::new(service.channel().await)
        .deliver_task_events(service.request(caller, DeliverTaskEventsRequest { events }))
        .await
        .unwrap()
        .into_inner();
    (answer.consumed, answer.duplicates)
}

async fn notifications(service: &TestService, caller: &Caller) -> usize {
    NotificationsServiceClient::new(service.channel().await)
        .list_notifications(service.request(caller, ListNotificationsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .notifications
        .len()
}

#[tokio::test]
async fn a_redelivered_event_is_acknowledged_and_sends_nothing_twice() {
    let fakes = FakeThirdParties::start(FakeAddrs::any_loopback())
        .await
        .unwrap();
    let env = fakes.env();
    let mut settings: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    settings.push(("JOB_POLL_INTERVAL_MS", "100"));
    let service = spawn_service(&director_integrations::SERVICE, &settings).await;
    let caller = Caller::new("service:dispatch", "dairy", Role::Admin);

    assert_eq!(
        deliver(&service, &caller, vec![assigned("7", Some("+15550100042"))]).await,
        (1, 0)
    );
    // Again, alone and within a batch with a new event that has no phone.
    assert_eq!(
        deliver(&service, &caller, vec![assigned("7", Some("+15550100042"))]).await,
        (0, 1)
    );
    assert_eq!(
        deliver(
            &service,
            &caller,
            vec![assigned("7", Some("+15550100042")), assigned("8", None)]
        )
        .await,
        (1, 1)
    );
    assert_eq!(notifications(&service, &caller).await, 1);

    eventually("the SMS of event 7", || async {
        (!fakes.twilio.received().is_empty()).then_some(())
    })
    .await;
    // Time for a wrong second SMS to arrive too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let texts = fakes.twilio.received();
    assert_eq!(texts.len(), 1, "one SMS for event 7, none for event 8");
    assert_eq!(texts[0].form_field("To"), Some("+15550100042"));

    // Event ids are per tenant: another tenant's event 7 is its own.
    let other = Caller::new("service:dispatch", "creamery", Role::Admin);
    assert_eq!(
        deliver(&service, &other, vec![assigned("7", Some("+15550100099"))]).await,
        (1, 0)
    );
}

#[tokio::test]
async fn a_malformed_batch_is_refused_whole_and_consumes_nothing() {
    let service = spawn_service(&director_integrations::SERVICE, &[]).await;
    let caller = Caller::new("service:dispatch", "dairy", Role::Admin);
    let mut client = TaskEventSinkServiceClient::new(service.channel().await);
    let status = client
        .deliver_task_events(service.request(
            &caller,
            DeliverTaskEventsRequest {
                events: vec![assigned("9", None), assigned("not-a-number", None)],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("events"), "{status:?}");
    // Event 9 was not consumed by the refused batch.
    assert_eq!(
        deliver(&service, &caller, vec![assigned("9", None)]).await,
        (1, 0)
    );
    let driver = Caller::new("driver-1", "dairy", Role::Driver);
    let status = client
        .deliver_task_events(service.request(
            &driver,
            DeliverTaskEventsRequest {
                events: vec![assigned("10", None)],
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied);
}
