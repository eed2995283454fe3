#!/usr/bin/env python3
"""Checks that every hand-written list of Director's services names each service of the catalog.

The catalog (platform/src/catalog.rs) is the one list a human edits; the Kubernetes manifests
of the services are rendered from it (deploy/k8s/templates/grpc-service.yaml) and the image
builds every binary of the workspace. What is left names services one by one for a reason of
its own, and is checked here:

- docker-compose.yml: a container per service running `director-<name>`, its healthcheck
  `director health <name>`, and the gateway started once it is healthy;
- deploy/observability/prometheus.yml: a scrape job `<name>` on `<name>:9090`;
- deploy/k8s/overlays/dev/kustomization.yaml: the service's Secret `director-<name>`;
- bench/run.py: the service in `SERVICES` (the benchmark starts each one);
- .ci/run: `<NAME>_ADDR` set for the stack the schemathesis step starts.

Reads the catalog as JSON on stdin (`[{"name": "companies", "port": 50051}, ...]`, written by
cli/tests/service_lists.rs, which runs this) and the files under the repository root given as
the only argument (default: this file's repository). Exits 1 naming each service missing from
each list."""

import ast
import json
import sys
from pathlib import Path

import yaml


def compose_problems(root, services):
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    containers = compose.get("services", {})
    gateway_needs = containers.get("gateway", {}).get("depends_on", {})
    for service in services:
        name = service["name"]
        container = containers.get(name)
        if container is None:
            yield f"docker-compose.yml: no service {name}"
            continue
        if container.get("command") != [f"director-{name}"]:
            yield f"docker-compose.yml: service {name} does not run director-{name}"
        test = container.get("healthcheck", {}).get("test", [])
        if test[-3:] != ["director", "health", name]:
            yield f"docker-compose.yml: service {name} has no `director health {name}` healthcheck"
        if not isinstance(gateway_needs, dict) or gateway_needs.get(name, {}).get(
            "condition"
        ) != "service_healthy":
            yield f"docker-compose.yml: the gateway does not wait for {name} to be healthy"


def prometheus_problems(root, services):
    config = yaml.safe_load((root / "deploy/observability/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config.get("scrape_configs", [])}
    for service in services:
        name = service["name"]
        targets = [
            target
            for static in jobs.get(name, {}).get("static_configs", [])
            for target in static.get("targets", [])
        ]
        if f"{name}:9090" not in targets:
            yield f"deploy/observability/prometheus.yml: no scrape job {name} on {name}:9090"


def dev_secret_problems(root, services):
    overlay = yaml.safe_load((root / "deploy/k8s/overlays/dev/kustomization.yaml").read_text())
    secrets = {secret["name"] for secret in overlay.get("secretGenerator", [])}
    for service in services:
        if f"director-{service['name']}" not in secrets:
            yield (
                "deploy/k8s/overlays/dev/kustomization.yaml: no Secret "
                f"director-{service['name']}"
            )


def bench_problems(root, services):
    tree = ast.parse((root / "bench/run.py").read_text())
    benched = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "SERVICES" for target in node.targets
        ):
            benched = ast.literal_eval(node.value)
    for service in services:
        if service["name"] not in benched:
            yield f"bench/run.py: {service['name']} is not in SERVICES"


def ci_problems(root, services):
    script = (root / ".ci/run").read_text()
    for service in services:
        variable = f"{service['name'].upper()}_ADDR="
        if variable not in script:
            yield f".ci/run: the schemathesis stack does not set {variable[:-1]}"


CHECKS = [compose_problems, prometheus_problems, dev_secret_problems, bench_problems, ci_problems]


def main():
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    services = json.load(sys.stdin)
    problems = [problem for check in CHECKS for problem in check(root, services)]
    for problem in problems:
        print(problem, file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
