//! Fake Vessey, Slack and Twilio for trying the integrations without accounts: `director
//! fakes` runs them on fixed ports and prints the environment that points Director at them;
//! `director up --fakes` runs them on free ports inside the stack and sets that environment
//! for the services (replacing any real settings: `--fakes` means "use the fakes").
//!
//! What the fakes serve and how to make them misbehave is in `director_fakes`' documentation
//! and the README ("Trying integrations with fake third parties").

use std::net::SocketAddr;

use anyhow::Context;
use director_platform::config::Env;

pub use director_fakes::{FakeAddrs, FakeThirdParties};

/// `director fakes`' default addresses: fixed, so the printed environment stays valid across
/// restarts.
pub const DEFAULT_VESSEY_ADDR: &str = "127.0.0.1:18081";
/// See [`DEFAULT_VESSEY_ADDR`].
pub const DEFAULT_SLACK_ADDR: &str = "127.0.0.1:18082";
/// See [`DEFAULT_VESSEY_ADDR`].
pub const DEFAULT_TWILIO_ADDR: &str = "127.0.0.1:18083";

/// Starts the three fakes; an error names the address that could not be bound.
pub async fn start(addrs: FakeAddrs) -> anyhow::Result<FakeThirdParties> {
    FakeThirdParties::start(addrs).await.with_context(|| {
        format!(
            "could not start the fake third parties on {}, {} and {} (is a port taken?)",
            addrs.vessey, addrs.slack, addrs.twilio
        )
    })
}

/// `env` pointed at the fakes: their variables replace whatever `env` had.
pub fn use_fakes(env: Env, fakes: &FakeThirdParties) -> Env {
    env.with_overrides(fakes.env())
}

/// `NAME=value` lines to paste into a shell or a `.env` file.
pub fn env_lines(fakes: &FakeThirdParties) -> Vec<String> {
    fakes
        .env()
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

/// One line per fake for a banner: `("Vessey (fake)", url)`.
pub fn urls(fakes: &FakeThirdParties) -> [(&'static str, String); 3] {
    [
        ("Vessey (fake)", fakes.vessey.url().to_owned()),
        ("Slack (fake)", fakes.slack.url().to_owned()),
        ("Twilio (fake)", fakes.twilio.url().to_owned()),
    ]
}

/// Parses a listen address for `--vessey-addr` and friends.
pub fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    value
        .parse()
        .map_err(|_| format!("expected an address such as 127.0.0.1:18081, got {value:?}"))
}
