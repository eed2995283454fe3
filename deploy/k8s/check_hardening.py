#!/usr/bin/env python3
"""Checks a rendered overlay (stdin) for the hardening every workload must keep:
no service-account token (none automounted, none projected: nothing talks to the Kubernetes
API), RuntimeDefault seccomp, non-root, every container (init
containers included) without privilege escalation, with a read-only root, all capabilities
dropped, a pinned image and CPU and memory requests and limits, a default-deny
NetworkPolicy, and secrets kept apart: each Deployment or Job references exactly one Secret,
its own (`director-<name>`, kustomize's hash suffix allowed; <name> is the pod template's
`app.kubernetes.io/name` without `director-`, else the workload's name), and no Secret is
shared. Egress is narrow: no NetworkPolicy rule lets PostgreSQL (5432) out to any
destination (a rule without destinations, or an ipBlock wider than /16, or an address that is
not one: the base's placeholder left unset), nor HTTPS (443) to any destination short of the
internet (an ipBlock must except every private, CGNAT and link-local range it spans; none may
lie inside one), and the gateway has no way to PostgreSQL; a rule without ports counts as
every port, a named port as every number a container of the overlay gives that name. Exits 1 naming each violation. Run by .ci/run."""

import ipaddress
import re
import sys

import yaml

from label_selectors import selects

problems = []
documents = [d for d in yaml.safe_load_all(sys.stdin) if d]
network_policies = [d for d in documents if d["kind"] == "NetworkPolicy"]
policies = {d["metadata"]["name"] for d in network_policies}
if "default-deny" not in policies:
    problems.append("no default-deny NetworkPolicy")

POSTGRES, HTTPS = 5432, 443
# Every number each port name stands for in some container (NetworkPolicies name ports: `grpc`
# is each service's own); a name no container uses counts as any port.
NAMED_PORTS = {}
for document in documents:
    pod = document.get("spec", {}).get("template", {}).get("spec", {})
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for port in container.get("ports", []):
            if "name" in port:
                NAMED_PORTS.setdefault(port["name"], set()).add(port["containerPort"])
# The widest block a database's address may be given as.
DATABASE_MIN_PREFIX = {4: 16, 6: 48}
# Where HTTPS must not go: private (RFC 1918, IPv6 unique-local), CGNAT, link-local (cloud
# metadata), and IPv4-mapped IPv6 addresses (which reach all of IPv4).
NOT_THE_INTERNET = [
    ipaddress.ip_network(block)
    for block in (
        "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
        "fc00::/7", "fe80::/10", "::ffff:0:0/96",
    )
]


def allows_port(rule, port):
    """Whether an egress rule lets `port` out (no ports: every port; a named port: the numbers
    containers give that name, any port for a name none uses)."""
    ports = rule.get("ports")
    if not ports:
        return True
    for entry in ports:
        number = entry.get("port")
        if number is None:
            return True
        if isinstance(number, str):
            if port in NAMED_PORTS.get(number, {port}):
                return True
            continue
        if number <= port <= entry.get("endPort", number):
            return True
    return False


def block_problem(peer, port):
    """Why an ipBlock peer is too wide for `port`, or None."""
    cidr = peer["ipBlock"].get("cidr", "")
    try:
        block = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return f"ipBlock {cidr!r} is not an address (is the overlay's setting unset?)"
    if port == POSTGRES:
        if block.prefixlen < DATABASE_MIN_PREFIX[block.version]:
            return f"ipBlock {cidr} is wider than the database's address may be"
        return None
    excepted = []
    for text in peer["ipBlock"].get("except", []):
        try:
            excepted.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            return f"ipBlock {cidr} excepts {text!r}, which is not an address"
    for forbidden in NOT_THE_INTERNET:
        if forbidden.version != block.version or not forbidden.overlaps(block):
            continue
        if block.subnet_of(forbidden):
            return f"ipBlock {cidr} lies inside {forbidden}"
        if not any(e.version == block.version and forbidden.subnet_of(e) for e in excepted):
            return f"ipBlock {cidr} does not except {forbidden}"
    return None


