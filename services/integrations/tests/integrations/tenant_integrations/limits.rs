//! Each tenant's spending limits: over one, a request is RESOURCE_EXHAUSTED with a
//! `RetryInfo` until the next window opens, and a notification a task event causes is
//! recorded refused; SMS go only to the calling codes the deployment allows.

use std::time::Duration;

use director_platform::identity::Role;
use director_proto::companies::CreateCompanyRequest;
use director_proto::companies::companies_service_client::CompaniesServiceClient;
use director_proto::dispatch::drivers_service_client::DriversServiceClient;
use director_proto::dispatch::tasks_service_client::TasksServiceClient;
use director_proto::dispatch::{AssignTaskRequest, CreateDriverRequest, CreateTaskRequest};
use director_proto::integrations::NotificationStatus;

use super::{
    Dispatch, Integrations, caller, eventually, refusal_text, retry_delay, start_fakes,
    violated_fields, with_fakes,
};

#[tokio::test]
async fn spending_limits_answer_resource_exhausted_and_sms_go_only_to_allowed_calling_codes() {
    let fakes = start_fakes().await;
    let api = Integrations::start(&with_fakes(&fakes, &[("SLACK_PER_MINUTE_LIMIT", "2")])).await;
    let admin = caller("busy-co", Role::Admin);

    // The default daily SMS limit is 500: the 501st is refused.
    let (to, text) = ("+1 555 010 0001", "load test");
    for n in 1..=500 {
        let answer = api.send_sms(&admin, to, text).await;
        assert!(answer.is_ok(), "SMS {n}: {answer:?}");
    }
    let refusal = api.send_sms(&admin, to, text).await.unwrap_err();
    let delay = retry_delay(&refusal);
    assert!(refusal.message().contains("SMS_DAILY_LIMIT"), "{refusal:?}");
    let day = Duration::from_secs(86_400);
    assert!(Duration::ZERO < delay && delay <= day, "{delay:?}");
    // Another tenant's day is its own.
    let other = caller("quiet-co", Role::Admin);
    api.send_sms(&other, to, text).await.unwrap();

    for n in 1..=2 {
        let answer = api.send_slack(&admin, &format!("message {n}")).await;
        assert!(answer.is_ok(), "{answer:?}");
    }
    let refusal = api.send_slack(&admin, "one too many").await.unwrap_err();
    let delay = retry_delay(&refusal);
    assert!(
        refusal.message().contains("SLACK_PER_MINUTE_LIMIT"),
        "{refusal:?}"
    );
    let minute = Duration::from_secs(60);
    assert!(Duration::ZERO < delay && delay <= minute, "{delay:?}");

    // The sender is +1 (the fake's number): +882 is refused naming the calling code.
    let refusal = api
        .send_sms(&other, "+882 1234 5678 90", "hi")
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&refusal), ["to"]);
    assert!(refusal_text(&refusal).contains("+882"), "{refusal:?}");

    // Refused requests queued nothing: 501 SMS reach the fake in all.
    eventually("every accepted SMS delivered", || async {
        (fakes.twilio.received().len() == 501).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_notification_a_task_event_causes_beyond_the_limit_is_recorded_refused() {
    let fakes = start_fakes().await;
    let api = Integrations::start(&with_fakes(&fakes, &[("SMS_DAILY_LIMIT", "1")])).await;
    let dispatch = Dispatch::start(Some(&api.url())).await;
    let admin = caller("events-co", Role::Admin);

    let company = CreateCompanyRequest {
        name: "Farm".to_owned(),
        ..Default::default()
    };
    let company = CompaniesServiceClient::new(dispatch.companies.channel().await)
        .create_company(dispatch.companies.request(&admin, company))
        .await
        .unwrap()
        .into_inner()
        .company
        .unwrap();
    let driver = CreateDriverRequest {
        name: "Ann".to_owned(),
        phone: Some("+15550100042".to_owned()),
        ..Default::default()
    };
    let driver = DriversServiceClient::new(dispatch.dispatch.channel().await)
        .create_driver(dispatch.dispatch.request(&admin, driver))
        .await
        .unwrap()
        .into_inner()
        .driver
        .unwrap();
    api.send_sms(&admin, "+15550100001", "the day's one SMS")
        .await
        .unwrap();

    let mut tasks = TasksServiceClient::new(dispatch.dispatch.channel().await);
    let task = CreateTaskRequest {
        company_id: company.id,
        title: "Morning".to_owned(),
        scheduled_for: "2026-12-07".to_owned(),
        ..Default::default()
    };
    let task = tasks
        .create_task(dispatch.dispatch.request(&admin, task))
        .await
        .unwrap()
        .into_inner()
        .task
        .unwrap();
    let assign = AssignTaskRequest {
        id: task.id,
        driver_id: driver.id,
    };
    tasks
        .assign_task(dispatch.dispatch.request(&admin, assign))
        .await
        .unwrap();

    let refused = eventually("the assignment's SMS recorded refused", || async {
        let refused = api
            .list_notifications(&admin, NotificationStatus::Refused)
            .await;
        refused.first().cloned()
    })
    .await;
    assert_eq!(
        refused.recipient.as_deref(),
        Some("+15550100042"),
        "{refused:?}"
    );
    assert_eq!(refused.attempts, 0, "{refused:?}");
    let error = refused.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("SMS_DAILY_LIMIT"), "{refused:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fakes.twilio.received().len(), 1, "the refused SMS was sent");
}
