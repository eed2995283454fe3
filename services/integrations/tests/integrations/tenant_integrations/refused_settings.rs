//! What an admin may not set: a PUT is checked whole, each refusal is INVALID_ARGUMENT
//! naming its field, and tenants' URLs go only where the egress guard and the Slack host
//! list allow.

use std::net::{Ipv4Addr, SocketAddr};

use director_fakes::{FakeSlack, TENANT_TWILIO_ACCOUNT_SID};
use director_platform::identity::Role;
use director_proto::integrations::IntegrationSettings;
use serde_json::json;

use super::{Integrations, SHARED_TENANT, caller, refusal_text, violated_fields, violations};

#[tokio::test]
async fn a_put_is_checked_whole_and_refused_urls_name_their_field() {
    // Private egress is not allowed here (the default).
    let api = Integrations::start_with(&[("INTEGRATIONS_SHARED_TENANTS", SHARED_TENANT)]).await;
    let admin = caller("signup-2", Role::Admin);
    let valid_twilio = json!({
        "account_sid": TENANT_TWILIO_ACCOUNT_SID,
        "auth_token": "a-token-of-some-length",
        "from_number": "+15550109999"
    });
    for (body, field) in [
        (
            json!({"vessey": {"api_url": "http://169.254.169.254/", "api_key": "k-123"}}),
            "vessey.api_url",
        ),
        (
            json!({"vessey": {"api_url": "https://127.0.0.1/", "api_key": "k-123"}}),
            "vessey.api_url",
        ),
        (
            json!({"vessey": {"api_url": "https://[::ffff:10.0.0.1]/v1", "api_key": "k-123"}}),
            "vessey.api_url",
        ),
        (
            json!({"slack": {"webhook_url": "https://hooks.evil.example/services/T/B/X"}}),
            "slack.webhook_url",
        ),
        (
            json!({"slack": {"webhook_url": "https://localhost/services/T/B/X"}}),
            "slack.webhook_url",
        ),
        (
            json!({"vessey": {"api_url": "https://vessey.example"}}),
            "vessey.api_key",
        ),
        (
            json!({"twilio": {"account_sid": "AC1"}}),
            "twilio.account_sid",
        ),
        (json!({"twilio": "yes"}), "twilio"),
        (
            json!({"twilio": valid_twilio.clone(), "slack": {"webhook_url": "ftp://x"}}),
            "slack.webhook_url",
        ),
        (
            json!({"vessey": {"api_url": "https://vessey.example", "api_key": "k-1", "extra": 1}}),
            "vessey.extra",
        ),
    ] {
        let refusal = api.put_settings(&admin, &body).await.unwrap_err();
        assert!(
            violated_fields(&refusal).contains(&field.to_owned()),
            "{body}: {refusal:?}"
        );
        for violation in violations(&refusal) {
            assert!(
                !violation.description.starts_with(field),
                "{body}: {refusal:?}"
            );
        }
        // A refused PUT changes nothing, even its valid sections.
        let settings = api.settings(&admin).await.unwrap();
        assert_eq!(settings, IntegrationSettings::default(), "{body}");
    }
    let body = json!({"twilio": valid_twilio});
    let settings = api.put_settings(&admin, &body).await.unwrap();
    assert!(settings.twilio.is_some(), "{settings:?}");
}

#[tokio::test]
async fn slack_webhooks_of_tenants_go_only_to_the_allowed_hosts() {
    // `localhost` is not hooks.slack.com: refused even though it would resolve.
    let slack = FakeSlack::new()
        .start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let api = Integrations::start_with(&[("INTEGRATIONS_SHARED_TENANTS", SHARED_TENANT)]).await;
    let admin = caller("signup-3", Role::Admin);
    let url = slack.url().replace("127.0.0.1", "localhost");
    let body = json!({"slack": {"webhook_url": url}});
    let refusal = api.put_settings(&admin, &body).await.unwrap_err();
    assert_eq!(violated_fields(&refusal), ["slack.webhook_url"]);
    let text = refusal_text(&refusal);
    assert!(!text.contains("fakewebhooksecret"), "{text}");
    slack.shutdown().await;
}
