#!/usr/bin/env python3
"""Checks the compose file as rendered by `docker-compose --profile observability config`
(read on stdin): every published port binds 127.0.0.1 unless PUBLISH_ADDR says otherwise.
Exits 1 naming each problem."""

import sys

import yaml


def port_problems(services):
    problems = []
    for name, service in sorted(services.items()):
        for port in service.get("ports") or []:
            if isinstance(port, dict):
                host_ip = port.get("host_ip")
                shown = f"{host_ip or ''}:{port.get('published')}:{port.get('target')}"
            else:
                parts = str(port).split(":")
                host_ip = parts[0] if len(parts) == 3 else None
                shown = str(port)
            if host_ip != "127.0.0.1":
                problems.append(f"{name}: port {shown} is published beyond loopback")
    return problems


def main():
    config = yaml.safe_load(sys.stdin)
    services = config.get("services") or {}
    problems = port_problems(services)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"compose: {len(services)} services checked")


if __name__ == "__main__":
    main()
