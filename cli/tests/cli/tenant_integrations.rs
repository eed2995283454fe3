//! Each tenant's own integration credentials and its spending limits, end to end through the
//! gateway (issue 16): a tenant the deployment does not share its credentials with gets 412
//! until its admin sets its own, then its SMS, Slack and Vessey calls use them; tenants'
//! URLs pass the egress guard; limits answer 429 with `Retry-After`; answers never hold a
//! secret.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use common::{TestStack, eventually, spawn_stack_with, spawn_stack_with_fakes, token};
use director_fakes::{
    FakeServer, FakeSlack, FakeThirdParties, FakeVessey, TENANT_TWILIO_ACCOUNT_SID,
    TENANT_TWILIO_AUTH_TOKEN,
};
use director_platform::identity::Role;
use serde_json::{Value, json};

/// The one tenant the deployment's credentials serve in these tests.
const SHARED_TENANT: &str = "operator-co";
/// The tenant Vessey key of the second fake.
const TENANT_VESSEY_KEY: &str = "tenant-own-vessey-key-9f8e7d6c";
/// The path of the tenant's own Slack webhook (its secret).
const TENANT_SLACK_PATH: &str = "/services/TTENANT00/BTENANT00/tenant-own-slack-secret";

async fn send(request: reqwest::RequestBuilder) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        headers,
    )
}

async fn get(stack: &TestStack, path: &str, token: &str) -> (u16, Value) {
    let (status, body, _) = send(stack.get(path, token)).await;
    (status, body)
}

async fn post(stack: &TestStack, path: &str, token: &str, body: Value) -> (u16, Value) {
    let (status, body, _) = send(stack.post(path, token, body)).await;
    (status, body)
}

async fn put_settings(stack: &TestStack, token: &str, body: Value) -> (u16, Value) {
    let request = reqwest::Client::new()
        .put(stack.url("/api/integrations/settings"))
        .bearer_auth(token)
        .json(&body);
    let (status, body, _) = send(request).await;
    (status, body)
}

/// The integration named `name` in `GET /api/integrations`.
async fn integration(stack: &TestStack, token: &str, name: &str) -> Value {
    let (status, body) = get(stack, "/api/integrations", token).await;
    assert_eq!(status, 200, "{body}");
    body["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|integration| integration["name"] == name)
        .unwrap()
        .clone()
}

/// The fields named in a 400's violations.
fn violated_fields(body: &Value) -> Vec<String> {
    body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| field["field"].as_str().unwrap().to_owned())
        .collect()
}

/// A second fake Vessey and a second webhook path on the shared fake Slack: what a tenant
/// points its own settings at.
async fn tenant_fakes() -> FakeServer {
    FakeVessey::sample()
        .with_api_key(TENANT_VESSEY_KEY)
        .start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap()
}

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

