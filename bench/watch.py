#!/usr/bin/env python3
"""What a live board costs: 200 `/api/tasks/watch` streams of one tenant (issue 17, point 4).

Starts the same release stack as bench/run.py (gateway and services as separate processes,
least-privilege login, one Tokio worker each), then for one tenant with and without
`--watchers` SSE streams open:

(a) Dispatch's database statements per task update: `--updates` task updates
    (`PATCH /api/tasks/{id}`, notes: an `updated` event, nothing relayed), one after the
    other, counted from Dispatch's own `db_client_operation_duration_seconds_count` (by
    operation: a `read` is one scoped statement, a `query`/`execute` a transaction of four —
    BEGIN with its settings, the statement, COMMIT) and from PostgreSQL's committed
    transactions on Dispatch's database (`pg_stat_database.xact_commit`, which also counts
    the job queue's polling); plus the CPU of Dispatch and PostgreSQL per update. Every
    watcher must receive every update.
(b) Another tenant's `GET /api/tasks` (its 100 tasks) p50/p99 with wrk while the watched
    tenant's tasks are updated at `--rate` per second: without watchers, then with them.
    Goal: the p50 with watchers within 1.5x of the p50 without.
(c) A driver's replay from event 0 (`Last-Event-ID: 0`) in a tenant of `--history` events
    none of which are theirs: PostgreSQL CPU for `--replays` replays at once.

    python3 bench/watch.py                 # ~3 minutes after the release build
    python3 bench/watch.py --no-build --json watch.json

Figures go in docs/PERFORMANCE.md. Everything shares the machine's cores (the 200 SSE
readers are Python threads), so compare the with/without ratios of one run.
"""

import argparse
import hashlib
import hmac
import http.client
import json
import secrets
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: the stack, tokens, wrk, CPU)

WATCHED = "watch-tenant"
OTHER = "list-tenant"
DRIVER_USER = "bench-driver-ann"