for policy in network_policies:
    name = policy["metadata"]["name"]
    for number, rule in enumerate(policy["spec"].get("egress", [])):
        for port in (POSTGRES, HTTPS):
            if not allows_port(rule, port):
                continue
            where = f"NetworkPolicy {name} egress rule {number}: port {port}"
            peers = rule.get("to") or []
            if not peers:
                problems.append(f"{where} to any destination")
            for peer in peers:
                if "ipBlock" in peer:
                    reason = block_problem(peer, port)
                    if reason:
                        problems.append(f"{where}: {reason}")
                elif port == POSTGRES and "podSelector" not in peer:
                    problems.append(f"{where} to whole namespaces, not the database's pods")

for document in documents:
    if document["kind"] != "Deployment" or document["metadata"]["name"] != "gateway":
        continue
    labels = document["spec"]["template"]["metadata"].get("labels", {})
    for policy in network_policies:
        if selects(policy["spec"].get("podSelector", {}), labels) and any(
            allows_port(rule, POSTGRES) for rule in policy["spec"].get("egress", [])
        ):
            problems.append(f"NetworkPolicy {policy['metadata']['name']}: the gateway may reach PostgreSQL")



def secrets_referenced(pod):
    """Every Secret name a pod spec reads: envFrom, env valueFrom, volumes, projections."""
    names = set()
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                names.add(source["secretRef"]["name"])
        for variable in container.get("env", []):
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference:
                names.add(reference["name"])
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            names.add(volume["secret"]["secretName"])
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                names.add(source["secret"]["name"])
    for pull in pod.get("imagePullSecrets", []):
        names.add(pull["name"])
    return names


readers = {}
for document in documents:
    if document["kind"] not in ("Deployment", "Job"):
        continue
    name = f'{document["kind"]}/{document["metadata"]["name"]}'
    template = document["spec"]["template"]
    pod = template["spec"]
    # The Job's name carries the release's tag (director-migrate-<tag>); its pods' label does not.
    label = template.get("metadata", {}).get("labels", {}).get("app.kubernetes.io/name")
    workload = (label or document["metadata"]["name"]).removeprefix("director-")
    own = re.compile(rf"^director-{re.escape(workload)}(-[a-z0-9]{{10}})?$")
    referenced = secrets_referenced(pod)
    if not referenced:
        problems.append(f"{name}: references no Secret (expected director-{workload})")
    for secret in sorted(referenced):
        readers.setdefault(secret, []).append(name)
        if not own.match(secret):
            problems.append(
                f"{name}: references Secret {secret}; it may read only director-{workload}"
            )
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: automountServiceAccountToken is not false")
    context = pod.get("securityContext", {})
    if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: seccompProfile is not RuntimeDefault")
    if context.get("runAsNonRoot") is not True:
        problems.append(f"{name}: may run as root")
    token_volumes = {
        volume["name"]
        for volume in pod.get("volumes", [])
        if any("serviceAccountToken" in source
               for source in volume.get("projected", {}).get("sources", []))
    }
    for volume in sorted(token_volumes):
        problems.append(f"{name}: volume {volume} projects a service-account token")
    for container in pod["containers"] + pod.get("initContainers", []):
        where = f'{name} container {container["name"]}'
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(kind, {}):
                    problems.append(f"{where}: no {resource} {kind[:-1]}")
        security = container.get("securityContext", {})
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: privilege escalation allowed")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: writable root filesystem")
        if "ALL" not in security.get("capabilities", {}).get("drop", []):
            problems.append(f"{where}: capabilities not all dropped")
        image = container["image"]
        if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            problems.append(f"{where}: image {image} is not pinned")

for secret, workloads in sorted(readers.items()):
    if len(workloads) > 1:
        problems.append(f"Secret {secret} is shared by {', '.join(workloads)}")

for problem in problems:
    print(problem, file=sys.stderr)
sys.exit(1 if problems else 0)
