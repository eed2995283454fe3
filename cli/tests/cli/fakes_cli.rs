//! `director fakes`: the fakes it starts serve the sample data with the credentials it prints,
//! and `director up --fakes` points the services' environment at them over real settings.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use director::fakes::{self, FakeAddrs};
use director_platform::config::Env;

fn printed(lines: &[String], name: &str) -> String {
    let prefix = format!("{name}=");
    lines
        .iter()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{name} not printed in {lines:#?}"))
        .to_owned()
}

#[tokio::test]
async fn the_printed_environment_reaches_fakes_serving_the_sample() {
    let running = fakes::start(FakeAddrs::any_loopback()).await.unwrap();
    let lines = fakes::env_lines(&running);
    let client = reqwest::Client::new();

    let vessey = printed(&lines, "VESSEY_API_URL");
    let key = printed(&lines, "VESSEY_API_KEY");
    let drivers: serde_json::Value = client
        .get(format!("{vessey}/drivers"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(drivers["drivers"].as_array().unwrap().len(), 5);
    let unauthorized = client
        .get(format!("{vessey}/drivers"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    let slack = client
        .post(printed(&lines, "SLACK_WEBHOOK_URL"))
        .json(&serde_json::json!({"text": "hello from the test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(slack.text().await.unwrap(), "ok");

    let twilio = client
        .post(format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            printed(&lines, "TWILIO_API_URL"),
            printed(&lines, "TWILIO_ACCOUNT_SID")
        ))
        .basic_auth(
            printed(&lines, "TWILIO_ACCOUNT_SID"),
            Some(printed(&lines, "TWILIO_AUTH_TOKEN")),
        )
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "From={}&To=%2B15550100001&Body=hi",
            printed(&lines, "TWILIO_FROM_NUMBER").replace('+', "%2B")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(twilio.status(), 201);
    running.shutdown().await;
}

#[tokio::test]
async fn a_taken_address_is_an_error_naming_it() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = taken.local_addr().unwrap();
    let addrs = FakeAddrs {
        vessey: addr,
        ..FakeAddrs::any_loopback()
    };
    let error = fakes::start(addrs).await.unwrap_err();
    assert!(error.to_string().contains(&addr.to_string()), "{error}");
}

#[tokio::test]
async fn up_with_fakes_replaces_real_integration_settings() {
    let running = fakes::start(FakeAddrs::any_loopback()).await.unwrap();
    let env = Env::from_pairs([
        ("VESSEY_API_URL", "https://vessey.example"),
        ("VESSEY_API_KEY", "real-key"),
        ("DATABASE_URL", "postgres://db.example"),
    ]);
    let env = fakes::use_fakes(env, &running);
    assert_eq!(
        env.string("VESSEY_API_URL").as_deref(),
        Some(running.vessey.url())
    );
    assert_eq!(
        env.string("VESSEY_API_KEY").as_deref(),
        Some(director_fakes::DEFAULT_VESSEY_API_KEY)
    );
    assert_eq!(
        env.string("DATABASE_URL").as_deref(),
        Some("postgres://db.example"),
        "only the integrations' settings change"
    );
}
