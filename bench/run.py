#!/usr/bin/env python3
"""Director's side-by-side benchmark: one command, see bench/README.md.

Builds the release binaries, migrates fresh benchmark databases, starts the gateway and the
three services as separate processes (so each one's CPU can be read), optionally starts the
reference API beside them, drives both with wrk (HTTP/1.1) and h2load (gRPC over h2c,
gRPC-Web over HTTP/1.1), and prints for each workload: requests per second, p50 and p99
latency, and CPU microseconds per request for every process involved (from /proc, user +
system time), plus the stack's resident memory. Everything runs on this machine, the load
generators included, so figures are relative: compare ratios from one run.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = ROOT.parent / "shared" / "peers" / "fastapi_ref"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVICES = {"companies": 50151, "dispatch": 50152, "integrations": 50153}
GATEWAY_PORT = 8180
PGBOUNCER_PORT = 6532
# Server connections pgbouncer keeps per database with --pgbouncer: fewer than the services'
# clients (DB_MAX_CONNECTIONS, 10), as a pooler in front of a small database gives them.
PGBOUNCER_POOL_SIZE = 4
PEER_PORT = 8101
ADMIN_PORT = 19460
TENANT = "bench-tenant"
USER = "bench-user"


# ----------------------------------------------------------------------------------------
# Processes and their CPU
# ----------------------------------------------------------------------------------------


def cpu_ticks(pid: int) -> int:
    """User + system clock ticks of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    """Direct children of `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def postgres_pids() -> list[int]:
    """The PostgreSQL server and all its backends (every process named postgres)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@dataclass
class Group:
    """A named set of processes whose CPU is summed (e.g. uvicorn's master and workers)."""

    name: str
    pids: callable

    def snapshot(self) -> dict[int, int]:
        return {pid: cpu_ticks(pid) for pid in self.pids()}

    @staticmethod
    def used(before: dict[int, int], after: dict[int, int]) -> int:
        """Ticks spent between two snapshots by processes alive at the second: a process
        that started in between counts whole, one that ended is lost (its time cannot be
        read any more), so the figure is never negative."""
        return sum(ticks - before.get(pid, 0) for pid, ticks in after.items())


class Stack:
    """Processes started by the benchmark; all stopped on exit."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str], env: dict[str, str], cwd=None):
        log = open(self.log_dir / f"{name}.log", "wb")
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd
        )
        self.processes[name] = process
        return process

    def stop(self):
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_http(url: str, seconds: float = 60):
    """Waits for a 200 from `url`; for the gateway's readiness, for every service serving."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                body = response.read()
                if response.status == 200 and (
                        not url.endswith("/health/ready")
                        or json.loads(body).get("status") == "ok"):
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not become ready within {seconds} s")


def run(command: list[str], env=None, capture=True) -> str:
    result = subprocess.run(command, env=env, capture_output=capture, text=True)
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout if capture else ""


