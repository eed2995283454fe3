//! A tenant the deployment does not share its credentials with gets FAILED_PRECONDITION
//! until its admin sets its own; then its SMS, Slack and Vessey calls use them, and no
//! answer holds a secret.

use std::fmt::Debug;
use std::net::{Ipv4Addr, SocketAddr};

use base64::Engine as _;
use director_fakes::{
    FakeServer, FakeThirdParties, FakeVessey, TENANT_TWILIO_ACCOUNT_SID, TENANT_TWILIO_AUTH_TOKEN,
};
use director_platform::identity::Role;
use director_proto::integrations::{
    IntegrationSettings, JobStatus, NotificationStatus, SlackSettings, TwilioSettings,
    VesseySettings,
};
use serde_json::{Value, json};
use tonic::Code;

use super::{
    Dispatch, Integrations, SHARED_TENANT, answer_text, caller, eventually, start_fakes, with_fakes,
};

/// The tenant Vessey key of the second fake.
const TENANT_VESSEY_KEY: &str = "tenant-own-vessey-key-9f8e7d6c";
/// The path of the tenant's own Slack webhook (its secret).
const TENANT_SLACK_PATH: &str = "/services/TTENANT00/BTENANT00/tenant-own-slack-secret";

/// A second fake Vessey, with its own key: what a tenant points its own settings at.
async fn tenant_vessey() -> FakeServer {
    FakeVessey::sample()
        .with_api_key(TENANT_VESSEY_KEY)
        .start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap()
}

/// The tenant's own settings: the second fake Vessey, a second webhook path on the shared
/// fake Slack, the tenant account of the fake Twilio.
fn tenant_settings(vessey: &FakeServer, fakes: &FakeThirdParties) -> Value {
    json!({
        "vessey": {"api_url": vessey.url(), "api_key": TENANT_VESSEY_KEY},
        "slack": {"webhook_url": format!("{}{TENANT_SLACK_PATH}", fakes.slack.base_url())},
        "twilio": {
            "account_sid": TENANT_TWILIO_ACCOUNT_SID,
            "auth_token": TENANT_TWILIO_AUTH_TOKEN,
            "from_number": "+15550109999"
        }
    })
}

/// Asserts `answer` (its Debug form and its encoded bytes) holds none of the tenant's or
/// the deployment's secrets.
fn assert_no_secret<M: prost::Message + Debug>(answer: &M, fakes: &FakeThirdParties) {
    let text = answer_text(answer);
    let mut secrets = vec![
        TENANT_VESSEY_KEY.to_owned(),
        TENANT_SLACK_PATH.to_owned(),
        TENANT_TWILIO_AUTH_TOKEN.to_owned(),
    ];
    for (variable, value) in fakes.env() {
        if matches!(
            variable,
            "VESSEY_API_KEY" | "SLACK_WEBHOOK_URL" | "TWILIO_AUTH_TOKEN"
        ) {
            secrets.push(value);
        }
    }
    for secret in secrets {
        assert!(!text.contains(&secret), "a secret leaked: {text}");
    }
}

