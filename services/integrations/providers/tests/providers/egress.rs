//! The egress guard on the clients built for tenants' settings (issue 16, item 3), over real
//! connections: names refused where they resolve, IP literals refused before sending, the
//! Slack host list, the fakes reachable when private networks are allowed, and one shared
//! connection pool behind every client.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::sync::atomic::Ordering;

use common::{fast_retry, listener, raw};
use director_fakes::{FakeSlack, FakeTwilio, FakeVessey};
use director_providers::{
    EgressPolicy, HttpClients, ProviderError, SlackClient, SlackConfig, TwilioClient, TwilioConfig,
    VesseyClient, VesseyConfig,
};

const DRIVER: &str = r#"{"id": "1", "name": "Ann", "active": true}"#;

/// The shared clients with the default policy: private networks refused.
fn guarded() -> HttpClients {
    HttpClients::new(EgressPolicy::default()).unwrap()
}

/// The shared clients as in dev with `EGRESS_ALLOW_PRIVATE_NETWORKS=true`.
fn private_allowed() -> HttpClients {
    HttpClients::new(EgressPolicy {
        allow_private_networks: true,
        ..EgressPolicy::default()
    })
    .unwrap()
}

fn tenant_vessey(clients: &HttpClients, url: &str) -> VesseyClient {
    let config = VesseyConfig::new(url, "tenant-vessey-key-123").unwrap();
    VesseyClient::new_with(config, fast_retry(), clients.tenant())
}

fn assert_refused(error: &ProviderError, expected: &str) {
    assert_eq!(error, &ProviderError::Refused(expected.to_owned()));
    assert!(!error.is_retryable());
    assert_eq!(
        tonic::Status::from(error.clone()).code(),
        tonic::Code::FailedPrecondition
    );
}