/// Whether `text` holds any of the tenant's or the deployment's secrets.
fn assert_no_secret(text: &str, fakes: &FakeThirdParties) {
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
    let (stack, fakes) = spawn_stack_with_fakes(&[
        ("INTEGRATIONS_SHARED_TENANTS", SHARED_TENANT),
        ("EGRESS_ALLOW_PRIVATE_NETWORKS", "true"),
    ])
    .await;
    let own_vessey = tenant_fakes().await;
    let admin = token("signup-1", Some(Role::Admin));

    // Nothing of the deployment's is theirs.
    let vessey = integration(&stack, &admin, "vessey").await;
    assert_eq!(vessey["configured"], false, "{vessey}");
    assert_eq!(vessey["source"], Value::Null, "{vessey}");
    assert_eq!(
        vessey["missing"],
        json!(["vessey.api_url", "vessey.api_key"])
    );
    let sms = json!({"to": "+1 555 010 0001", "message": "hi"});
    for (path, body) in [
        ("/api/integrations/notifications/sms", sms.clone()),
        (
            "/api/integrations/notifications/slack",
            json!({"text": "<!channel> URGENT"}),
        ),
        ("/api/integrations/vessey/drivers:sync", json!({})),
    ] {
        let (status, answer) = post(&stack, path, &admin, body).await;
        assert_eq!(status, 412, "{path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("not configured"),
            "{answer}"
        );
    }
    let (status, driver) = get(&stack, "/api/integrations/vessey/drivers/1", &admin).await;
    assert_eq!(status, 412, "{driver}");
    assert!(fakes.twilio.received().is_empty());
    assert!(fakes.slack.received().is_empty());
    assert!(fakes.vessey.received().is_empty());

    // Only an admin sees or changes the settings.
    for role in [Role::Dispatcher, Role::Driver] {
        let other = token("signup-1", Some(role));
        let (status, body) = get(&stack, "/api/integrations/settings", &other).await;
        assert_eq!(status, 403, "{role:?} {body}");
        let (status, body) =
            put_settings(&stack, &other, tenant_settings(&own_vessey, &fakes)).await;
        assert_eq!(status, 403, "{role:?} {body}");
    }
    let (status, empty) = get(&stack, "/api/integrations/settings", &admin).await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(
        empty,
        json!({"vessey": null, "slack": null, "twilio": null})
    );

    // The admin sets its own; answers show the secrets masked.
    let (status, settings) =
        put_settings(&stack, &admin, tenant_settings(&own_vessey, &fakes)).await;
    assert_eq!(status, 200, "{settings}");
    // Stored as checked: the URL's normal form.
    let own_url = reqwest::Url::parse(own_vessey.url()).unwrap().to_string();
    assert_eq!(settings["vessey"]["api_url"], own_url);
    assert_eq!(settings["vessey"]["api_key"], "…7d6c");
    assert_eq!(settings["slack"]["webhook_url"], "…cret");
    assert_eq!(settings["twilio"]["account_sid"], TENANT_TWILIO_ACCOUNT_SID);
    assert_eq!(settings["twilio"]["auth_token"], "…oken");
    assert_eq!(settings["twilio"]["from_number"], "+15550109999");
    assert_no_secret(&settings.to_string(), &fakes);
    let (_, read_back) = get(&stack, "/api/integrations/settings", &admin).await;
    assert_eq!(read_back, settings);
    for name in ["vessey", "slack", "twilio"] {
        let state = integration(&stack, &admin, name).await;
        assert_eq!(state["configured"], true, "{state}");
        assert_eq!(state["source"], "tenant", "{state}");
    }

    // Its SMS goes out with its account, its Slack message to its webhook, its sync reads
    // its Vessey with its key.
    let (status, queued) = post(&stack, "/api/integrations/notifications/sms", &admin, sms).await;
    assert_eq!(status, 200, "{queued}");
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

    let (status, body) = post(
        &stack,
        "/api/integrations/notifications/slack",
        &admin,
        json!({"text": "tanker back"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let posted = eventually("the tenant's Slack message", || async {
        let posted = fakes.slack.received();
        (!posted.is_empty()).then_some(posted)
    })
    .await;
    assert_eq!(posted[0].path, TENANT_SLACK_PATH);

    let (status, job) = post(
        &stack,
        "/api/integrations/vessey/drivers:sync",
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    let job = eventually("the sync", || async {
        let (_, job) = get(&stack, &format!("/api/integrations/jobs/{id}"), &admin).await;
        matches!(job["status"].as_str(), Some("succeeded" | "dead")).then_some(job)
    })
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
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
    assert!(
        keys.iter()
            .all(|key| key.as_deref() == Some(&*format!("Bearer {TENANT_VESSEY_KEY}")))
    );

    // The shared tenant still uses the deployment's; the tenant's settings are its own.
    let operator = token(SHARED_TENANT, Some(Role::Admin));
    assert_eq!(
        integration(&stack, &operator, "twilio").await["source"],
        "shared"
    );
    let (_, theirs) = get(&stack, "/api/integrations/settings", &operator).await;
    assert_eq!(
        theirs,
        json!({"vessey": null, "slack": null, "twilio": null})
    );

    // `null` removes a section; an absent one stays.
    let (status, after) = put_settings(&stack, &admin, json!({"slack": null})).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["slack"], Value::Null);
    assert_eq!(after["vessey"]["api_url"], own_url);
    let (status, _) = post(
        &stack,
        "/api/integrations/notifications/slack",
        &admin,
        json!({"text": "again"}),
    )
    .await;
    assert_eq!(status, 412);

    // Nothing the tenant can read holds a secret.
    for path in [
        "/api/integrations",
        "/api/integrations/settings",
        "/api/integrations/notifications",
        "/api/integrations/jobs",
    ] {
        let (_, body) = get(&stack, path, &admin).await;
        assert_no_secret(&body.to_string(), &fakes);
    }
    own_vessey.shutdown().await;
}

#[tokio::test]
async fn a_put_is_checked_whole_and_refused_urls_name_their_field() {
    // Private egress is not allowed here (the default).
    let stack = spawn_stack_with(&[("INTEGRATIONS_SHARED_TENANTS", SHARED_TENANT)]).await;
    let admin = token("signup-2", Some(Role::Admin));
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
        let (status, answer) = put_settings(&stack, &admin, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(
            violated_fields(&answer).contains(&field.to_owned()),
            "{body}: {answer}"
        );
        for violation in answer["fields"].as_array().unwrap() {
            let description = violation["description"].as_str().unwrap();
            assert!(!description.starts_with(field), "{answer}");
        }
        // A refused PUT changes nothing, even its valid sections.
        let (_, settings) = get(&stack, "/api/integrations/settings", &admin).await;
        assert_eq!(
            settings,
            json!({"vessey": null, "slack": null, "twilio": null})
        );
    }
    let (status, answer) = put_settings(&stack, &admin, json!({"twilio": valid_twilio})).await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn spending_limits_answer_429_and_sms_go_only_to_allowed_calling_codes() {
    let (stack, fakes) = spawn_stack_with_fakes(&[("SLACK_PER_MINUTE_LIMIT", "2")]).await;
    let admin = token("busy-co", Some(Role::Admin));

    // The default daily SMS limit is 500: the 501st is refused.
    let sms = json!({"to": "+1 555 010 0001", "message": "load test"});
    for n in 1..=500 {
        let (status, body) = post(
            &stack,
            "/api/integrations/notifications/sms",
            &admin,
            sms.clone(),
        )
        .await;
        assert_eq!(status, 200, "SMS {n}: {body}");
    }
    let (status, body, headers) =
        send(stack.post("/api/integrations/notifications/sms", &admin, sms.clone())).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("SMS_DAILY_LIMIT"),
        "{body}"
    );
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    // Another tenant's day is its own.
    let other = token("quiet-co", Some(Role::Admin));
    let (status, body) = post(&stack, "/api/integrations/notifications/sms", &other, sms).await;
    assert_eq!(status, 200, "{body}");

    for n in 1..=2 {
        let (status, body) = post(
            &stack,
            "/api/integrations/notifications/slack",
            &admin,
            json!({"text": format!("message {n}")}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body, headers) = send(stack.post(
        "/api/integrations/notifications/slack",
        &admin,
        json!({"text": "one too many"}),
    ))
    .await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("SLACK_PER_MINUTE_LIMIT"),
        "{body}"
    );
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");

    // The sender is +1 (the fake's number): +882 is refused naming the calling code.
    let (status, body) = post(
        &stack,
        "/api/integrations/notifications/sms",
        &other,
        json!({"to": "+882 1234 5678 90", "message": "hi"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(violated_fields(&body), ["to"]);
    assert!(body.to_string().contains("+882"), "{body}");

    // Refused requests queued nothing: 501 SMS reach the fake in all.
    eventually("every accepted SMS delivered", || async {
        (fakes.twilio.received().len() == 501).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_notification_a_task_event_causes_beyond_the_limit_is_recorded_refused() {
    let (stack, fakes) = spawn_stack_with_fakes(&[("SMS_DAILY_LIMIT", "1")]).await;
    let admin = token("events-co", Some(Role::Admin));
    let company = stack.create_company(&admin, json!({"name": "Farm"})).await;
    let driver = stack
        .create_driver(&admin, json!({"name": "Ann", "phone": "+15550100042"}))
        .await;
    let (status, _) = post(
        &stack,
        "/api/integrations/notifications/sms",
        &admin,
        json!({"to": "+15550100001", "message": "the day's one SMS"}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, task) = post(
        &stack,
        "/api/tasks",
        &admin,
        json!({"company_id": company["id"], "title": "Morning", "scheduled_for": "2026-12-07"}),
    )
    .await;
    assert_eq!(status, 200, "{task}");
    let (status, body) = post(
        &stack,
        &format!("/api/tasks/{}/assign", task["id"].as_str().unwrap()),
        &admin,
        json!({"driver_id": driver["id"]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let refused = eventually("the assignment's SMS recorded refused", || async {
        let (_, list) = get(
            &stack,
            "/api/integrations/notifications?status=refused",
            &admin,
        )
        .await;
        list.as_array().and_then(|list| list.first().cloned())
    })
    .await;
    assert_eq!(refused["recipient"], "+15550100042", "{refused}");
    assert_eq!(refused["attempts"], 0, "{refused}");
    assert!(
        refused["last_error"]
            .as_str()
            .unwrap()
            .contains("SMS_DAILY_LIMIT"),
        "{refused}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fakes.twilio.received().len(), 1, "the refused SMS was sent");
}

#[tokio::test]
async fn slack_webhooks_of_tenants_go_only_to_the_allowed_hosts() {
    // `localhost` is not hooks.slack.com: refused even though it would resolve.
    let slack = FakeSlack::new()
        .start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .unwrap();
    let stack = spawn_stack_with(&[("INTEGRATIONS_SHARED_TENANTS", SHARED_TENANT)]).await;
    let admin = token("signup-3", Some(Role::Admin));
    let url = slack.url().replace("127.0.0.1", "localhost");
    let (status, body) = put_settings(&stack, &admin, json!({"slack": {"webhook_url": url}})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(violated_fields(&body), ["slack.webhook_url"]);
    assert!(!body.to_string().contains("fakewebhooksecret"), "{body}");
    slack.shutdown().await;
}
