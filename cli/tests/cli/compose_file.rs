//! The compose file as `docker-compose` renders it passes `deploy/check_compose.py`: ports
//! published on loopback only by default, a healthcheck on every Director container, the
//! gateway started after healthy services. Skipped (saying so) where `docker-compose` is not
//! installed; `.ci/run` installs it.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `docker-compose --profile observability config` with `env`, or `None` without the tool.
fn rendered(env: &[(&str, &str)]) -> Option<Vec<u8>> {
    let output = Command::new("docker-compose")
        .args(["--profile", "observability", "config"])
        .current_dir(repository())
        .env_remove("PUBLISH_ADDR")
        .envs(env.iter().copied())
        .output();
    match output {
        Ok(output) => {
            assert!(output.status.success(), "{output:?}");
            Some(output.stdout)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => panic!("docker-compose: {error}"),
    }
}

fn check(rendered: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new("python3")
        .arg(repository().join("deploy/check_compose.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(rendered).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_compose_file_publishes_on_loopback_with_healthchecks() {
    let Some(rendered_default) = rendered(&[]) else {
        eprintln!("docker-compose is not installed: skipped");
        return;
    };
    let output = check(&rendered_default);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // PUBLISH_ADDR moves every published port, and the check notices.
    let everywhere = rendered(&[("PUBLISH_ADDR", "0.0.0.0")]).unwrap();
    let output = check(&everywhere);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for service in [
        "gateway",
        "jaeger",
        "prometheus",
        "grafana",
        "otel-collector",
    ] {
        assert!(
            stderr.contains(&format!("{service}: port 0.0.0.0:")),
            "{stderr}"
        );
    }
}