#[tokio::test]
async fn a_tenant_outside_the_shared_list_uses_its_own_credentials_once_its_admin_sets_them() {
    let fakes = start_fakes().await;
    let dispatch = Dispatch::start(None).await;
    let mut settings = with_fakes(
        &fakes,
        &[
            ("INTEGRATIONS_SHARED_TENANTS", SHARED_TENANT),
            ("EGRESS_ALLOW_PRIVATE_NETWORKS", "true"),
        ],
    );
    settings.extend(dispatch.urls());
    let api = Integrations::start(&settings).await;
    let own_vessey = tenant_vessey().await;
    let admin = caller("signup-1", Role::Admin);

    // Nothing of the deployment's is theirs.
    let vessey = api.integration(&admin, "vessey").await;
    assert!(!vessey.configured, "{vessey:?}");
    assert_eq!(vessey.source, None, "{vessey:?}");
    assert_eq!(vessey.missing, ["vessey.api_url", "vessey.api_key"]);
    let refusals = [
        (
            "SendSms",
            api.send_sms(&admin, "+1 555 010 0001", "hi")
                .await
                .unwrap_err(),
        ),
        (
            "SendSlackMessage",
            api.send_slack(&admin, "<!channel> URGENT")
                .await
                .unwrap_err(),
        ),
        (
            "SyncVesseyDrivers",
            api.sync_drivers(&admin).await.unwrap_err(),
        ),
    ];
    for (call, refusal) in refusals {
        assert_eq!(
            refusal.code(),
            Code::FailedPrecondition,
            "{call}: {refusal:?}"
        );
        assert!(
            refusal.message().contains("not configured"),
            "{call}: {refusal:?}"
        );
    }
    let driver = api.vessey_driver(&admin, "1").await.unwrap_err();
    assert_eq!(driver.code(), Code::FailedPrecondition, "{driver:?}");
    assert!(fakes.twilio.received().is_empty());
    assert!(fakes.slack.received().is_empty());
    assert!(fakes.vessey.received().is_empty());

    // Only an admin sees or changes the settings.
    for role in [Role::Dispatcher, Role::Driver] {
        let other = caller("signup-1", role);
        let refusal = api.settings(&other).await.unwrap_err();
        assert_eq!(
            refusal.code(),
            Code::PermissionDenied,
            "{role:?} {refusal:?}"
        );
        let body = tenant_settings(&own_vessey, &fakes);
        let refusal = api.put_settings(&other, &body).await.unwrap_err();
        assert_eq!(
            refusal.code(),
            Code::PermissionDenied,
            "{role:?} {refusal:?}"
        );
    }
    let empty = api.settings(&admin).await.unwrap();
    assert_eq!(empty, IntegrationSettings::default());

    // The admin sets its own; answers show the secrets masked.
    let body = tenant_settings(&own_vessey, &fakes);
    let settings = api.put_settings(&admin, &body).await.unwrap();
    // Stored as checked: the URL's normal form.
    let own_url = reqwest::Url::parse(own_vessey.url()).unwrap().to_string();
    let masked = IntegrationSettings {
        vessey: Some(VesseySettings {
            api_url: own_url.clone(),
            api_key: "…7d6c".to_owned(),
        }),
        slack: Some(SlackSettings {
            webhook_url: "…cret".to_owned(),
        }),
        twilio: Some(TwilioSettings {
            account_sid: TENANT_TWILIO_ACCOUNT_SID.to_owned(),
            auth_token: "…oken".to_owned(),
            from_number: "+15550109999".to_owned(),
        }),
    };
    assert_eq!(settings, masked);
    assert_no_secret(&settings, &fakes);
    assert_eq!(api.settings(&admin).await.unwrap(), settings);
    for name in ["vessey", "slack", "twilio"] {
        let state = api.integration(&admin, name).await;
        assert!(state.configured, "{state:?}");
        assert_eq!(state.source.as_deref(), Some("tenant"), "{state:?}");
    }

    // Its SMS goes out with its account, its Slack message to its webhook, its sync reads
    // its Vessey with its key.
    let queued = api.send_sms(&admin, "+1 555 010 0001", "hi").await.unwrap();
    assert_no_secret(&queued, &fakes);
    let texts = eventually("the tenant's SMS", || async {
        let texts = fakes.twilio.received();
        (!texts.is_empty()).then_some(texts)
    })
    .await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{TENANT_TWILIO_ACCOUNT_SID}:{TENANT_TWILIO_AUTH_TOKEN}"
    ));
    assert_eq!(
        texts[0].header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    assert!(
        texts[0].path.contains(TENANT_TWILIO_ACCOUNT_SID),
        "{}",
        texts[0].path
    );
    assert_eq!(texts[0].form_field("From"), Some("+15550109999"));

    api.send_slack(&admin, "tanker back").await.unwrap();
    let posted = eventually("the tenant's Slack message", || async {
        let posted = fakes.slack.received();
        (!posted.is_empty()).then_some(posted)
    })
    .await;
    assert_eq!(posted[0].path, TENANT_SLACK_PATH);

    let job = api.sync_drivers(&admin).await.unwrap();
    let finished = [JobStatus::Succeeded as i32, JobStatus::Dead as i32];
    let job = eventually("the sync", || async {
        let job = api.job(&admin, &job.id).await;
        finished.contains(&job.status).then_some(job)
    })
    .await;
    assert_eq!(job.status, JobStatus::Succeeded as i32, "{job:?}");
    assert!(
        fakes.vessey.received().is_empty(),
        "the operator's Vessey was used"
    );
    let keys: Vec<Option<String>> = own_vessey
        .received()
        .iter()
        .map(|request| request.header("authorization").map(str::to_owned))
        .collect();
    assert!(!keys.is_empty());
    let bearer = format!("Bearer {TENANT_VESSEY_KEY}");
    assert!(
        keys.iter()
            .all(|key| key.as_deref() == Some(bearer.as_str())),
        "{keys:?}"
    );

    // The shared tenant still uses the deployment's; the tenant's settings are its own.
    let operator = caller(SHARED_TENANT, Role::Admin);
    let twilio = api.integration(&operator, "twilio").await;
    assert_eq!(twilio.source.as_deref(), Some("shared"), "{twilio:?}");
    let theirs = api.settings(&operator).await.unwrap();
    assert_eq!(theirs, IntegrationSettings::default());

    // `null` removes a section; an absent one stays.
    let after = api
        .put_settings(&admin, &json!({"slack": null}))
        .await
        .unwrap();
    assert_eq!(after.slack, None);
    assert_eq!(after.vessey.as_ref().unwrap().api_url, own_url);
    let refusal = api.send_slack(&admin, "again").await.unwrap_err();
    assert_eq!(refusal.code(), Code::FailedPrecondition, "{refusal:?}");

    // Nothing the tenant can read holds a secret.
    for integration in api.list_integrations(&admin).await {
        assert_no_secret(&integration, &fakes);
    }
    assert_no_secret(&api.settings(&admin).await.unwrap(), &fakes);
    for notification in api
        .list_notifications(&admin, NotificationStatus::Unspecified)
        .await
    {
        assert_no_secret(&notification, &fakes);
    }
    for job in api.list_jobs(&admin).await {
        assert_no_secret(&job, &fakes);
    }
    own_vessey.shutdown().await;
}
