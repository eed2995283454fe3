//! With an OTLP endpoint configured, start-up and shutdown work even when the collector is
//! unreachable. Its own test binary: telemetry installs process-wide state once.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use director_platform::telemetry::{self, LogFormat, TelemetryConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exporting_to_an_unreachable_collector_neither_fails_start_up_nor_hangs_shutdown() {
    let config = TelemetryConfig {
        service_name: "platform-otlp-test".to_owned(),
        log_format: LogFormat::Pretty,
        otlp_endpoint: Some("http://127.0.0.1:1".to_owned()),
    };
    let guard = telemetry::init(&config).unwrap();
    assert!(format!("{guard:?}").contains("active: true"), "{guard:?}");

    tracing::info_span!("work", job = "export").in_scope(|| {
        tracing::info!("something worth tracing");
    });

    let started = Instant::now();
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
}
