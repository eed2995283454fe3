//! The Twilio and Slack clients against their fakes over real HTTP.

#![allow(clippy::unwrap_used)]

use crate::common;

use base64::Engine;
use common::{slack, twilio};
use director_fakes::{DEFAULT_TWILIO_FROM_NUMBER, INVALID_TO_NUMBER, RetryAfter, StatusCode};
use director_platform::config::Env;
use director_providers::{ProviderError, ProvidersConfig};

#[tokio::test]
async fn an_sms_arrives_as_twilio_expects_it_and_returns_the_message_sid() {
    let (server, client, fake) = twilio().await;
    let sid = client
        .send_sms(
            "+15550100001",
            "Collection at Green Acres, 06:00 & bring the tank",
        )
        .await
        .unwrap();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");

    let received = server.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.path,
        format!("/2010-04-01/Accounts/{}/Messages.json", fake.account_sid())
    );
    assert_eq!(request.form_field("From"), Some(DEFAULT_TWILIO_FROM_NUMBER));
    assert_eq!(request.form_field("To"), Some("+15550100001"));
    assert_eq!(
        request.form_field("Body"),
        Some("Collection at Green Acres, 06:00 & bring the tank")
    );
    let expected = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        fake.account_sid(),
        fake.auth_token()
    ));
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {expected}").as_str())
    );
}

#[tokio::test]
async fn an_invalid_number_is_rejected_with_twilios_message_and_not_retried() {
    let (server, client, _) = twilio().await;
    let error = client.send_sms(INVALID_TO_NUMBER, "hi").await.unwrap_err();
    let ProviderError::Rejected { status, message } = &error else {
        panic!("expected Rejected, got {error:?}");
    };
    assert_eq!(*status, 400);
    assert!(message.contains("is not a valid phone number"), "{message}");
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn a_wrong_twilio_token_is_rejected_and_never_appears_in_the_error() {
    let (server, _, fake) = twilio().await;
    let config = director_providers::TwilioConfig::new(
        server.url(),
        fake.account_sid(),
        "twilio-token-that-is-wrong",
        DEFAULT_TWILIO_FROM_NUMBER,
    )
    .unwrap();
    let client = director_providers::TwilioClient::new(config, common::fast_retry()).unwrap();
    let error = client.send_sms("+15550100001", "hi").await.unwrap_err();
    assert!(
        matches!(error, ProviderError::Rejected { status: 401, .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("twilio-token-that-is-wrong"));
}

#[tokio::test]
async fn twilio_server_errors_and_rate_limits_are_retried() {
    let (server, client, _) = twilio().await;
    server.fail_next(1, StatusCode::INTERNAL_SERVER_ERROR);
    server.rate_limit_next(1, RetryAfter::Seconds(0));
    client.send_sms("+15550100001", "hi").await.unwrap();
    assert_eq!(server.received().len(), 3);
}

#[tokio::test]
async fn a_slack_message_arrives_as_json_with_its_channel() {
    let (server, client) = slack().await;
    client.post("Collection done", Some("#ops")).await.unwrap();
    client.post("No channel", None).await.unwrap();
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].path, director_fakes::WEBHOOK_PATH);
    assert_eq!(received[0].header("content-type"), Some("application/json"));
    assert_eq!(
        received[0].json().unwrap(),
        serde_json::json!({"text": "Collection done", "channel": "#ops"})
    );
    assert_eq!(
        received[1].json().unwrap(),
        serde_json::json!({"text": "No channel"})
    );
}

#[tokio::test]
async fn slack_refusing_the_payload_is_rejected_without_the_webhook_url() {
    let (server, client) = slack().await;
    let error = client.post("", None).await.unwrap_err();
    let ProviderError::Rejected { status, message } = &error else {
        panic!("expected Rejected, got {error:?}");
    };
    assert_eq!(*status, 400);
    assert!(message.contains("invalid_payload"), "{message}");
    assert!(!message.contains("fakewebhooksecret"), "{message}");
    assert!(!format!("{client:?}").contains("fakewebhooksecret"));
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn slack_outages_are_unavailable_without_the_webhook_url() {
    let (server, client) = slack().await;
    server.fail_next(5, StatusCode::BAD_GATEWAY);
    let error = client.post("hi", None).await.unwrap_err();
    assert_eq!(
        error,
        ProviderError::Unavailable(
            "Slack POST webhook failed after 5 attempts: 502 Bad Gateway (injected failure)"
                .to_owned()
        )
    );
}

#[tokio::test]
async fn missing_notification_settings_are_not_configured_naming_them() {
    let env = Env::from_pairs([("TWILIO_ACCOUNT_SID", "AC1")]);
    let config = ProvidersConfig::from_env(&env).unwrap();
    let twilio = config.twilio_client().unwrap_err();
    assert_eq!(
        twilio.to_string(),
        "Twilio credentials not configured: TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER are not set"
    );
    let slack = config.slack_client().unwrap_err();
    assert_eq!(
        slack.to_string(),
        "Slack webhook not configured: SLACK_WEBHOOK_URL is not set"
    );
}

#[tokio::test]
async fn a_configuration_from_the_fakes_environment_reaches_every_fake() {
    let fakes = director_fakes::FakeThirdParties::start(director_fakes::FakeAddrs::any_loopback())
        .await
        .unwrap();
    let config = ProvidersConfig::from_env(&Env::from_pairs(fakes.env())).unwrap();
    assert!(config.vessey.is_ok() && config.slack.is_ok() && config.twilio.is_ok());
    let driver = config.vessey_client().unwrap().driver("1").await.unwrap();
    assert_eq!(driver.name, "Ann Murphy");
    config
        .slack_client()
        .unwrap()
        .post("hi", None)
        .await
        .unwrap();
    config
        .twilio_client()
        .unwrap()
        .send_sms("+15550100001", "hi")
        .await
        .unwrap();
    assert_eq!(fakes.slack.received().len(), 1);
    assert_eq!(fakes.twilio.received().len(), 1);
}
