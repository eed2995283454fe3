//! The catalog (`director_platform::catalog::SERVICES`) is the one list of services a human
//! edits. Here the deployment is held to it: the Kubernetes manifests of the services are the
//! template `deploy/k8s/templates/grpc-service.yaml` rendered once per catalog entry, and every
//! other list that names services (compose, Prometheus, the dev Secrets, the benchmark, CI)
//! must name each of them (`deploy/check_service_lists.py`). A service added to the catalog
//! but missing from any of them fails this test, so CI, instead of being unreachable in
//! production.
//!
//! After changing the catalog or the template, rewrite the rendered file with
//! `DIRECTOR_WRITE_DEPLOY=1 cargo test -p director --test service_lists`.
//!
//! Its own test binary: the recipe for adding a service (README) runs it by name.

#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use director_platform::catalog::{self, Deployment, ServiceSpec};

const TEMPLATE: &str = "deploy/k8s/templates/grpc-service.yaml";
const RENDERED: &str = "deploy/k8s/base/grpc-services.yaml";
const CHECKER: &str = "deploy/check_service_lists.py";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The template rendered for each of `services`, one after the other.
fn render(template: &str, services: &[ServiceSpec]) -> String {
    let mut rendered = format!(
        "# GENERATED from {TEMPLATE}, once per service of platform/src/catalog.rs, by\n\
         # cli/tests/service_lists.rs: do not edit; change the template or the catalog and run\n\
         # `DIRECTOR_WRITE_DEPLOY=1 cargo test -p director --test service_lists`.\n"
    );
    for (index, spec) in services.iter().enumerate() {
        if index > 0 {
            rendered.push_str("---\n");
        }
        rendered.push_str(
            &template
                .replace("{{name}}", spec.name)
                .replace("{{NAME}}", &spec.name.to_uppercase())
                .replace("{{port}}", &spec.default_port.to_string())
                .replace(
                    "{{max_replicas}}",
                    &spec.deployment.max_replicas.to_string(),
                )
                .replace(
                    "{{reaches_third_parties}}",
                    &spec.deployment.reaches_third_parties.to_string(),
                ),
        );
    }
    rendered
}

/// `check_service_lists.py` run on the files under `root` for `services`.
fn check_lists(root: &Path, services: &[ServiceSpec]) -> std::process::Output {
    let catalog: Vec<serde_json::Value> = services
        .iter()
        .map(|spec| serde_json::json!({"name": spec.name, "port": spec.default_port}))
        .collect();
    let mut child = Command::new("python3")
        .arg(repository().join(CHECKER))
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&catalog).unwrap().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// A fourth service, in the catalog only: what adding a service without its lists looks like.
const BILLING: ServiceSpec = ServiceSpec {
    name: "billing",
    default_port: 50054,
    public_packages: &["director.billing.v1"],
    runs_jobs: false,
    jobs: &[],
    deployment: Deployment {
        max_replicas: 4,
        reaches_third_parties: false,
    },
};

#[test]
fn the_kubernetes_services_are_rendered_from_the_catalog() {
    let template = std::fs::read_to_string(repository().join(TEMPLATE)).unwrap();
    let expected = render(&template, catalog::SERVICES);
    let path = repository().join(RENDERED);
    if std::env::var_os("DIRECTOR_WRITE_DEPLOY").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "{RENDERED} is not {TEMPLATE} rendered for the catalog: run \
         `DIRECTOR_WRITE_DEPLOY=1 cargo test -p director --test service_lists`"
    );

    // A service added to the catalog makes the checked-in rendering stale.
    let with_billing: Vec<ServiceSpec> =
        catalog::SERVICES.iter().copied().chain([BILLING]).collect();
    let rendered = render(&template, &with_billing);
    assert_ne!(rendered, actual);
    assert!(rendered.contains("command: [\"director-billing\"]"));
    assert!(rendered.contains("- name: BILLING_ADDR\n              value: 0.0.0.0:50054"));
}

#[test]
fn every_list_of_services_names_each_catalog_service() {
    let output = check_lists(&repository(), catalog::SERVICES);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_service_missing_from_a_list_fails() {
    let with_billing: Vec<ServiceSpec> =
        catalog::SERVICES.iter().copied().chain([BILLING]).collect();
    let output = check_lists(&repository(), &with_billing);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for problem in [
        "docker-compose.yml: no service billing",
        "deploy/observability/prometheus.yml: no scrape job billing on billing:9090",
        "deploy/k8s/overlays/dev/kustomization.yaml: no Secret director-billing",
        "bench/run.py: billing is not in SERVICES",
        ".ci/run: the schemathesis stack does not set BILLING_ADDR",
    ] {
        assert!(
            stderr.contains(problem),
            "missing {problem:?} in:\n{stderr}"
        );
    }
    // Nothing is said about the services the lists do name.
    assert!(!stderr.contains("dispatch"), "{stderr}");
}
