#!/usr/bin/env bash
# Runs the compose stack with real containers on a machine without registry access, then the
# README's checks. Not part of CI.
#
#   deploy/compose-podman.sh            # build, start, check, then stop (the volume is kept)
#   KEEP=1 deploy/compose-podman.sh     # leave the stack running afterwards
#   SKIP_BUILD=1 …                      # reuse target/release's binaries as they are
#
# What it does, with podman (Debian's 4.3: `apt-get install -y podman debootstrap buildah`;
# run as root) and podman-compose 1.6 (installed from PyPI into a venv under target/ unless
# PODMAN_COMPOSE names one):
#
# 1. A Debian base image made locally (`debootstrap --variant=minbase` from the mirror apt
#    uses, imported as localhost/debian:bookworm-slim): no registry is needed.
# 2. A PostgreSQL image on it (Debian's postgresql-15, an entrypoint with the official image's
#    POSTGRES_USER / POSTGRES_PASSWORD semantics, scram auth), used as POSTGRES_IMAGE.
# 3. Director's image: deploy/Dockerfile's final stage on the local base, with the release
#    binaries built on the host (`cargo build --release`) instead of in a container.
# 4. The stack from docker-compose.yml with podman-compose, service by service in order —
#    podman 4.3 schedules no healthchecks and podman-compose ignores `service_healthy`, so
#    the script runs `podman healthcheck run` (each container's `director health …`) itself:
#    postgres healthy → migrate exits 0 → services healthy → gateway healthy.
# 5. Checks: every container healthy; `director migrate`'s output is JSON line by line; a REST
#    create and list through the gateway; a grpcurl call (when grpcurl is installed); `down`
#    and up again, the company still listed.
#
# The VM these were written on refuses the runtime's default rlimits: without
# /etc/containers/containers.conf the script writes one (nofile/nproc 10000, runc).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD
work=${WORK_DIR:-$root/target/compose-podman}
project=${PROJECT:-director-podman}
port=${GATEWAY_PORT:-18480}
base=localhost/debian:bookworm-slim
pg_image=localhost/director-postgres:16
jwt_secret=${SUPABASE_JWT_SECRET:-compose-dev-jwt-secret-0123456789abcdef}
mkdir -p "$work"

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }
for tool in podman debootstrap curl python3 cargo; do
  command -v "$tool" >/dev/null ||
    fail "$tool is missing (apt-get install -y podman podman-compose debootstrap buildah)"
done

# Debian's podman-compose (1.0) passes `${VAR:-}` through unexpanded; 1.6 from PyPI does not.
podman_compose=${PODMAN_COMPOSE:-$work/venv/bin/podman-compose}
if [ ! -x "$podman_compose" ]; then
  say "podman-compose from PyPI in $work/venv"
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q podman-compose
fi

if [ ! -e /etc/containers/containers.conf ]; then
  say "writing /etc/containers/containers.conf (rlimits this VM accepts, runc)"
  cat > /etc/containers/containers.conf <<'EOF'
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=10000:10000"]
[engine]
runtime = "runc"
EOF
fi

