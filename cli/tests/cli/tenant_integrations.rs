//! A tenant's own integration settings through the gateway's REST route, end to end: PUT
//! then GET `/api/integrations/settings` answer the settings as JSON with the secrets
//! masked, and a refused URL is a 400 naming its field. The Integrations service's own API
//! behind it (shared tenants, spending limits, calling codes, the egress and Slack host
//! rules) is tested over gRPC in `services/integrations/tests/integrations/tenant_integrations`.

#![allow(clippy::unwrap_used)]

use crate::common;

use common::{TestStack, spawn_stack_with, token};
use director_fakes::{TENANT_TWILIO_ACCOUNT_SID, TENANT_TWILIO_AUTH_TOKEN};
use director_platform::identity::Role;
use serde_json::{Value, json};

/// The tenant's Vessey key (a secret: answers show only its last 4 characters).
const TENANT_VESSEY_KEY: &str = "tenant-own-vessey-key-9f8e7d6c";

const SETTINGS: &str = "/api/integrations/settings";

async fn put_settings(stack: &TestStack, token: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .put(stack.url(SETTINGS))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn get_settings(stack: &TestStack, token: &str) -> (u16, Value) {
    let response = stack.get(SETTINGS, token).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn settings_are_put_and_read_back_as_json_with_their_secrets_masked() {
    // Private egress is not allowed here (the default): a public IP literal is a valid URL
    // (checked without resolving; nothing is sent to it by a PUT).
    let stack = spawn_stack_with(&[("INTEGRATIONS_SHARED_TENANTS", "operator-co")]).await;
    let admin = token("signup-rest", Some(Role::Admin));

    let (status, empty) = get_settings(&stack, &admin).await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(
        empty,
        json!({"vessey": null, "slack": null, "twilio": null})
    );

    let body = json!({
        "vessey": {"api_url": "https://1.1.1.1/v1", "api_key": TENANT_VESSEY_KEY},
        "twilio": {
            "account_sid": TENANT_TWILIO_ACCOUNT_SID,
            "auth_token": TENANT_TWILIO_AUTH_TOKEN,
            "from_number": "+15550109999"
        }
    });
    let (status, settings) = put_settings(&stack, &admin, &body).await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(
        settings,
        json!({
            "vessey": {"api_url": "https://1.1.1.1/v1", "api_key": "…7d6c"},
            "slack": null,
            "twilio": {
                "account_sid": TENANT_TWILIO_ACCOUNT_SID,
                "auth_token": "…oken",
                "from_number": "+15550109999"
            }
        })
    );
    for secret in [TENANT_VESSEY_KEY, TENANT_TWILIO_AUTH_TOKEN] {
        assert!(!settings.to_string().contains(secret), "{settings}");
    }
    let (status, read_back) = get_settings(&stack, &admin).await;
    assert_eq!(status, 200, "{read_back}");
    assert_eq!(read_back, settings);

    // The cloud metadata address: a 400 naming the field, and nothing changed.
    let refused = json!({"vessey": {"api_url": "http://169.254.169.254/", "api_key": "k-123"}});
    let (status, answer) = put_settings(&stack, &admin, &refused).await;
    assert_eq!(status, 400, "{answer}");
    let fields: Vec<&str> = answer["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|field| field["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["vessey.api_url"], "{answer}");
    let (_, after) = get_settings(&stack, &admin).await;
    assert_eq!(after, settings);
}
