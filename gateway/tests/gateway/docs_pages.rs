//! The documentation pages render in a real browser with no network beyond loopback (issue
//! 21, point 4): headless Chromium, with every host name but the gateway's unresolvable, loads
//! `/api/docs` (Swagger UI) and `/api/redoc` (Redoc) from a running gateway and the rendered
//! DOM lists the operations of the OpenAPI document. Before the assets were embedded, the
//! pages loaded their scripts from a CDN and rendered blank here.
//!
//! Needs Chromium (`apt-get install chromium`; `CHROMIUM` names another binary), so it is
//! ignored by the plain test run; `.ci/run` installs Chromium and runs it with `--ignored`.
#![allow(clippy::unwrap_used)]

use crate::common;

use std::time::Duration;

use common::*;

/// The browser binary.
fn chromium() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned())
}

/// The DOM of `url` after its scripts ran, from headless Chromium allowed to resolve no host
/// name (only the gateway's loopback address literal is reachable).
async fn rendered_dom(url: &str) -> String {
    let profile = std::env::temp_dir().join(format!("docs-pages-{}", uuid::Uuid::new_v4()));
    let run = tokio::process::Command::new(chromium())
        .args([
            "--headless",
            // Root in CI: Chromium's sandbox needs user namespaces it may not have.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // No host name resolves (the gateway is reached by its address literal): a CDN, or any
            // other origin, is unreachable.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            &format!("--user-data-dir={}", profile.display()),
            // Scripts, the document fetch and rendering get this long of virtual time.
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("Chromium finished within 90 s")
        .unwrap_or_else(|error| {
            panic!(
                "could not run {} ({error}); install it: apt-get install chromium",
                chromium()
            )
        });
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
#[ignore = "needs Chromium; .ci/run runs it"]
async fn swagger_ui_lists_the_operations_offline() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let dom = rendered_dom(&gateway.at("/api/docs")).await;
    // Swagger UI renders one block per operation, with its path and its id in the element id.
    for operation in [
        "EchoService_Echo",
        "EchoService_EchoStream",
        "EchoService_WatchEchoes",
    ] {
        assert!(
            dom.contains(&format!("-{operation}\"")),
            "{operation} not listed:\n{dom}"
        );
    }
    assert!(dom.contains("/api/testing/echo/"), "{dom}");
    assert!(dom.contains("IntegrationDirector API"), "{dom}");
}

#[tokio::test]
#[ignore = "needs Chromium; .ci/run runs it"]
async fn redoc_lists_the_operations_offline() {
    let (gateway, _upstream) = spawn_echo_stack(&[]).await;
    let dom = rendered_dom(&gateway.at("/api/redoc")).await;
    // Redoc links each operation by its id and shows its path.
    for operation in [
        "EchoService_Echo",
        "EchoService_EchoStream",
        "EchoService_WatchEchoes",
    ] {
        assert!(
            dom.contains(&format!("operation/{operation}\"")),
            "{operation} not listed:\n{dom}"
        );
    }
    assert!(dom.contains("/api/testing/echo/"), "{dom}");
}
