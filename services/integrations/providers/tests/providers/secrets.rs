//! No secret leaves (issue 16, item 5): every client configured with secret-shaped values, every
//! kind of failure — connection refused, no answer within the timeout, a connection reset
//! mid-body, 5xx and 4xx answers that echo the request (URL, `Authorization`) back — and none of
//! the secrets, nor the URL, in the error's `Display` or `Debug`, nor in anything logged while
//! the calls ran.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use common::raw::{self, EchoAs};
use director_providers::{
    ProviderError, RetryPolicy, SlackClient, SlackConfig, Timeouts, TwilioClient, TwilioConfig,
    VesseyClient, VesseyConfig,
};

const SLACK_PATH: &str = "/services/T000/B000/slack-secret-XYZ";
const TWILIO_SID: &str = "AC-sid-secret-0123456789abcdef";
const TWILIO_TOKEN: &str = "twilio-token-secret-456";
const VESSEY_KEY: &str = "vessey-key-secret-789";
const VESSEY_QUERY_SECRET: &str = "vessey-query-secret-321";

/// Every value that must never be seen, and the URL forms of them.
fn secrets() -> Vec<String> {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"));
    vec![
        "slack-secret-XYZ".to_owned(),
        "T000/B000".to_owned(),
        "T000%2FB000".to_owned(),
        TWILIO_SID.to_owned(),
        TWILIO_TOKEN.to_owned(),
        basic,
        VESSEY_KEY.to_owned(),
        VESSEY_QUERY_SECRET.to_owned(),
    ]
}

/// Panics naming the secret (not quoting `text` whole) when `text` holds one, or a URL.
fn assert_clean(what: &str, text: &str) {
    let lower = text.to_ascii_lowercase();
    for secret in secrets() {
        assert!(
            !lower.contains(&secret.to_ascii_lowercase()),
            "{what} holds the secret {secret:?}: {text}"
        );
    }
    assert!(!lower.contains("http://"), "{what} holds a URL: {text}");
    assert!(
        !lower.contains("sig="),
        "{what} holds a query string: {text}"
    );
}

fn assert_error_clean(error: &ProviderError) {
    assert_clean("the error's Display", &error.to_string());
    assert_clean("the error's Debug", &format!("{error:?}"));
    assert_clean("the error's alternate Display", &format!("{error:#}"));
    assert_clean(
        "the gRPC status",
        tonic::Status::from(error.clone()).message(),
    );
}

/// Two quick attempts, and a 300 ms per-attempt timeout.
fn retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        retry_after_cap: Duration::from_millis(5),
    }
}

fn timeouts() -> Timeouts {
    Timeouts {
        call: Duration::from_millis(300),
        collections_page: Duration::from_millis(300),
    }
}

/// The three clients, every one pointed at `addr` with secret-shaped credentials.
struct Clients {
    vessey: VesseyClient,
    twilio: TwilioClient,
    slack: SlackClient,
}

fn clients(addr: SocketAddr) -> Clients {
    let mut vessey = VesseyConfig::new(
        &format!("http://{addr}/api/?sig={VESSEY_QUERY_SECRET}"),
        VESSEY_KEY,
    )
    .unwrap();
    vessey.timeouts = timeouts();
    let mut twilio = TwilioConfig::new(
        &format!("http://{addr}"),
        TWILIO_SID,
        TWILIO_TOKEN,
        "+15550100000",
    )
    .unwrap();
    twilio.timeouts = timeouts();
    let mut slack = SlackConfig::new(&format!("http://{addr}{SLACK_PATH}")).unwrap();
    slack.timeouts = timeouts();
    Clients {
        vessey: VesseyClient::new(vessey, retry()).unwrap(),
        twilio: TwilioClient::new(twilio, retry()).unwrap(),
        slack: SlackClient::new(slack, retry()).unwrap(),
    }
}

/// Everything written to it, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Captures all tracing output (every level, spans included) on this thread until the guard
/// drops.
fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_ansi(false)
        .finish();
    (log, tracing::subscriber::set_default(subscriber))
}

