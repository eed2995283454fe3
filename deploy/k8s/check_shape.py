#!/usr/bin/env python3
"""Checks a rendered overlay (stdin) holds the shape Director's deployment relies on:
- a Deployment for the gateway and for each gRPC service (the pods labelled
  `director.io/grpc-service: "true"`, rendered from the catalog: cli/tests/service_lists.rs
  holds the rendering to the catalog), rolling out without
  going below the current count (maxUnavailable 0), with a preStop sleep and a termination
  grace period longer than that sleep plus the 10 s drain, the admin port (9090) and the
  Prometheus scrape annotations;
- gRPC readiness and liveness probes on the three services' ports, HTTP probes on the gateway;
- a headless Service (clusterIP None) per gRPC service, named like it, whose port is the
  container's `grpc` port (no translation happens), a ClusterIP Service for the gateway;
- autoscaling/v2 HorizontalPodAutoscalers on CPU for every workload, whose Deployments leave
  `replicas` to them; PodDisruptionBudgets selecting each;
- one migration Job, named director-migrate-<its image's tag>, and every service pod waiting
  for its schema in the init container `wait-for-migrations`: its own binary's
  `migrate --wait`, from the Job's image, with the same settings as the service;
- the egress each workload needs, through a NetworkPolicy selecting its pods: DNS (UDP and
  TCP 53) for all, PostgreSQL (5432) for the services and the migration Job, HTTPS (443) for
  the gateway and the services labelled `director.io/public-https-client: "true"` (how narrow
  these are is check_hardening.py's business).
With --production also: at least two replicas everywhere (the HPAs' minimum). Exits 1 naming
each problem. Run by .ci/run."""

import sys

import yaml

from label_selectors import selects

DRAIN_SECONDS = 10
ADMIN_PORT = 9090
GRPC_SERVICE = "director.io/grpc-service"
HTTPS_CLIENT = "director.io/public-https-client"

production = "--production" in sys.argv[1:]
documents = [d for d in yaml.safe_load_all(sys.stdin) if d]
problems = []


def of_kind(kind):
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def pod_labels(deployment):
    return deployment["spec"]["template"].get("metadata", {}).get("labels", {})


def grpc_port(deployment):
    containers = deployment["spec"]["template"]["spec"]["containers"]
    ports = [p for c in containers for p in c.get("ports", []) if p.get("name") == "grpc"]
    return ports[0]["containerPort"] if ports else None


deployments = of_kind("Deployment")
# The gRPC services and their ports, as rendered from the catalog.
SERVICES = {
    name: grpc_port(d) for name, d in deployments.items() if pod_labels(d).get(GRPC_SERVICE) == "true"
}
if not SERVICES:
    problems.append(f"no Deployment labelled {GRPC_SERVICE}: \"true\"")
WORKLOADS = ["gateway", *SERVICES]
services = of_kind("Service")
autoscalers = of_kind("HorizontalPodAutoscaler")
budgets = of_kind("PodDisruptionBudget")
jobs = of_kind("Job")

for name in WORKLOADS:
    deployment = deployments.get(name)
    if deployment is None:
        problems.append(f"no Deployment {name}")
        continue
    spec = deployment["spec"]
    template = spec["template"]
    pod = template["spec"]
    container = next((c for c in pod["containers"] if c["name"] == name), None)
    if container is None:
        problems.append(f"Deployment {name}: no container {name}")
        continue
    rolling = spec.get("strategy", {}).get("rollingUpdate", {})
    if spec.get("strategy", {}).get("type", "RollingUpdate") != "RollingUpdate" or str(
        rolling.get("maxUnavailable")
    ) != "0":
        problems.append(f"Deployment {name}: rolling update may go below the current count")
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre_stop:
        sleep = int(pre_stop["sleep"]["seconds"])
    elif pre_stop.get("exec", {}).get("command", [""])[0].endswith("/sleep"):
        sleep = int(pre_stop["exec"]["command"][1])
    else:
        sleep = None
        problems.append(f"Deployment {name}: no preStop sleep")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if sleep is not None and grace <= sleep + DRAIN_SECONDS:
        problems.append(
            f"Deployment {name}: terminationGracePeriodSeconds {grace} is not longer than "
            f"preStop {sleep} s + drain {DRAIN_SECONDS} s"
        )
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if ports.get("admin") != ADMIN_PORT:
        problems.append(f"Deployment {name}: no containerPort admin {ADMIN_PORT}")
    annotations = template.get("metadata", {}).get("annotations", {})
    if annotations.get("prometheus.io/scrape") != "true" or annotations.get(
        "prometheus.io/port"
    ) != str(ADMIN_PORT):
        problems.append(f"Deployment {name}: no Prometheus scrape annotations for the admin port")

    if name in SERVICES:
        port = SERVICES[name]
        for probe in ("readinessProbe", "livenessProbe"):
            if container.get(probe, {}).get("grpc", {}).get("port") != port:
                problems.append(f"Deployment {name}: {probe} is not gRPC on {port}")
        if ports.get("grpc") != port:
            problems.append(f"Deployment {name}: no containerPort grpc {port}")
        service = services.get(name)
        if service is None or service["spec"].get("clusterIP") != "None":
            problems.append(f"Service {name}: missing or not headless")
        elif [p["port"] for p in service["spec"]["ports"]] != [port]:
            problems.append(f"Service {name}: port is not the container's {port}")
    else:
        for probe in ("readinessProbe", "livenessProbe"):
            if "httpGet" not in container.get(probe, {}):
                problems.append(f"Deployment {name}: {probe} is not HTTP")
        service = services.get(name)
        if service is None or service["spec"].get("clusterIP") == "None":
            problems.append(f"Service {name}: missing or headless")

    labels = template["metadata"]["labels"]
    budget = budgets.get(name)
    if budget is None:
        problems.append(f"no PodDisruptionBudget {name}")
    elif not budget["spec"]["selector"].get("matchLabels", {}).items() <= labels.items():
        problems.append(f"PodDisruptionBudget {name}: does not select Deployment {name}'s pods")

    autoscaler = autoscalers.get(name)
    if "replicas" in spec:
        problems.append(f"Deployment {name}: sets replicas; its HPA owns the count")
    if autoscaler is None or autoscaler["apiVersion"] != "autoscaling/v2":
        problems.append(f"no autoscaling/v2 HorizontalPodAutoscaler {name}")
    else:
        target = autoscaler["spec"]["scaleTargetRef"]
        if (target["kind"], target["name"]) != ("Deployment", name):
            problems.append(f"HorizontalPodAutoscaler {name}: does not scale Deployment {name}")
        if not any(
            m.get("resource", {}).get("name") == "cpu"
            and m["resource"]["target"]["type"] == "Utilization"
            for m in autoscaler["spec"].get("metrics", [])
        ):
            problems.append(f"HorizontalPodAutoscaler {name}: no CPU utilization target")
        if production and autoscaler["spec"].get("minReplicas", 1) < 2:
            problems.append(f"HorizontalPodAutoscaler {name}: minReplicas below 2")

