//! `director health` probes a running service's gRPC health and the gateway's readiness,
//! exiting 0 when healthy and 1 (saying why) when not: the containers' healthcheck.

#![allow(clippy::unwrap_used)]

use crate::common;

use std::net::SocketAddr;

use director_store::testing::eventually;

async fn health(process: &str, addr: SocketAddr) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_director"))
        .args([
            "health",
            process,
            "--addr",
            &addr.to_string(),
            "--timeout",
            "5",
        ])
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn health_is_0_for_serving_processes_and_1_once_one_is_gone() {
    let test = common::spawn_stack().await;
    let gateway = test.stack.gateway_addr;
    // The gateway is ready once its upstreams have seen their databases.
    eventually("the gateway to be ready", || async {
        health("gateway", gateway)
            .await
            .status
            .success()
            .then_some(())
    })
    .await;
    for service in ["companies", "dispatch", "integrations"] {
        let addr = test.stack.service_addr(service).unwrap();
        let output = health(service, addr).await;
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("SERVING"),
            "{output:?}"
        );
    }

    let companies = test.stack.service_addr("companies").unwrap();
    test.stack.stop_service("companies").unwrap();
    let gone = eventually("companies to stop answering", || async {
        let output = health("companies", companies).await;
        (!output.status.success()).then_some(output)
    })
    .await;
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains(&companies.to_string()),
        "{gone:?}"
    );
    // The gateway stays ready while any upstream serves; with none it is not.
    for service in ["dispatch", "integrations"] {
        test.stack.stop_service(service).unwrap();
    }
    let not_ready = eventually("the gateway to be not ready", || async {
        let output = health("gateway", gateway).await;
        (!output.status.success()).then_some(output)
    })
    .await;
    assert_eq!(not_ready.status.code(), Some(1), "{not_ready:?}");
    assert!(
        String::from_utf8_lossy(&not_ready.stderr).contains("not ready"),
        "{not_ready:?}"
    );
}

#[tokio::test]
async fn health_of_nothing_listening_is_1_and_an_unknown_process_is_refused() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    for process in ["gateway", "dispatch"] {
        let output = health(process, addr).await;
        assert_eq!(output.status.code(), Some(1), "{output:?}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("does not accept connections"),
            "{output:?}"
        );
    }
    let unknown = health("billing", addr).await;
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("unknown process"),
        "{unknown:?}"
    );
}