/// Runs every client's call against `addr` with the log captured; returns the three errors
/// and the log.
async fn fail_everything(addr: SocketAddr) -> (Vec<ProviderError>, String) {
    let (log, _guard) = capture();
    let clients = clients(addr);
    let errors = vec![
        clients.vessey.driver("1").await.unwrap_err(),
        clients
            .twilio
            .send_sms("+15550100001", "hi")
            .await
            .unwrap_err(),
        clients.slack.post("hi", None).await.unwrap_err(),
    ];
    (errors, log.text())
}

fn assert_all_clean(errors: &[ProviderError], log: &str) {
    for error in errors {
        assert_error_clean(error);
    }
    assert_clean("the log", log);
}

#[tokio::test]
async fn transport_failures_name_no_secret_and_no_url() {
    // Connection refused.
    let (errors, log) = fail_everything(raw::closed_port().await).await;
    assert_all_clean(&errors, &log);
    for error in &errors {
        assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");
        assert!(
            error
                .to_string()
                .contains("could not connect: connection refused"),
            "{error}"
        );
    }
    assert_eq!(
        errors[1].to_string(),
        "Twilio POST Messages.json failed after 2 attempts: could not connect: connection refused"
    );
    assert_eq!(
        errors[2].to_string(),
        "Slack POST webhook failed after 2 attempts: could not connect: connection refused"
    );
    assert!(log.contains("third-party call failed; retrying"), "{log}");

    // No answer within the timeout.
    let (errors, log) = fail_everything(raw::hanging().await).await;
    assert_all_clean(&errors, &log);
    for error in &errors {
        assert!(
            error
                .to_string()
                .ends_with("failed after 2 attempts: timed out"),
            "{error}"
        );
    }
    assert!(log.contains("retrying"), "{log}");

    // The connection reset in the middle of the answer's body.
    let (errors, log) = fail_everything(raw::resetting_mid_body().await).await;
    assert_all_clean(&errors, &log);
    for error in &errors {
        assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");
        assert!(
            error.to_string().contains("reading the answer failed"),
            "{error}"
        );
    }
    assert!(log.contains("retrying"), "{log}");
}

#[tokio::test]
async fn server_errors_echoing_the_request_are_redacted() {
    for form in [EchoAs::Json, EchoAs::Text] {
        let (addr, seen) = raw::echoing(500, form).await;
        let (errors, log) = fail_everything(addr).await;
        // The provider did see the secrets, and echoed them.
        let heads = seen.lock().unwrap().join("\n");
        assert!(heads.contains("slack-secret-XYZ") && heads.contains(TWILIO_SID));
        assert!(heads.contains(VESSEY_KEY) && heads.contains(VESSEY_QUERY_SECRET));
        assert_all_clean(&errors, &log);
        for error in &errors {
            assert!(matches!(error, ProviderError::Unavailable(_)), "{error:?}");
            let message = error.to_string();
            assert!(
                message.contains("500 Internal Server Error (denied"),
                "{message}"
            );
            assert!(message.contains("[redacted]"), "{message}");
        }
    }
}

#[tokio::test]
async fn refusals_echoing_the_request_are_redacted() {
    for (status, form) in [
        (400, EchoAs::Json),
        (401, EchoAs::Text),
        (403, EchoAs::Json),
        (404, EchoAs::Json),
    ] {
        let (addr, _) = raw::echoing(status, form).await;
        let (errors, log) = fail_everything(addr).await;
        assert_all_clean(&errors, &log);
        if status == 404 {
            assert_eq!(
                errors[0],
                ProviderError::NotFound("Vessey has no driver \"1\"".to_owned())
            );
            continue;
        }
        for error in &errors {
            let ProviderError::Rejected {
                status: got,
                message,
            } = error
            else {
                panic!("expected Rejected, got {error:?}");
            };
            assert_eq!(*got, status);
            assert!(message.contains("[redacted]"), "{message}");
        }
    }
}