# ----------------------------------------------------------------------------------------
# Tokens and request bodies
# ----------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(secret: str, sub: str, tenant: str | None) -> str:
    """A Supabase-shaped access token, valid for two hours."""
    now = int(time.time())
    claims = {"sub": sub, "aud": "authenticated", "role": "authenticated", "iat": now,
              "exp": now + 7200}
    if tenant:
        claims["app_metadata"] = {"tenant_id": tenant, "role": "admin"}
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64url(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{b64url(signature.digest())}"


def protobuf_string_field(number: int, value: str) -> bytes:
    encoded = value.encode()
    key = bytes([(number << 3) | 2])
    length = len(encoded)
    varint = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        varint.append(byte | (0x80 if length else 0))
        if not length:
            break
    return key + bytes(varint) + encoded


def grpc_frame(message: bytes) -> bytes:
    return b"\x00" + len(message).to_bytes(4, "big") + message


def http_json(method: str, url: str, token: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


# ----------------------------------------------------------------------------------------
# Load generators
# ----------------------------------------------------------------------------------------


@dataclass
class Result:
    workload: str
    target: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: dict[str, float] = field(default_factory=dict)


def wrk(url: str, token: str, seconds: int, connections: int, script: str | None,
        headers: dict[str, str] | None = None):
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
               "-H", f"Authorization: Bearer {token}"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    if script:
        command += ["-s", script]
    output = run(command + [url])
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)", output, re.M))
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return rps, to_ms(percentiles["50"]), to_ms(percentiles["99"]), errors


def to_ms(text: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def h2load(url: str, headers: dict[str, str], body: bytes, seconds: int, connections: int,
           http1: bool = False):
    """h2load for `seconds` (after a one-second warm-up); percentiles from its request log."""
    with tempfile.NamedTemporaryFile(suffix=".bin") as data, \
            tempfile.NamedTemporaryFile(suffix=".log") as log:
        data.write(body)
        data.flush()
        command = ["h2load", f"-c{connections}", "-m1", f"-D{seconds}", "--warm-up-time=1",
                   "-d", data.name, "--log-file", log.name]
        if http1:
            command.append("--h1")
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        output = run(command + [url])
        elapsed = sorted(int(line.split()[2]) for line in open(log.name) if line.strip())
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", output).group(1))
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output)
    errors = sum(int(n) for n in status.groups()[1:]) if status else 0
    failed = re.search(r"(\d+) failed, (\d+) errored", output)
    if failed:
        errors += int(failed.group(1))
    if not elapsed:
        return rps, 0.0, 0.0, errors
    p50 = elapsed[len(elapsed) // 2] / 1000
    p99 = elapsed[min(len(elapsed) - 1, int(len(elapsed) * 0.99))] / 1000
    return rps, p50, p99, errors


def wire_bytes(url: str, token: str, accept_encoding: str | None) -> tuple[int, str]:
    """The body size of one answer as sent (not decoded) and its `Content-Encoding`."""
    request = urllib.request.Request(url)
    request.add_header("Authorization", f"Bearer {token}")
    if accept_encoding:
        request.add_header("Accept-Encoding", accept_encoding)
    with urllib.request.urlopen(request, timeout=10) as response:
        return len(response.read()), response.headers.get("Content-Encoding") or "identity"


def measure(workload, target, groups: list[Group], drive) -> Result:
    """Runs `drive()` and charges each group's CPU to the requests it served."""
    before = {group.name: group.snapshot() for group in groups}
    started = time.time()
    rps, p50, p99, errors = drive()
    wall = time.time() - started
    after = {group.name: group.snapshot() for group in groups}
    requests = max(rps * wall, 1)
    cpu = {name: Group.used(before[name], after[name]) / CLOCK_TICKS * 1e6 / requests
           for name in before}
    result = Result(workload, target, rps, p50, p99, errors, cpu)
    print_result(result)
    return result


def print_result(result: Result):
    cpu = ", ".join(f"{name} {us:.0f}" for name, us in result.cpu_us.items())
    errors = f"  ERRORS: {result.errors}" if result.errors else ""
    print(f"  {result.workload:<26} {result.target:<22} {result.requests_per_second:>9.0f} req/s"
          f"  p50 {result.p50_ms:>6.2f} ms  p99 {result.p99_ms:>6.2f} ms  cpu µs/req: {cpu}{errors}",
          flush=True)


# ----------------------------------------------------------------------------------------
# The stacks
# ----------------------------------------------------------------------------------------


def ensure_tools():
    missing = [tool for tool, package in (("wrk", "wrk"), ("h2load", "nghttp2-client"))
               if not shutil.which(tool)]
    if missing:
        packages = {"wrk": "wrk", "h2load": "nghttp2-client"}
        run(["apt-get", "install", "-y", "-qq"] + [packages[t] for t in missing], capture=False)


def start_pgbouncer(stack: Stack, server: str, logins: dict[str, str]) -> subprocess.Popen:
    """Debian's pgbouncer in transaction mode in front of `server` (host:port), for `logins`
    (user: password), on PGBOUNCER_PORT; its files in the stack's log directory."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        run(["apt-get", "install", "-y", "-qq", "pgbouncer"], capture=False)
    host, port = server.split(":")
    directory = stack.log_dir / "pgbouncer"
    stack.log_dir.chmod(0o755)  # mkdtemp's 0700 would keep `postgres` out
    directory.mkdir(mode=0o777)
    directory.chmod(0o777)  # as root, pgbouncer runs as `postgres` (-u), which writes here
    users = directory / "userlist.txt"
    users.write_text("".join(f'"{user}" "{password}"\n' for user, password in logins.items()))
    # SCRAM with the logins' passwords; trust for a login without one (--login-as-owner).
    auth = "scram-sha-256" if all(logins.values()) else "trust"
    config = directory / "pgbouncer.ini"
    config.write_text(
        f"[databases]\n* = host={host} port={port}\n\n[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {PGBOUNCER_PORT}\nunix_socket_dir =\n"
        f"auth_type = {auth}\nauth_file = {users}\npool_mode = transaction\n"
        f"default_pool_size = {PGBOUNCER_POOL_SIZE}\nmax_client_conn = 500\n"
        f"logfile = {directory / 'pgbouncer.log'}\npidfile = {directory / 'pgbouncer.pid'}\n")
    for path in (users, config):
        path.chmod(0o644)
    as_postgres = ["-u", "postgres"] if os.geteuid() == 0 else []
    process = stack.start("pgbouncer", [binary, *as_postgres, str(config)], dict(os.environ))
    for _ in range(100):
        log = directory / "pgbouncer.log"
        if log.exists() and f"listening on 127.0.0.1:{PGBOUNCER_PORT}" in log.read_text():
            return process
        if process.poll() is not None:
            break
        time.sleep(0.1)
    sys.exit(f"pgbouncer did not start; see {directory}")


def start_director(stack: Stack, args, jwt_secret: str) -> dict:
    release = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    if not args.no_build:
        print("building the release binaries…", flush=True)
        # Every binary of the workspace: the CLI, the gateway and each service.
        run(["cargo", "build", "--release", "--workspace", "--bins"], capture=False)
    server = args.database_server
    password = secrets.token_hex(16)
    owner = f"postgres://{server}/postgres?sslmode=disable"
    service_login = f"postgres://director_bench:{password}@{server.split('@')[-1]}"
    if args.login_as_owner:
        # Privileged login: the services fall back to tenant transactions with a role switch
        # (what every read cost before one-statement reads), for an A/B in one machine state.
        service_login = f"postgres://{server}"
    env = dict(os.environ)
    env.update({
        "ENVIRONMENT": "dev",
        "RUST_LOG": "warn",
        "LOG_FORMAT": "json",
        "SUPABASE_JWT_SECRET": jwt_secret,
        "INTERNAL_TOKEN_SECRET": secrets.token_hex(32),
        "INTERNAL_TOKEN_TTL_MS": "7200000",
        "MIGRATION_DATABASE_URL": owner,
        # The limiter still runs on every request; its quota must not shape the load.
        "RATE_LIMIT_PER_SECOND": "1000000",
        "RATE_LIMIT_BURST": "1000000",
        "ADDRESS_RATE_LIMIT_PER_SECOND": "1000000",
        "ADDRESS_RATE_LIMIT_BURST": "1000000",
        "GATEWAY_ADDR": f"127.0.0.1:{GATEWAY_PORT}",
        "UPSTREAM_URL_TEMPLATE": "http://127.0.0.1:{port}",
        # Tokio's own setting: runtime worker threads per process (default: one per core).
        "TOKIO_WORKER_THREADS": str(args.workers),
    })
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    # With --pgbouncer, request traffic goes through pgbouncer in transaction mode and each
    # service's sessions (LISTEN, the job workers) to PostgreSQL directly.
    request_login = service_login
    if args.pgbouncer:
        login = service_login.split("://", 1)[1].rsplit("@", 1)[0]
        user, _, login_password = login.partition(":")
        start_pgbouncer(stack, server.split("@")[-1], {user: login_password})
        request_login = f"postgres://{login}@127.0.0.1:{PGBOUNCER_PORT}"
        env["DB_PGBOUNCER_TRANSACTION_MODE"] = "true"
    for service, port in SERVICES.items():
        prefix = service.upper()
        env[f"{prefix}_DATABASE_URL"] = f"{request_login}/director_bench_{service}?sslmode=disable"
        if args.pgbouncer:
            env[f"{prefix}_SESSION_DATABASE_URL"] = \
                f"{service_login}/director_bench_{service}?sslmode=disable"
        env[f"{prefix}_ADDR"] = f"127.0.0.1:{port}"
        env[f"{prefix}_URL"] = f"http://127.0.0.1:{port}"
    # Fresh databases each run: rows and dead tuples from an earlier run (and the vacuum
    # they call for) would weigh on this one.
    psql = ["psql", owner, "-q", "-v", "ON_ERROR_STOP=1"]
    for service in SERVICES:
        run(psql + ["-c", f"DROP DATABASE IF EXISTS director_bench_{service} WITH (FORCE)"])
    run([str(release / "director"), "migrate"], env=env)
    # Each process its own metrics listener.
    for offset, service in enumerate(SERVICES):
        own = dict(env, ADMIN_ADDR=f"127.0.0.1:{ADMIN_PORT + 1 + offset}")
        stack.start(service, [str(release / f"director-{service}")], own)
    stack.start("gateway", [str(release / "director-gateway")],
                dict(env, ADMIN_ADDR=f"127.0.0.1:{ADMIN_PORT}"))
    wait_http(f"http://127.0.0.1:{GATEWAY_PORT}/api/health/ready")
    internal = run([str(release / "director"), "token", "--internal", "--tenant", TENANT,
                    "--sub", USER, "--ttl", "7200"], env=env).strip().splitlines()[-1]
    return {"env": env, "internal_token": internal}


def start_peer(stack: Stack, args, jwt_secret: str):
    print("starting the reference API (../shared/peers/fastapi_ref)…", flush=True)
    run([sys.executable, "-m", "pip", "install", "-q", "fastapi", "uvicorn", "uvloop",
         "httptools", "asyncpg", "sqlalchemy[asyncio]", "pyjwt", "pydantic[email]"])
    server = args.database_server
    psql = ["psql", f"postgres://{server}/postgres?sslmode=disable", "-q", "-v", "ON_ERROR_STOP=1"]
    run(psql + ["-c", "DROP DATABASE IF EXISTS fastapi_ref_bench WITH (FORCE)"])
    run(psql + ["-c", "CREATE DATABASE fastapi_ref_bench"])
    run(["psql", f"postgres://{server}/fastapi_ref_bench?sslmode=disable", "-q",
         "-f", str(PEER_DIR / "schema.sql")])
    env = dict(os.environ)
    env.update({
        "REF_DATABASE_URL":
            f"postgresql+asyncpg://{server}/fastapi_ref_bench?ssl=disable",
        "SUPABASE_JWT_SECRET": jwt_secret,
    })
    process = stack.start("reference", [
        sys.executable, "-m", "uvicorn", "app:app", "--port", str(PEER_PORT), "--workers", "2",
        "--no-access-log", "--log-level", "warning"], env, cwd=PEER_DIR)
    wait_http(f"http://127.0.0.1:{PEER_PORT}/api/health")
    return process


def seed_companies(base: str, token: str, count: int) -> str:
    first = None
    for n in range(count):
        company = http_json("POST", f"{base}/api/companies", token,
                            {"name": f"Bench Farm {n}", "email": f"farm{n}@example.com",
                             "phone": "+15550100000", "address": f"{n} Bench Road"})
        first = first or company["id"]
    return first


def settle(server: str, databases=()):
    """Vacuums `databases` and flushes what was written, so that background work caused by
    earlier writes (autovacuum, checkpoints) does not land in the next measurement."""
    for database in databases:
        run(["psql", f"postgres://{server}/{database}?sslmode=disable", "-q", "-c",
             "VACUUM ANALYZE"])
    run(["psql", f"postgres://{server}/postgres?sslmode=disable", "-q", "-c", "CHECKPOINT"])
    time.sleep(2)


def assign_script(directory: Path, driver: str, tasks: list[str]) -> str:
    """A wrk script posting `assign` to one of `tasks` at random."""
    script = directory / "assign.lua"
    ids = ", ".join(f'"{task}"' for task in tasks)
    script.write_text(
        f"local tasks = {{{ids}}}\n"
        f'local body = \'{{"driver_id": "{driver}"}}\'\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        "request = function()\n"
        "  local task = tasks[math.random(#tasks)]\n"
        '  return wrk.format("POST", "/api/tasks/" .. task .. "/assign", nil, body)\n'
        "end\n"
    )
    return str(script)


def create_script(directory: Path) -> str:
    script = directory / "create.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        'wrk.body = \'{"name": "Bench Created Farm", "email": "new@example.com"}\'\n'
    )
    return str(script)


# ----------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", action="store_true",
                        help="run the reference API beside Director for ratios")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-build", action="store_true", help="use the existing release build")
    parser.add_argument("--database-server", default="postgres@127.0.0.1:5432",
                        help="user@host:port of the PostgreSQL owner login (trust auth)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workers", type=int, default=1,
                        help="Tokio worker threads per Director process (default 1: four "
                             "processes, PostgreSQL and the load generators share the cores)")
    parser.add_argument("--only-lists", action="store_true",
                        help="only the REST list workloads: plain, gzip and brotli")
    parser.add_argument("--login-as-owner", action="store_true",
                        help="services log in as the owner (tenant transactions for every read)")
    parser.add_argument("--pgbouncer", action="store_true",
                        help="the services' request traffic through pgbouncer in transaction "
                             f"mode ({PGBOUNCER_POOL_SIZE} server connections per database), "
                             "their sessions to PostgreSQL directly")
    args = parser.parse_args()

    ensure_tools()
    jwt_secret = secrets.token_hex(32)
    log_dir = Path(tempfile.mkdtemp(prefix="director-bench-"))
    stack = Stack(log_dir)
    results: list[Result] = []
    try:
        director = start_director(stack, args, jwt_secret)
        peer = start_peer(stack, args, jwt_secret) if args.peer else None
        token = hs256_token(jwt_secret, USER, TENANT)
        gateway = f"http://127.0.0.1:{GATEWAY_PORT}"
        company = seed_companies(gateway, token, 100)
        bench_databases = [f"director_bench_{service}" for service in SERVICES]
        settle(args.database_server, bench_databases)
        pg = Group("postgres", postgres_pids)
        gw = Group("gateway", lambda: [stack.processes["gateway"].pid])
        companies = Group("companies", lambda: [stack.processes["companies"].pid])
        director_groups = [gw, companies, pg]
        if args.pgbouncer:
            director_groups.append(Group("pgbouncer", lambda: [stack.processes["pgbouncer"].pid]))
        seconds, conns = args.seconds, args.connections
        script = create_script(log_dir)
        get_message = grpc_frame(protobuf_string_field(1, company))
        grpc_headers = {"content-type": "application/grpc", "te": "trailers",
                        "authorization": f"Bearer {token}"}
        web_headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1",
                       "authorization": f"Bearer {token}"}
        direct_headers = {"content-type": "application/grpc", "te": "trailers",
                          "authorization": f"Bearer {director['internal_token']}"}
        get_rpc = "/director.companies.v1.CompaniesService/GetCompany"
        direct_url = f"http://127.0.0.1:{SERVICES['companies']}{get_rpc}"

        print(f"\nDirector ({conns} connections, {seconds} s per run; logs in {log_dir})",
              flush=True)
        if not args.only_lists:
            results.append(measure("REST get by id", "gateway", director_groups, lambda: wrk(
                f"{gateway}/api/companies/{company}", token, seconds, conns, None)))
        list_url = f"{gateway}/api/companies?limit=100"
        results.append(measure("REST list 100", "gateway", director_groups, lambda: wrk(
            list_url, token, seconds, conns, None)))
        # The same list compressed (issue 21): the gateway's extra CPU per request, and the
        # bytes on the wire of one answer.
        for encoding in ("gzip", "br"):
            size, sent_as = wire_bytes(list_url, token, encoding)
            plain, _ = wire_bytes(list_url, token, None)
            print(f"  list 100 with Accept-Encoding: {encoding}: {size:,} bytes ({sent_as}), "
                  f"{plain:,} uncompressed", flush=True)
            results.append(measure(f"REST list 100, {encoding}", "gateway", director_groups,
                                   lambda: wrk(list_url, token, seconds, conns, None,
                                               {"Accept-Encoding": encoding})))
        if args.only_lists:
            return
        results.append(measure("gRPC get", "gateway", director_groups, lambda: h2load(
            f"{gateway}{get_rpc}", grpc_headers, get_message, seconds, conns)))
        results.append(measure("gRPC get", "companies direct", [companies, pg], lambda: h2load(
            direct_url, direct_headers, get_message, seconds, conns)))
        results.append(measure("gRPC-Web get", "gateway", director_groups, lambda: h2load(
            f"{gateway}{get_rpc}", web_headers, get_message, seconds, conns, http1=True)))
        results.append(measure("gRPC get, 1 connection", "gateway", director_groups,
                               lambda: h2load(f"{gateway}{get_rpc}", grpc_headers, get_message,
                                              seconds, 1)))
        results.append(measure("gRPC get, 1 connection", "companies direct", [companies, pg],
                               lambda: h2load(direct_url, direct_headers, get_message,
                                              seconds, 1)))
        # Writes last: the rows they add and the vacuum they cause would weigh on the reads.
        driver = http_json("POST", f"{gateway}/api/drivers", token,
                           {"name": "Bench Driver", "email": "driver@example.com"})["id"]
        tasks = [http_json("POST", f"{gateway}/api/tasks", token,
                           {"company_id": company, "title": f"Bench collection {n}",
                            "scheduled_for": "2026-12-02"})["id"] for n in range(200)]
        assign = assign_script(log_dir, driver, tasks)
        dispatch = Group("dispatch", lambda: [stack.processes["dispatch"].pid])
        integrations = Group("integrations", lambda: [stack.processes["integrations"].pid])
        # Assigning a pending or assigned task (one of 200, at random) is a transition: a
        # versioned update, a task event, and the relay to Integrations it queues.
        results.append(measure("REST task assign", "gateway", [gw, dispatch, integrations, pg],
                               lambda: wrk(f"{gateway}/api/tasks", token, seconds,
                                           conns, assign)))
        results.append(measure("REST create", "gateway", director_groups, lambda: wrk(
            f"{gateway}/api/companies", token, seconds, conns, script)))
        rss = sum(rss_kib(p.pid) for name, p in stack.processes.items() if name != "reference")
        each = ", ".join(f"{name} {rss_kib(p.pid) / 1024:.1f}"
                         for name, p in stack.processes.items() if name != "reference")
        print(f"  resident memory of the Director stack: {rss / 1024:.1f} MiB ({each})")

        settle(args.database_server, bench_databases)
        results.append(measure_director_up(stack, director, token, company, args))
        settle(args.database_server, bench_databases)

        if peer:
            reference = Group("reference", lambda: [peer.pid] + children(peer.pid))
            peer_url = f"http://127.0.0.1:{PEER_PORT}"
            peer_token = hs256_token(jwt_secret, USER, None)
            peer_company = seed_companies(peer_url, peer_token, 100)
            settle(args.database_server, ["fastapi_ref_bench"])
            print(f"\nReference API ({conns} connections, {seconds} s per run)", flush=True)
            results.append(measure("REST get by id", "reference", [reference, pg], lambda: wrk(
                f"{peer_url}/api/companies/{peer_company}", peer_token, seconds, conns, None)))
            results.append(measure("REST list 100", "reference", [reference, pg], lambda: wrk(
                f"{peer_url}/api/companies?limit=100", peer_token, seconds, conns, None)))
            results.append(measure("REST create", "reference", [reference, pg], lambda: wrk(
                f"{peer_url}/api/companies", peer_token, seconds, conns, script)))
        print_ratios(results, director["up_rss_kib"])
        if args.json:
            args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))
    finally:
        stack.stop()


def measure_director_up(stack: Stack, director: dict, token: str, company: str, args) -> Result:
    """The same REST read against `director up`: every service and the gateway in one
    process, as a developer runs it; reports that process' CPU and resident memory."""
    for name in ("gateway", *SERVICES):
        process = stack.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    release = Path(director["env"].get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    # One process for everything: Tokio's default of one worker per core.
    env = {name: value for name, value in director["env"].items()
           if name != "TOKIO_WORKER_THREADS"}
    up = stack.start("director-up", [str(release / "director"), "up"],
                     dict(env, ADMIN_ADDR=f"127.0.0.1:{ADMIN_PORT}"))
    wait_http(f"http://127.0.0.1:{GATEWAY_PORT}/api/health/ready")
    print(f"\ndirector up (one process; {args.connections} connections, {args.seconds} s)",
          flush=True)
    group = Group("director up", lambda: [up.pid])
    result = measure("REST get by id", "director up", [group, Group("postgres", postgres_pids)],
                     lambda: wrk(f"http://127.0.0.1:{GATEWAY_PORT}/api/companies/{company}",
                                 token, args.seconds, args.connections, None))
    director["up_rss_kib"] = rss_kib(up.pid)
    print(f"  resident memory of director up under load: {director['up_rss_kib'] / 1024:.1f} MiB")
    return result


def print_ratios(results: list[Result], up_rss_kib: int):
    by_key = {(r.workload, r.target): r for r in results}
    lines = []

    def ratio(label, numerator, denominator, key, goal, higher_is_better=True):
        a, b = by_key.get(numerator), by_key.get(denominator)
        if not a or not b:
            return
        value = getattr(a, key) / max(getattr(b, key), 1e-9)
        met = value >= goal if higher_is_better else value <= goal
        lines.append(f"  {label:<58} {value:6.2f}×  (goal {'≥' if higher_is_better else '≤'}"
                     f" {goal}×) {'met' if met else 'NOT MET'}")

    for workload, goal in (("REST get by id", 10), ("REST list 100", 5), ("REST create", 5)):
        ratio(f"{workload}: req/s, Director / reference", (workload, "gateway"),
              (workload, "reference"), "requests_per_second", goal)
    ratio("REST get by id: p99, Director / reference", ("REST get by id", "gateway"),
          ("REST get by id", "reference"), "p99_ms", 0.2, higher_is_better=False)
    ratio("gRPC 1 connection: p50, through the gateway / direct",
          ("gRPC get, 1 connection", "gateway"), ("gRPC get, 1 connection", "companies direct"),
          "p50_ms", 1.25, higher_is_better=False)
    ratio("gRPC 32 connections: req/s, through the gateway / direct", ("gRPC get", "gateway"),
          ("gRPC get", "companies direct"), "requests_per_second", 0.75)
    ratio("gRPC-Web / native gRPC through the gateway: req/s", ("gRPC-Web get", "gateway"),
          ("gRPC get", "gateway"), "requests_per_second", 0.95)
    mib = up_rss_kib / 1024
    lines.append(f"  {'resident memory of director up under load':<58} {mib:6.1f} MiB (goal ≤ 64 MiB) "
                 f"{'met' if mib <= 64 else 'NOT MET'}")
    print("\nGoals\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
