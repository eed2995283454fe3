//! The three fakes together, as `director fakes` and `director up --fakes` run them, with the
//! environment that points Director at them.

use std::net::{Ipv4Addr, SocketAddr};

use crate::server::FakeServer;
use crate::slack::FakeSlack;
use crate::twilio::{DEFAULT_TWILIO_FROM_NUMBER, FakeTwilio};
use crate::vessey::FakeVessey;

/// Where to listen; port 0 picks a free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeAddrs {
    /// The fake Vessey.
    pub vessey: SocketAddr,
    /// The fake Slack webhook.
    pub slack: SocketAddr,
    /// The fake Twilio.
    pub twilio: SocketAddr,
}

impl FakeAddrs {
    /// Free loopback ports for all three.
    pub fn any_loopback() -> Self {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            vessey: any,
            slack: any,
            twilio: any,
        }
    }
}

/// Running fake Vessey, Slack and Twilio with their default credentials.
#[derive(Debug)]
pub struct FakeThirdParties {
    /// The fake Vessey (sample data).
    pub vessey: FakeServer,
    /// The fake Slack webhook.
    pub slack: FakeServer,
    /// The fake Twilio.
    pub twilio: FakeServer,
    vessey_config: FakeVessey,
    twilio_config: FakeTwilio,
}

impl FakeThirdParties {
    /// Starts the three fakes on `addrs`.
    pub async fn start(addrs: FakeAddrs) -> std::io::Result<Self> {
        let vessey_config = FakeVessey::sample();
        let twilio_config = FakeTwilio::default();
        let vessey = vessey_config.clone().start_on(addrs.vessey).await?;
        let slack = FakeSlack::new().start_on(addrs.slack).await?;
        let twilio = twilio_config.clone().start_on(addrs.twilio).await?;
        Ok(Self {
            vessey,
            slack,
            twilio,
            vessey_config,
            twilio_config,
        })
    }

    /// The variables that point Director's integrations at these fakes, in the order the
    /// README lists them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("VESSEY_API_URL", self.vessey.url().to_owned()),
            ("VESSEY_API_KEY", self.vessey_config.api_key().to_owned()),
            ("SLACK_WEBHOOK_URL", self.slack.url().to_owned()),
            ("TWILIO_API_URL", self.twilio.url().to_owned()),
            (
                "TWILIO_ACCOUNT_SID",
                self.twilio_config.account_sid().to_owned(),
            ),
            (
                "TWILIO_AUTH_TOKEN",
                self.twilio_config.auth_token().to_owned(),
            ),
            ("TWILIO_FROM_NUMBER", DEFAULT_TWILIO_FROM_NUMBER.to_owned()),
        ]
    }

    /// Stops all three and waits for them.
    pub async fn shutdown(self) {
        self.vessey.shutdown().await;
        self.slack.shutdown().await;
        self.twilio.shutdown().await;
    }
}
