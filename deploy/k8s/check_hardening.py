#!/usr/bin/env python3
"""Checks a rendered overlay (stdin) for the hardening every workload must keep:
no service-account token, RuntimeDefault seccomp, non-root, every container without
privilege escalation, with a read-only root and all capabilities dropped, pinned images,
and a default-deny NetworkPolicy. Exits 1 naming each violation. Run by .ci/run."""

import sys

import yaml

problems = []
documents = [d for d in yaml.safe_load_all(sys.stdin) if d]
policies = {d["metadata"]["name"] for d in documents if d["kind"] == "NetworkPolicy"}
if "default-deny" not in policies:
    problems.append("no default-deny NetworkPolicy")

for document in documents:
    if document["kind"] not in ("Deployment", "Job"):
        continue
    name = f'{document["kind"]}/{document["metadata"]["name"]}'
    pod = document["spec"]["template"]["spec"]
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: automountServiceAccountToken is not false")
    context = pod.get("securityContext", {})
    if context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{name}: seccompProfile is not RuntimeDefault")
    if context.get("runAsNonRoot") is not True:
        problems.append(f"{name}: may run as root")
    for container in pod["containers"]:
        where = f'{name} container {container["name"]}'
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

for problem in problems:
    print(problem, file=sys.stderr)
sys.exit(1 if problems else 0)