# Migrations before services: one Job per release; every service pod waits for its schema.
if len(jobs) != 1:
    problems.append(f"expected one migration Job, found {sorted(jobs) or 'none'}")
else:
    (job_name, job), = jobs.items()
    image = job["spec"]["template"]["spec"]["containers"][0]["image"]
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    if job_name != f"director-migrate-{tag}":
        problems.append(f"Job {job_name}: name does not end in its image's tag {tag!r}")
    for name in SERVICES:
        pod = deployments.get(name, {}).get("spec", {}).get("template", {}).get("spec", {})
        waits = [c for c in pod.get("initContainers", []) if c["name"] == "wait-for-migrations"]
        containers = pod.get("containers", [])
        if not waits or waits[0].get("command", [])[:3] != [f"director-{name}", "migrate", "--wait"]:
            problems.append(f"Deployment {name}: no init container running `director-{name} migrate --wait`")
        elif waits[0]["image"] != image:
            problems.append(f"Deployment {name}: waits with image {waits[0]['image']}, not the Job's {image}")
        elif containers and waits[0].get("envFrom") != containers[0].get("envFrom"):
            problems.append(f"Deployment {name}: the migration wait does not read the service's settings")
        if containers and containers[0]["image"] != image:
            problems.append(f"Deployment {name}: image {containers[0]['image']} is not the Job's {image}")

# The egress each workload needs, allowed by some NetworkPolicy selecting its pods.
DNS = [("UDP", 53), ("TCP", 53)]
NEEDS = {"gateway": [*DNS, ("TCP", 443)], "director-migrate": [*DNS, ("TCP", 5432)]}
for name in SERVICES:
    reaches_out = pod_labels(deployments[name]).get(HTTPS_CLIENT)
    if reaches_out not in ("true", "false"):
        problems.append(f"Deployment {name}: label {HTTPS_CLIENT} is not \"true\" or \"false\"")
    NEEDS[name] = [*DNS, ("TCP", 5432)] + ([("TCP", 443)] if reaches_out == "true" else [])
network_policies = [d for d in documents if d["kind"] == "NetworkPolicy"]


def egress_allows(labels, protocol, port):
    for policy in network_policies:
        spec = policy["spec"]
        if "Egress" not in spec.get("policyTypes", []) or not selects(
            spec.get("podSelector", {}), labels
        ):
            continue
        for rule in spec.get("egress", []):
            ports = rule.get("ports")
            if not ports or any(
                entry.get("protocol", "TCP") == protocol
                and entry.get("port") is not None
                and entry["port"] <= port <= entry.get("endPort", entry["port"])
                for entry in ports
                if not isinstance(entry.get("port"), str)
            ):
                return True
    return False


pods = {name: d["spec"]["template"] for name, d in deployments.items()}
pods.update({"director-migrate": job["spec"]["template"] for job in jobs.values()})
for name, needs in NEEDS.items():
    template = pods.get(name)
    if template is None:
        continue
    labels = template.get("metadata", {}).get("labels", {})
    for protocol, port in needs:
        if not egress_allows(labels, protocol, port):
            problems.append(f"{name}: no NetworkPolicy lets its pods out on {protocol} {port}")

for problem in problems:
    print(problem, file=sys.stderr)
sys.exit(1 if problems else 0)