#[tokio::test]
async fn an_unusable_answer_quoting_the_request_is_redacted() {
    // Slack takes any 2xx as delivered and Twilio's answer has no typed field to quote: Vessey.
    let (addr, _) = raw::echoing(200, EchoAs::DriverWithWrongType).await;
    let (log, guard) = capture();
    let errors = [clients(addr).vessey.driver("1").await.unwrap_err()];
    drop(guard);
    assert_all_clean(&errors, &log.text());
    let ProviderError::InvalidResponse(message) = &errors[0] else {
        panic!("expected InvalidResponse, got {:?}", errors[0]);
    };
    assert!(
        message.starts_with("Vessey GET /drivers/1: unexpected answer: invalid type: string"),
        "{message}"
    );
    assert!(message.contains("[redacted]"), "{message}");
}

#[tokio::test]
async fn tenant_clients_name_no_secret_when_refused_or_failing() {
    use director_providers::EgressPolicy;
    use director_providers::GuardedHttp;

    let (log, guard) = capture();
    let mut errors = Vec::new();

    // Refused by the guard: at construction, and when sending to a name that resolves to
    // loopback.
    let strict = GuardedHttp::new(EgressPolicy::default(), retry()).unwrap();
    let slack = SlackConfig::new(&format!("https://127.0.0.1{SLACK_PATH}")).unwrap();
    errors.push(strict.slack(slack).unwrap_err());
    let vessey = VesseyConfig::new(
        &format!("https://localhost:1/api/?sig={VESSEY_QUERY_SECRET}"),
        VESSEY_KEY,
    )
    .unwrap();
    errors.push(
        VesseyClient::new_with(vessey, retry(), strict.http())
            .driver("1")
            .await
            .unwrap_err(),
    );
    assert!(
        errors
            .iter()
            .all(|e| matches!(e, ProviderError::Refused(_)))
    );

    // Through the guarded client with private networks allowed: refused connections and echoes.
    let dev = GuardedHttp::new(
        EgressPolicy {
            allow_private_networks: true,
            ..EgressPolicy::default()
        },
        retry(),
    )
    .unwrap();
    let (echo, _) = raw::echoing(500, EchoAs::Json).await;
    for addr in [raw::closed_port().await, echo] {
        let mut slack = SlackConfig::new(&format!("http://{addr}{SLACK_PATH}")).unwrap();
        slack.timeouts = timeouts();
        errors.push(
            dev.slack(slack)
                .unwrap()
                .post("hi", None)
                .await
                .unwrap_err(),
        );
        let mut twilio = TwilioConfig::new(
            &format!("http://{addr}"),
            TWILIO_SID,
            TWILIO_TOKEN,
            "+15550100000",
        )
        .unwrap();
        twilio.timeouts = timeouts();
        errors.push(
            dev.twilio(twilio)
                .unwrap()
                .send_sms("+15550100001", "hi")
                .await
                .unwrap_err(),
        );
    }
    drop(guard);
    assert_all_clean(&errors, &log.text());
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("connection refused"))
    );
    assert!(errors.iter().any(|e| e.to_string().contains("[redacted]")));
}

#[tokio::test]
async fn debug_output_of_configurations_and_clients_holds_no_secret() {
    use director_platform::config::Env;
    use director_providers::ProvidersConfig;

    let addr = raw::closed_port().await;
    let clients = clients(addr);
    let env = Env::from_pairs([
        (
            "VESSEY_API_URL",
            format!("http://{addr}/api/?sig={VESSEY_QUERY_SECRET}"),
        ),
        ("VESSEY_API_KEY", VESSEY_KEY.to_owned()),
        ("SLACK_WEBHOOK_URL", format!("http://{addr}{SLACK_PATH}")),
        ("TWILIO_ACCOUNT_SID", TWILIO_SID.to_owned()),
        ("TWILIO_AUTH_TOKEN", TWILIO_TOKEN.to_owned()),
        ("TWILIO_FROM_NUMBER", "+15550100000".to_owned()),
    ]);
    let config = ProvidersConfig::from_env(&env).unwrap();
    let debug = format!(
        "{:?} {:?} {:?} {config:?}",
        clients.vessey, clients.twilio, clients.slack
    );
    for secret in secrets() {
        assert!(!debug.contains(&secret), "Debug holds {secret:?}: {debug}");
    }
    assert!(
        debug.contains(&format!("http://{addr}/api/?[redacted]")),
        "{debug}"
    );
}
