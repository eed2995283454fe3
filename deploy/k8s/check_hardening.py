#!/usr/bin/env python3
"""Checks a rendered overlay (stdin) for the hardening every workload must keep:
no service-account token (none automounted, none projected: nothing talks to the Kubernetes
API), RuntimeDefault seccomp, non-root, every container (init
containers included) without privilege escalation, with a read-only root, all capabilities
dropped, a pinned image and CPU and memory requests and limits, a default-deny
NetworkPolicy, and secrets kept apart: each Deployment or Job references exactly one Secret,
its own (`director-<name>`, kustomize's hash suffix allowed; <name> is the pod template's
`app.kubernetes.io/name` without `director-`, else the workload's name), and no Secret is
shared. Exits 1 naming each violation. Run by .ci/run."""

import re
import sys

import yaml

problems = []
documents = [d for d in yaml.safe_load_all(sys.stdin) if d]
policies = {d["metadata"]["name"] for d in documents if d["kind"] == "NetworkPolicy"}
if "default-deny" not in policies:
    problems.append("no default-deny NetworkPolicy")



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