#[tokio::test]
async fn a_name_resolving_to_loopback_is_refused_where_it_resolves_and_nothing_connects() {
    // `localhost` stands for a public-looking name rebound to 127.0.0.1 after the settings
    // were checked: the send path leaves names to the client's resolver, which refuses it.
    let (addr, connections) = raw::counting_connections(DRIVER).await;
    let clients = guarded();
    let client = tenant_vessey(&clients, &format!("https://localhost:{}/", addr.port()));
    let error = client.driver("1").await.unwrap_err();
    assert_refused(
        &error,
        "Vessey GET /drivers/1 refused: the host resolves to a loopback address, which \
         Director does not contact",
    );
    assert_eq!(connections.load(Ordering::SeqCst), 0, "nothing may connect");

    // The operator's client, on the same server, is not checked.
    let config = VesseyConfig::new(&format!("http://localhost:{}/", addr.port()), "k").unwrap();
    let operator = VesseyClient::new_with(config, fast_retry(), clients.operator());
    assert_eq!(operator.driver("1").await.unwrap().name, "Ann");
    assert_eq!(connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn forbidden_ip_literals_in_any_spelling_are_refused_before_sending() {
    let (addr, connections) = raw::counting_connections(DRIVER).await;
    let port = addr.port();
    let clients = guarded();
    for (host, range) in [
        ("127.0.0.1", "a loopback"),
        ("2130706433", "a loopback"),
        ("0x7f.1", "a loopback"),
        ("[::1]", "a loopback"),
        ("[::ffff:127.0.0.1]", "an IPv4-mapped loopback"),
        (
            "169.254.169.254",
            "a link-local (169.254.0.0/16, cloud metadata)",
        ),
        ("10.0.0.1", "a private (10.0.0.0/8)"),
    ] {
        let client = tenant_vessey(&clients, &format!("https://{host}:{port}/"));
        let error = client.drivers_page(1).await.unwrap_err();
        assert_refused(
            &error,
            &format!(
                "Vessey GET /drivers?page=1 refused: the host is {range} address, which \
                 Director does not contact"
            ),
        );
    }
    let plain = tenant_vessey(&clients, &format!("http://127.0.0.1:{port}/"));
    assert_refused(
        &plain.driver("1").await.unwrap_err(),
        "Vessey GET /drivers/1 refused: must be an https:// URL",
    );
    assert_eq!(connections.load(Ordering::SeqCst), 0, "nothing may connect");
}

#[tokio::test]
async fn a_tenants_slack_webhook_must_be_on_a_listed_host_and_twilio_public() {
    let (addr, connections) = raw::counting_connections("ok").await;
    let port = addr.port();
    let clients = guarded();
    let config = SlackConfig::new(&format!(
        "https://localhost:{port}/services/T000/B000/slack-secret-XYZ"
    ))
    .unwrap();
    let slack = SlackClient::new_with(config, fast_retry(), clients.tenant());
    let error = slack.post("hi", None).await.unwrap_err();
    assert_refused(
        &error,
        "Slack POST webhook refused: the host must be hooks.slack.com (SLACK_WEBHOOK_HOSTS)",
    );

    let config = TwilioConfig::new(
        &format!("https://192.168.1.1:{port}"),
        "AC-tenant",
        "tenant-token",
        "+15550100000",
    )
    .unwrap();
    let twilio = TwilioClient::new_with(config, fast_retry(), clients.tenant());
    assert_refused(
        &twilio.send_sms("+15550100001", "hi").await.unwrap_err(),
        "Twilio POST Messages.json refused: the host is a private (192.168.0.0/16) address, \
         which Director does not contact",
    );
    assert_eq!(connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn with_private_networks_allowed_tenants_reach_the_fakes_with_their_own_credentials() {
    let clients = private_allowed();

    let vessey_fake = FakeVessey::sample().with_api_key("tenant-vessey-key-123");
    let vessey = vessey_fake.clone().start(listener().await).unwrap();
    for url in [
        vessey.url().to_owned(),
        vessey.url().replace("127.0.0.1", "localhost"),
    ] {
        let client = tenant_vessey(&clients, &url);
        assert_eq!(client.driver("1").await.unwrap().name, "Ann Murphy");
    }
    assert!(
        vessey
            .received()
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer tenant-vessey-key-123"))
    );

    let slack_server = FakeSlack::new().start(listener().await).unwrap();
    let slack = SlackClient::new_with(
        SlackConfig::new(slack_server.url()).unwrap(),
        fast_retry(),
        clients.tenant(),
    );
    slack.post("hello from a tenant", None).await.unwrap();
    assert_eq!(slack_server.received().len(), 1);

    let twilio_fake = FakeTwilio::new("ACtenant0000000000000000000000001", "tenant-token");
    let twilio_server = twilio_fake.clone().start(listener().await).unwrap();
    let config = TwilioConfig::new(
        twilio_server.url(),
        twilio_fake.account_sid(),
        twilio_fake.auth_token(),
        "+15550100000",
    )
    .unwrap();
    let twilio = TwilioClient::new_with(config, fast_retry(), clients.tenant());
    twilio.send_sms("+15550100001", "hi").await.unwrap();
    assert!(
        twilio_server.received()[0]
            .path
            .contains("ACtenant0000000000000000000000001")
    );
}

#[tokio::test]
async fn clients_built_on_one_http_client_share_its_connections() {
    let (addr, connections) = raw::counting_connections(DRIVER).await;
    let url = format!("http://{addr}/");
    let clients = private_allowed();
    for shared in [clients.operator(), clients.tenant()] {
        for _ in 0..3 {
            let config = VesseyConfig::new(&url, "k").unwrap();
            let client = VesseyClient::new_with(config, fast_retry(), shared);
            client.driver("1").await.unwrap();
        }
    }
    // One connection per shared client: the three Vessey clients on each reused it.
    assert_eq!(connections.load(Ordering::SeqCst), 2);

    // Clients made with `new` have pools of their own.
    for _ in 0..2 {
        let config = VesseyConfig::new(&url, "k").unwrap();
        VesseyClient::new(config, fast_retry())
            .unwrap()
            .driver("1")
            .await
            .unwrap();
    }
    assert_eq!(connections.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_guarded_client_follows_only_same_origin_redirects() {
    let clients = private_allowed();
    let fake = FakeVessey::sample().with_api_key("tenant-vessey-key-123");
    let server = fake.clone().start(listener().await).unwrap();
    let elsewhere = fake.start(listener().await).unwrap();
    let client = tenant_vessey(&clients, server.url());

    server.redirect_next("/drivers/2");
    assert_eq!(client.driver("1").await.unwrap().id, "2");

    server.redirect_next(format!("{}/drivers/1", elsewhere.url()));
    let error = client.driver("1").await.unwrap_err();
    assert!(
        matches!(error, ProviderError::Rejected { status: 302, .. }),
        "{error:?}"
    );
    assert!(elsewhere.received().is_empty());
}

/// Which client [`proxy_child`] uses, when the parent test runs it.
const PROXY_CHILD: &str = "DIRECTOR_PROVIDERS_PROXY_CHILD";

#[tokio::test]
async fn guarded_clients_ignore_proxy_settings_from_the_environment() {
    // A proxy would resolve the name itself, past the guard's resolver. The process
    // environment cannot be changed safely from a test, so this runs the test binary again
    // with proxy variables set, once per client.
    let (proxy, connections) = raw::counting_connections("").await;
    let run = |client: &'static str| {
        let proxy = format!("http://{proxy}");
        async move {
            let output = tokio::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "egress::proxy_child",
                    "--exact",
                    "--ignored",
                    "--test-threads=1",
                ])
                .env(PROXY_CHILD, client)
                .env("HTTPS_PROXY", &proxy)
                .env("HTTP_PROXY", &proxy)
                .env("ALL_PROXY", &proxy)
                .env_remove("NO_PROXY")
                .env_remove("no_proxy")
                .output()
                .await
                .unwrap();
            assert!(
                output.status.success(),
                "the {client} child failed:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    };
    run("tenant").await;
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "the tenant client used the proxy"
    );
    // The control: the operator's client does use it, so the variables were in effect.
    run("operator").await;
    assert!(connections.load(Ordering::SeqCst) >= 1);
}

/// Run by [`guarded_clients_ignore_proxy_settings_from_the_environment`] only.
#[tokio::test]
#[ignore = "run by guarded_clients_ignore_proxy_settings_from_the_environment"]
async fn proxy_child() {
    let Ok(which) = std::env::var(PROXY_CHILD) else {
        return;
    };
    let clients = guarded();
    let http = match which.as_str() {
        "tenant" => clients.tenant(),
        _ => clients.operator(),
    };
    let mut config = VesseyConfig::new("https://vessey.example/", "k").unwrap();
    config.timeouts.call = std::time::Duration::from_millis(500);
    let retry = director_providers::RetryPolicy {
        max_attempts: 1,
        ..fast_retry()
    };
    let error = VesseyClient::new_with(config, retry, http)
        .driver("1")
        .await
        .unwrap_err();
    if which == "tenant" {
        // Resolved by the guard (and `.example` does not resolve), not sent to the proxy.
        assert_eq!(
            error.to_string(),
            "Vessey GET /drivers/1 failed after 1 attempt: could not connect: the host name \
             could not be resolved"
        );
    }
}

#[tokio::test]
async fn guarded_http_builds_tenants_clients_and_refuses_a_url_the_policy_does_not_admit() {
    use director_providers::GuardedHttp;
    use director_providers::RetryPolicy;

    let strict = GuardedHttp::new(EgressPolicy::default(), RetryPolicy::default()).unwrap();
    assert_eq!(strict.policy(), &EgressPolicy::default());
    let error = strict
        .vessey(VesseyConfig::new("https://127.0.0.1:1/", "key").unwrap())
        .unwrap_err();
    assert_refused(
        &error,
        "the tenant's Vessey API URL is refused: the host is a loopback address, which \
         Director does not contact",
    );
    let error = strict
        .slack(
            SlackConfig::new("https://hooks.example.org/services/T000/B000/slack-secret-XYZ")
                .unwrap(),
        )
        .unwrap_err();
    assert_refused(
        &error,
        "the tenant's Slack webhook URL is refused: the host must be hooks.slack.com \
         (SLACK_WEBHOOK_HOSTS)",
    );
    let twilio = TwilioConfig::new("http://api.twilio.com", "AC1", "token", "+15550100000");
    assert!(matches!(
        strict.twilio(twilio.unwrap()),
        Err(ProviderError::Refused(_))
    ));
    strict
        .slack(SlackConfig::new("https://hooks.slack.com/services/T/B/x").unwrap())
        .unwrap();

    // With private networks allowed, the clients it builds reach the fakes.
    let dev = GuardedHttp::new(
        EgressPolicy {
            allow_private_networks: true,
            ..EgressPolicy::default()
        },
        fast_retry(),
    )
    .unwrap();
    let fake = FakeVessey::sample().with_api_key("tenant-vessey-key-123");
    let server = fake.start(listener().await).unwrap();
    let client = dev
        .vessey(VesseyConfig::new(server.url(), "tenant-vessey-key-123").unwrap())
        .unwrap();
    assert_eq!(client.driver("2").await.unwrap().id, "2");
}
