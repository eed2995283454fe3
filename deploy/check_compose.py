#!/usr/bin/env python3
"""Checks the compose file as rendered by `docker-compose --profile observability config`
(read on stdin): every published port binds 127.0.0.1 unless PUBLISH_ADDR says otherwise;
every long-running Director container (the image's, all but the one-shot `director migrate`)
has a healthcheck probing it with `director health`; the gateway starts only once every
service is healthy. Exits 1 naming each problem."""

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


DIRECTOR_IMAGE = "director:dev"
SERVICES = ("companies", "dispatch", "integrations")


def command_of(service):
    command = service.get("command") or []
    return command if isinstance(command, list) else str(command).split()


def health_problems(services):
    problems = []
    for name, service in sorted(services.items()):
        if service.get("image") != DIRECTOR_IMAGE or command_of(service)[:2] == ["director", "migrate"]:
            continue
        test = (service.get("healthcheck") or {}).get("test") or []
        test = test if isinstance(test, list) else str(test).split()
        if test[-3:] != ["director", "health", name]:
            problems.append(f"{name}: no healthcheck running `director health {name}` (has {test!r})")
    gateway = services.get("gateway") or {}
    depends_on = gateway.get("depends_on") or {}
    for service in SERVICES:
        condition = depends_on.get(service, {}).get("condition") if isinstance(depends_on, dict) else None
        if condition != "service_healthy":
            problems.append(f"gateway: starts on {service} {condition or 'not waited for'}, not service_healthy")
    return problems


def main():
    config = yaml.safe_load(sys.stdin)
    services = config.get("services") or {}
    problems = port_problems(services) + health_problems(services)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"compose: {len(services)} services checked")


if __name__ == "__main__":
    main()
