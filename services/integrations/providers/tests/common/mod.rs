//! Fakes on free loopback ports and clients pointed at them with tiny retry delays.

#![allow(clippy::unwrap_used, dead_code)]

pub mod raw;

use std::time::Duration;

use director_fakes::{FakeServer, FakeSlack, FakeTwilio, FakeVessey};
use director_providers::{
    RetryPolicy, SlackClient, SlackConfig, TwilioClient, TwilioConfig, VesseyClient, VesseyConfig,
};
use tokio::net::TcpListener;

/// Retries in milliseconds rather than seconds; `Retry-After` still honoured up to 5 s.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(20),
        retry_after_cap: Duration::from_secs(5),
    }
}

pub async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

pub async fn vessey_fake(fake: FakeVessey) -> FakeServer {
    fake.start(listener().await).unwrap()
}

pub fn vessey_client(server: &FakeServer, fake: &FakeVessey) -> VesseyClient {
    let config = VesseyConfig::new(server.url(), fake.api_key()).unwrap();
    VesseyClient::new(config, fast_retry()).unwrap()
}

/// The sample Vessey and a client for it.
pub async fn vessey() -> (FakeServer, VesseyClient) {
    let fake = FakeVessey::sample();
    let server = vessey_fake(fake.clone()).await;
    let client = vessey_client(&server, &fake);
    (server, client)
}

pub async fn twilio() -> (FakeServer, TwilioClient, FakeTwilio) {
    let fake = FakeTwilio::default();
    let server = fake.clone().start(listener().await).unwrap();
    let config = TwilioConfig::new(
        server.url(),
        fake.account_sid(),
        fake.auth_token(),
        director_fakes::DEFAULT_TWILIO_FROM_NUMBER,
    )
    .unwrap();
    let client = TwilioClient::new(config, fast_retry()).unwrap();
    (server, client, fake)
}

pub async fn slack() -> (FakeServer, SlackClient) {
    let server = FakeSlack::new().start(listener().await).unwrap();
    let config = SlackConfig::new(server.url()).unwrap();
    (server, SlackClient::new(config, fast_retry()).unwrap())
}