if ! podman image exists "$base"; then
  say "base image $base (debootstrap)"
  mirror=$(grep -hoE '^URIs: *[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}' || true)
  [ -n "$mirror" ] ||
    mirror=$(grep -hoE '^deb +[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -1 | awk '{print $2}' || true)
  [ -n "$mirror" ] || fail "no Debian mirror found in /etc/apt"
  rm -rf "$work/rootfs"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  tar -C "$work/rootfs" -c . | podman import --change 'CMD ["bash"]' - "$base"
  rm -rf "$work/rootfs"
fi

if ! podman image exists "$pg_image"; then
  say "PostgreSQL image $pg_image"
  mkdir -p "$work/postgres"
  cat > "$work/postgres/entrypoint.sh" <<'EOF'
#!/bin/sh
# The official image's contract, minimally: initdb once with POSTGRES_USER (postgres) and
# POSTGRES_PASSWORD, password (scram) auth from other hosts, then the server on every address.
set -e
PGDATA=${PGDATA:-/var/lib/postgresql/data}
mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  as_postgres initdb -D "$PGDATA" -U "${POSTGRES_USER:-postgres}" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups postgres -D "$PGDATA" -c listen_addresses='*'
EOF
  cat > "$work/postgres/Containerfile" <<EOF
FROM $base
RUN apt-get update \\
 && apt-get install -y --no-install-recommends postgresql-15 \\
 && rm -rf /var/lib/apt/lists/*
COPY entrypoint.sh /usr/local/bin/entrypoint.sh
RUN chmod 755 /usr/local/bin/entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:\$PATH PGDATA=/var/lib/postgresql/data
EXPOSE 5432
CMD ["/usr/local/bin/entrypoint.sh"]
EOF
  podman build -q -t "$pg_image" "$work/postgres"
fi

if [ -z "${SKIP_BUILD:-}" ]; then
  say "release binaries (cargo build --release)"
  cargo build --release --locked --workspace --bins
fi
say "Director image director:dev (deploy/Dockerfile's final stage, host binaries)"
context="$work/director"
rm -rf "$context"
mkdir -p "$context/bin"
# Every binary of the workspace, as the Dockerfile's build stage copies them.
find "$root/target/release" -maxdepth 1 -type f -executable -name 'director*' \
  -exec cp {} "$context/bin/" \;
cp -r "$root/migrations" "$context/migrations"
# The last stage of the Dockerfile, from the local base, copying the host's binaries.
awk '/^FROM /{stage=""} {stage = stage $0 "\n"} END {printf "%s", stage}' deploy/Dockerfile |
  sed -e "s|^FROM .*|FROM $base|" -e 's|^COPY --from=build /out/ |COPY bin/ |' \
  > "$context/Containerfile"
podman build -q -t localhost/director:dev "$context" >/dev/null

compose() {
  POSTGRES_IMAGE=$pg_image GATEWAY_PORT=$port "$podman_compose" -p "$project" -f "$root/docker-compose.yml" "$@"
}
container() {
  podman ps -a --filter "label=com.docker.compose.project=$project" \
    --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | head -1
}
wait_healthy() {
  local name
  name=$(container "$1")
  [ -n "$name" ] || fail "no container for $1"
  for _ in $(seq 1 60); do
    if podman healthcheck run "$name" >/dev/null 2>&1; then
      echo "$1 ($name): healthy"
      return 0
    fi
    sleep 2
  done
  podman logs --tail 30 "$name" >&2 || true
  fail "$1 never became healthy"
}
up_stack() {
  compose up -d --no-build --no-deps postgres > "$work/compose.log" 2>&1
  wait_healthy postgres
  compose up -d --no-build --no-deps migrate >> "$work/compose.log" 2>&1
  local migrate status
  migrate=$(container migrate)
  status=$(podman wait "$migrate")
  podman logs "$migrate" > "$work/migrate.log" 2>&1
  [ "$status" = 0 ] || { cat "$work/migrate.log"; fail "migrate exited $status"; }
  python3 -c '
import json, sys
lines = [line for line in open(sys.argv[1]) if line.strip()]
for line in lines:
    json.loads(line)
print(f"migrate: exit 0, {len(lines)} log lines, every one JSON")
' "$work/migrate.log" || { cat "$work/migrate.log"; fail "migrate logged a line that is not JSON"; }
  # The services: every container the gateway waits for (depends_on), as the compose file lists
  # them (held to the catalog by cli/tests/service_lists.rs).
  local services
  services=$(python3 -c '
import sys, yaml
print(" ".join(yaml.safe_load(open(sys.argv[1]))["services"]["gateway"]["depends_on"]))
' "$root/docker-compose.yml")
  for service in $services; do
    compose up -d --no-build --no-deps "$service" >> "$work/compose.log" 2>&1
  done
  for service in $services; do wait_healthy "$service"; done
  compose up -d --no-build --no-deps gateway >> "$work/compose.log" 2>&1
  wait_healthy gateway
}

say "compose up (project $project, gateway on 127.0.0.1:$port)"
compose down > /dev/null 2>&1 || true
up_stack
podman ps --filter "label=com.docker.compose.project=$project" --format '{{.Names}}\t{{.Status}}'

say "REST: create and list"
api="http://127.0.0.1:$port/api"
token=$(SUPABASE_JWT_SECRET=$jwt_secret ENVIRONMENT=dev "$root/target/release/director" token \
  --tenant compose-podman-check --role admin)
name="Podman Dairy $(date +%s)"
created=$(curl -fsS "$api/companies" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d "{\"name\": \"$name\", \"phone\": \"+1 555 012 3456\"}")
echo "created: $created"
company_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<< "$created")
curl -fsS "$api/companies" -H "authorization: Bearer $token" | grep -q "$company_id" ||
  fail "the company is not listed"
echo "listed: $company_id"

if command -v grpcurl >/dev/null; then
  say "gRPC through the gateway (grpcurl)"
  grpcurl -plaintext -H "authorization: Bearer $token" -d "{\"id\": \"$company_id\"}" \
    "127.0.0.1:$port" director.companies.v1.CompaniesService/GetCompany
else
  echo "grpcurl is not installed: gRPC check skipped"
fi

say "down, up: the data survives"
compose down > "$work/compose-down.log" 2>&1
up_stack
curl -fsS "$api/companies" -H "authorization: Bearer $token" | grep -q "$company_id" ||
  fail "the company did not survive down and up"
echo "still listed after down/up: $company_id"

if [ -z "${KEEP:-}" ]; then
  compose down > /dev/null 2>&1
  echo "stopped (volume kept; podman volume rm ${project}_pgdata removes the data)"
fi
say "all checks passed"