def token(secret: str, sub: str, tenant: str, role: str) -> str:
    """A Supabase-shaped access token for `sub` with `role` in `tenant`, valid two hours."""
    now = int(time.time())
    claims = {"sub": sub, "aud": "authenticated", "role": "authenticated", "iat": now,
              "exp": now + 7200, "app_metadata": {"tenant_id": tenant, "role": role}}
    header = bench.b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = bench.b64url(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{bench.b64url(signature.digest())}"


class Watcher(threading.Thread):
    """One SSE stream of `/api/tasks/watch`, counting the events it receives."""

    def __init__(self, port: int, token: str, last_event_id: str | None = None):
        super().__init__(daemon=True)
        self.port, self.token, self.last_event_id = port, token, last_event_id
        self.connected = threading.Event()
        self.events = 0
        self.last_id = None
        self.error = None
        self.connection = None

    def run(self):
        try:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
            if self.last_event_id is not None:
                headers["Last-Event-ID"] = self.last_event_id
            self.connection.request("GET", "/api/tasks/watch", headers=headers)
            response = self.connection.getresponse()
            if response.status != 200:
                raise RuntimeError(f"watch answered {response.status}: {response.read()[:200]}")
            self.connected.set()
            while True:
                line = response.readline()
                if not line:
                    return
                if line.startswith(b"id:"):
                    self.events += 1
                    self.last_id = line[3:].strip().decode()
        except Exception as error:  # noqa: BLE001 (reported by the caller)
            if not self.connected.is_set() or self.connection is not None:
                self.error = error
            self.connected.set()

    def close(self):
        connection, self.connection = self.connection, None
        if connection is not None:
            sock = getattr(connection, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(2)
                except OSError:
                    pass
            connection.close()


def open_watchers(port: int, tokens: list[str], last_event_id=None) -> list[Watcher]:
    watchers = [Watcher(port, t, last_event_id) for t in tokens]
    for watcher in watchers:
        watcher.start()
    for watcher in watchers:
        if not watcher.connected.wait(30) or watcher.error:
            raise SystemExit(f"a watcher could not connect: {watcher.error}")
    return watchers


def close_watchers(watchers: list[Watcher]):
    for watcher in watchers:
        watcher.close()


class Updater:
    """PATCHes the watched tenant's tasks (notes), round robin, on one keep-alive
    connection."""

    def __init__(self, port: int, token: str, tasks: list[str]):
        self.port, self.token, self.tasks = port, token, tasks
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.count = 0

    def update(self):
        task = self.tasks[self.count % len(self.tasks)]
        self.count += 1
        body = json.dumps({"notes": f"bench update {self.count}"})
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        try:
            self.connection.request("PATCH", f"/api/tasks/{task}", body=body, headers=headers)
            response = self.connection.getresponse()
        except (http.client.HTTPException, ConnectionError):
            # The gateway closes idle keep-alive connections: once more on a new one.
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self.connection.request("PATCH", f"/api/tasks/{task}", body=body, headers=headers)
            response = self.connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"update answered {response.status}")

    def at_rate(self, rate: float, stop: threading.Event):
        """Updates `rate` times per second until `stop`."""
        started = time.time()
        done = 0
        while not stop.is_set():
            due = started + done / rate
            pause = due - time.time()
            if pause > 0:
                stop.wait(pause)
                continue
            self.update()
            done += 1


def dispatch_operations(admin_port: int) -> dict[str, float]:
    """Dispatch's database operations so far, by operation, from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("db_client_operation_duration_seconds_count{"):
            operation = line.split('db_operation_name="')[1].split('"')[0]
            counts[operation] = counts.get(operation, 0) + float(line.rsplit(" ", 1)[1])
    return counts


STATEMENTS = {"read": 1, "query": 4, "execute": 4, "begin": 2}
STATS_DELAY = 11


def xact_commit(server: str, database: str) -> int:
    return int(bench.run(["psql", f"postgres://{server}/postgres?sslmode=disable", "-Atc",
                          f"SELECT xact_commit FROM pg_stat_database "
                          f"WHERE datname = '{database}'"]).strip())


def psql(server: str, database: str, sql: str) -> str:
    return bench.run(["psql", f"postgres://{server}/{database}?sslmode=disable", "-q",
                      "-v", "ON_ERROR_STOP=1", "-Atc", sql])


def per_update(args, updater: Updater, watchers: list[Watcher], dispatch_pid: int,
               gateway_pid: int) -> dict:
    """(a): `args.updates` updates one after the other; what each cost Dispatch."""
    database = "director_bench_dispatch"
    # An idle PostgreSQL backend publishes its counters within PGSTAT_IDLE_INTERVAL (10 s).
    time.sleep(STATS_DELAY)
    operations = dispatch_operations(bench.ADMIN_PORT + 2)
    transactions = xact_commit(args.database_server, database)
    groups = [bench.Group("dispatch", lambda: [dispatch_pid]),
              bench.Group("gateway", lambda: [gateway_pid]),
              bench.Group("postgres", bench.postgres_pids)]
    cpu = {group.name: group.snapshot() for group in groups}
    received = [watcher.events for watcher in watchers]
    for _ in range(args.updates):
        updater.update()
    deadline = time.time() + 30
    while any(w.events - r < args.updates for w, r in zip(watchers, received)):
        if time.time() > deadline:
            short = sum(1 for w, r in zip(watchers, received) if w.events - r < args.updates)
            raise SystemExit(f"{short} watchers did not receive every update")
        time.sleep(0.05)
    extra = sum(w.events - r - args.updates for w, r in zip(watchers, received))
    if extra:
        raise SystemExit(f"watchers received {extra} events more than were written")
    time.sleep(0.5)
    used = {group.name: bench.Group.used(cpu[group.name], group.snapshot()) for group in groups}
    after = dispatch_operations(bench.ADMIN_PORT + 2)
    time.sleep(STATS_DELAY)
    transactions = xact_commit(args.database_server, database) - transactions
    delta = {op: after.get(op, 0) - operations.get(op, 0) for op in after}
    statements = sum(count * STATEMENTS.get(op, 4) for op, count in delta.items())
    result = {
        "watchers": len(watchers),
        "updates": args.updates,
        "operations_per_update": {op: n / args.updates for op, n in delta.items() if n},
        "statements_per_update": statements / args.updates,
        "transactions_per_update": transactions / args.updates,
        "cpu_us_per_update": {name: ticks / bench.CLOCK_TICKS * 1e6 / args.updates
                              for name, ticks in used.items()},
    }
    ops = ", ".join(f"{op} {n:.2f}" for op, n in result["operations_per_update"].items())
    cpu_text = ", ".join(f"{name} {us:.0f}" for name, us in result["cpu_us_per_update"].items())
    print(f"  {len(watchers):>3} watchers: per update {result['statements_per_update']:.2f} "
          f"Dispatch statements ({ops}), {result['transactions_per_update']:.2f} PostgreSQL "
          f"transactions on its database; cpu µs: {cpu_text}", flush=True)
    return result


def list_latency(args, updater: Updater, other_token: str, watchers: list[Watcher]) -> dict:
    """(b): the other tenant's list while the watched tenant's tasks change at `args.rate`."""
    stop = threading.Event()
    updating = threading.Thread(target=updater.at_rate, args=(args.rate, stop), daemon=True)
    received = sum(w.events for w in watchers)
    updates = updater.count
    updating.start()
    try:
        rps, p50, p99, errors = bench.wrk(
            f"http://127.0.0.1:{bench.GATEWAY_PORT}/api/tasks", other_token, args.seconds,
            args.connections, None)
    finally:
        stop.set()
        updating.join()
    updates = updater.count - updates
    time.sleep(1)
    delivered = sum(w.events for w in watchers) - received
    result = {"watchers": len(watchers), "requests_per_second": rps, "p50_ms": p50,
              "p99_ms": p99, "errors": errors, "updates": updates,
              "events_delivered": delivered}
    print(f"  {len(watchers):>3} watchers: other tenant's GET /api/tasks p50 {p50:.2f} ms, "
          f"p99 {p99:.2f} ms, {rps:.0f} req/s{f', ERRORS {errors}' if errors else ''}; "
          f"{updates} updates ({updates / args.seconds:.1f}/s), {delivered} events delivered"
          f" (expected {updates * len(watchers)})", flush=True)
    return result


def replays(args, driver_token: str) -> dict:
    """(c): `args.replays` drivers' streams from event 0 at once; PostgreSQL's CPU."""
    postgres = bench.Group("postgres", bench.postgres_pids)
    before = postgres.snapshot()
    started = time.time()
    watchers = open_watchers(bench.GATEWAY_PORT, [driver_token] * args.replays, "0")
    time.sleep(3)
    close_watchers(watchers)
    cpu_ms = bench.Group.used(before, postgres.snapshot()) / bench.CLOCK_TICKS * 1e3
    seen = sum(w.events for w in watchers)
    print(f"  {args.replays} driver replays from event 0 over {args.history} events of "
          f"others: PostgreSQL CPU {cpu_ms:.0f} ms in {time.time() - started:.1f} s "
          f"({seen} events sent, expected 0)", flush=True)
    return {"replays": args.replays, "history": args.history, "postgres_cpu_ms": cpu_ms,
            "events_sent": seen}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--updates", type=int, default=100,
                        help="updates, one after the other, for statements per update")
    parser.add_argument("--rate", type=float, default=20,
                        help="updates per second of the watched tenant during (b)")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument("--history", type=int, default=60000,
                        help="events of the watched tenant before the replays of (c)")
    parser.add_argument("--replays", type=int, default=20)
    parser.add_argument("--no-build", action="store_true", help="use the existing release build")
    parser.add_argument("--database-server", default="postgres@127.0.0.1:5432",
                        help="user@host:port of the PostgreSQL owner login (trust auth)")
    parser.add_argument("--workers", type=int, default=1,
                        help="Tokio worker threads per Director process")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    args.login_as_owner = False

    if not shutil.which("wrk"):
        bench.run(["apt-get", "install", "-y", "-qq", "wrk"], capture=False)
    secret = secrets.token_hex(32)
    log_dir = Path(tempfile.mkdtemp(prefix="director-watch-bench-"))
    stack = bench.Stack(log_dir)
    results = {}
    try:
        bench.start_director(stack, args, secret)
        gateway = f"http://127.0.0.1:{bench.GATEWAY_PORT}"
        admin = token(secret, "bench-dispatcher", WATCHED, "admin")
        other = token(secret, "bench-other", OTHER, "admin")
        driver_token = token(secret, DRIVER_USER, WATCHED, "driver")
        company = bench.http_json("POST", f"{gateway}/api/companies", admin,
                                  {"name": "Watched Farm"})["id"]
        bench.http_json("POST", f"{gateway}/api/drivers", admin,
                        {"name": "Ann", "user_id": DRIVER_USER})
        tasks = [bench.http_json("POST", f"{gateway}/api/tasks", admin,
                                 {"company_id": company, "title": f"Watched {n}",
                                  "scheduled_for": "2026-12-02"})["id"] for n in range(50)]
        other_company = bench.http_json("POST", f"{gateway}/api/companies", other,
                                        {"name": "Other Farm"})["id"]
        for n in range(100):
            bench.http_json("POST", f"{gateway}/api/tasks", other,
                            {"company_id": other_company, "title": f"Listed {n}",
                             "scheduled_for": "2026-12-02"})
        # The watched tenant's history: events none of which is the driver's.
        psql(args.database_server, "director_bench_dispatch",
             f"INSERT INTO tasks (tenant_id, company_id, title, scheduled_for) "
             f"SELECT '{WATCHED}', '{company}', 'history ' || n, '2026-11-01' "
             f"FROM generate_series(1, {args.history}) n")
        bench.settle(args.database_server, [f"director_bench_{s}" for s in bench.SERVICES])
        dispatch_pid = stack.processes["dispatch"].pid
        gateway_pid = stack.processes["gateway"].pid
        updater = Updater(bench.GATEWAY_PORT, admin, tasks)
        print(f"\nlogs in {log_dir}\n(a) statements per task update", flush=True)
        results["per_update_without"] = per_update(args, updater, [], dispatch_pid, gateway_pid)
        watchers = open_watchers(bench.GATEWAY_PORT, [admin] * args.watchers)
        results["per_update_with"] = per_update(args, updater, watchers, dispatch_pid,
                                                 gateway_pid)
        close_watchers(watchers)
        print("(b) another tenant's list while the watched tenant's tasks change", flush=True)
        time.sleep(1)
        bench.settle(args.database_server, ["director_bench_dispatch"])
        results["list_without"] = list_latency(args, updater, other, [])
        watchers = open_watchers(bench.GATEWAY_PORT, [admin] * args.watchers)
        time.sleep(1)
        results["list_with"] = list_latency(args, updater, other, watchers)
        close_watchers(watchers)
        ratio = results["list_with"]["p50_ms"] / max(results["list_without"]["p50_ms"], 1e-9)
        results["list_p50_ratio"] = ratio
        print(f"  p50 with / without {args.watchers} watchers: {ratio:.2f}x (goal ≤ 1.5x) "
              f"{'met' if ratio <= 1.5 else 'NOT MET'}", flush=True)
        print("(c) drivers replaying from event 0", flush=True)
        time.sleep(1)
        results["replays"] = replays(args, driver_token)
        fan_out = (results["per_update_with"]["statements_per_update"]
                   - results["per_update_without"]["statements_per_update"])
        results["fan_out_statements_per_update"] = fan_out
        print(f"\nfan-out to {args.watchers} watchers: {fan_out:.2f} statements per update "
              f"(goal ≤ 3) {'met' if fan_out <= 3 else 'NOT MET'}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
