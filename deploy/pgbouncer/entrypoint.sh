#!/bin/sh
# Writes pgbouncer's configuration from the variables docker-compose.yml's `pgbouncer`
# service sets (edoburu/pgbouncer's names), then runs it in the foreground.
set -eu
: "${DB_HOST:?DB_HOST is required}" "${DB_USER:?DB_USER is required}"
: "${DB_PASSWORD:?DB_PASSWORD is required}"
dir=/tmp/pgbouncer
mkdir -p "$dir"
umask 077
# The password in plain text: pgbouncer answers SCRAM with it and logs in to PostgreSQL.
printf '"%s" "%s"\n' "$DB_USER" "$DB_PASSWORD" > "$dir/userlist.txt"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=$DB_HOST port=${DB_PORT:-5432}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = ${LISTEN_PORT:-6432}
unix_socket_dir =
auth_type = ${AUTH_TYPE:-scram-sha-256}
auth_file = $dir/userlist.txt
pool_mode = ${POOL_MODE:-transaction}
default_pool_size = ${DEFAULT_POOL_SIZE:-10}
max_client_conn = ${MAX_CLIENT_CONN:-500}
INI
# pgbouncer refuses to run as root: as root, it runs as `postgres` (the package's user).
if [ "$(id -u)" = 0 ]; then
  chown -R postgres "$dir"
  exec /usr/sbin/pgbouncer -u postgres "$dir/pgbouncer.ini"
fi
exec /usr/sbin/pgbouncer "$dir/pgbouncer.ini"
