//! `WatchTasks` served by per-tenant hubs, on a real PostgreSQL through the real gRPC server:
//! every watcher gets every event it may see, in order, exactly once — many watchers of one
//! tenant, drivers (only their tasks), another tenant (nothing), a watcher too slow for its
//! hub (it catches up from the table) — a client resuming with its last event id gets what it
//! missed, a driver's replay reads only their events through an index, and a tenant's hub
//! ends with its last watcher.

#![allow(clippy::unwrap_used)]

use crate::watching;

use std::time::Duration;

use director_dispatch::events::{CAPACITY, TaskEvents, store};
use director_platform::config::Env;
use director_store::db::DatabaseConfig;
use director_store::tenant::{TenantDb, scoped_read_ordered};
use sqlx::PgPool;
use tokio_stream::StreamExt as _;
use tokio_util::sync::CancellationToken;
use watching::{Fixture, admin, assert_quiet, driver_caller, next_ids};

const QUIET: Duration = Duration::from_millis(500);

#[tokio::test]
async fn every_watcher_gets_every_event_it_may_see_in_order_exactly_once() {
    let fixture = Fixture::start().await;
    let ann = fixture.driver("dairy", "ann").await;
    let bob = fixture.driver("dairy", "bob").await;
    let mut client = fixture.client().await;
    let mut admins = Vec::new();
    for _ in 0..10 {
        admins.push(fixture.watch(&mut client, &admin("dairy"), None).await);
    }
    let mut ann_watch = fixture
        .watch(&mut client, &driver_caller("dairy", "ann"), None)
        .await;
    let mut bob_watch = fixture
        .watch(&mut client, &driver_caller("dairy", "bob"), None)
        .await;
    let mut rival = fixture.watch(&mut client, &admin("creamery"), None).await;

    let tasks = fixture.create_tasks("dairy", 3).await;
    fixture.assign("dairy", tasks[0], ann).await;
    fixture.assign("dairy", tasks[1], bob).await;
    fixture.touch("dairy", tasks[0]).await;
    fixture.create_tasks("dairy", 20).await;
    fixture.assign("dairy", tasks[2], ann).await;
    // Reassigned: the event is Bob's from now on, not Ann's.
    fixture.assign("dairy", tasks[0], bob).await;

    let all = fixture.event_ids("dairy", 0, None).await;
    assert_eq!(all.len(), 3 + 2 + 1 + 20 + 2);
    for watcher in &mut admins {
        assert_eq!(next_ids(watcher, all.len()).await, all);
    }
    let anns = fixture.event_ids("dairy", 0, Some(ann)).await;
    let bobs = fixture.event_ids("dairy", 0, Some(bob)).await;
    assert_eq!((anns.len(), bobs.len()), (3, 2), "{anns:?} {bobs:?}");
    assert_eq!(next_ids(&mut ann_watch, anns.len()).await, anns);
    assert_eq!(next_ids(&mut bob_watch, bobs.len()).await, bobs);

    // Nothing twice, nothing else; the other tenant saw none of it, then its own.
    for watcher in admins.iter_mut().chain([&mut ann_watch, &mut bob_watch]) {
        assert_quiet(watcher, QUIET).await;
    }
    assert_quiet(&mut rival, Duration::from_millis(10)).await;
    fixture.create_tasks("creamery", 1).await;
    let theirs = fixture.event_ids("creamery", 0, None).await;
    assert_eq!(next_ids(&mut rival, 1).await, theirs);
    assert_quiet(&mut rival, QUIET).await;
}

#[tokio::test]
async fn a_watcher_that_reconnects_with_its_last_event_id_gets_what_it_missed() {
    let fixture = Fixture::start().await;
    let ann = fixture.driver("dairy", "ann").await;
    let mut client = fixture.client().await;
    let mut watcher = fixture.watch(&mut client, &admin("dairy"), None).await;
    let tasks = fixture.create_tasks("dairy", 2).await;
    let seen = next_ids(&mut watcher, 2).await;
    drop(watcher);

    // While nobody watches (the tenant's hub has ended), more changes.
    fixture.assign("dairy", tasks[0], ann).await;
    fixture.create_tasks("dairy", 3).await;
    fixture.touch("dairy", tasks[1]).await;

    let mut resumed = fixture
        .watch(&mut client, &admin("dairy"), Some(seen[1]))
        .await;
    let missed = fixture.event_ids("dairy", seen[1], None).await;
    assert_eq!(missed.len(), 5);
    assert_eq!(next_ids(&mut resumed, 5).await, missed);
    // Then live, without a gap or a repeat.
    fixture.assign("dairy", tasks[1], ann).await;
    let live = fixture.event_ids("dairy", missed[4], None).await;
    assert_eq!(next_ids(&mut resumed, 1).await, live);
    assert_quiet(&mut resumed, QUIET).await;

    // A driver resuming from the very beginning gets their own events only, while another
    // watcher of the tenant keeps its hub open.
    let mut ann_watch = fixture
        .watch(&mut client, &driver_caller("dairy", "ann"), Some(0))
        .await;
    let anns = fixture.event_ids("dairy", 0, Some(ann)).await;
    assert_eq!(anns.len(), 2);
    assert_eq!(next_ids(&mut ann_watch, 2).await, anns);
    fixture.touch("dairy", tasks[0]).await;
    let anns_live = fixture.event_ids("dairy", anns[1], Some(ann)).await;
    assert_eq!(next_ids(&mut ann_watch, 1).await, anns_live);
    assert_quiet(&mut ann_watch, QUIET).await;
    // The admin got that one too.
    assert_eq!(next_ids(&mut resumed, 1).await, anns_live);
}

/// The value of counter `name` in this process' metrics (0 before it is first counted).
fn counter(name: &str) -> f64 {
    director_platform::metrics::install()
        .render()
        .lines()
        .find(|line| line.starts_with(name))
        .and_then(|line| line.rsplit(' ').next())
        .map_or(0.0, |value| value.parse().unwrap())
}

#[tokio::test]
async fn a_watcher_that_falls_behind_its_hub_catches_up_without_losing_or_repeating_events() {
    director_platform::metrics::install();
    let catch_ups = counter("director_task_watch_catch_ups_total");
    let fixture = Fixture::start().await;
    let mut client = fixture.client().await;
    let mut slow = fixture.watch(&mut client, &admin("dairy"), None).await;
    let mut fast = fixture.watch(&mut client, &admin("dairy"), None).await;
    let count = 2 * CAPACITY + 500;
    let fast_reader = tokio::spawn(async move { next_ids(&mut fast, count).await });

    // Far more events than the hub's channel holds, while the slow client reads nothing:
    // with 2,000 characters of notes each, about 10 MB, more than the connection buffers.
    for _ in 0..3 {
        fixture
            .create_tasks_with_notes("dairy", count / 3, 2000)
            .await;
    }
    let all = fixture.event_ids("dairy", 0, None).await;
    assert_eq!(all.len(), count);
    assert_eq!(fast_reader.await.unwrap(), all);
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(next_ids(&mut slow, count).await, all);
    assert_quiet(&mut slow, QUIET).await;
    assert!(
        counter("director_task_watch_catch_ups_total") > catch_ups,
        "the slow watcher never lagged: the test did not test catching up"
    );
}

/// The `EXPLAIN ANALYZE` lines of `sql` (with `parameters` bound, the tenant last) as
/// Dispatch runs it: one scoped statement, as the services' login role.
async fn explain(pool: &PgPool, sql: &str, parameters: (i64, &str, i64, i64, &str)) -> String {
    let statement = format!(
        "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {}",
        scoped_read_ordered(sql, 5, Some("event_id"))
    );
    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(statement))
        .bind(parameters.0)
        .bind(parameters.1)
        .bind(parameters.2)
        .bind(parameters.3)
        .bind(parameters.4)
        .bind(parameters.1)
        .fetch_all(pool)
        .await
        .unwrap();
    lines.join("\n")
}

/// The index condition of the plan's scan of `task_events`.
fn index_condition(plan: &str) -> &str {
    plan.lines()
        .skip_while(|line| !line.contains("on task_events"))
        .nth(1)
        .filter(|line| line.trim_start().starts_with("Index Cond:"))
        .unwrap_or_else(|| panic!("no index condition on task_events:\n{plan}"))
}

#[tokio::test]
async fn a_drivers_replay_reads_only_their_events_through_an_index() {
    let fixture = Fixture::start().await;
    let ann = fixture.driver("dairy", "ann").await;
    fixture.driver("dairy", "bob").await;
    // A long history Ann has no part in, and a few events of hers within it.
    fixture.create_tasks("dairy", 3000).await;
    let hers = fixture.create_tasks("dairy", 4).await;
    for task in &hers {
        fixture.assign("dairy", *task, ann).await;
    }
    fixture.create_tasks("dairy", 3000).await;
    sqlx::query("ANALYZE task_events")
        .execute(&fixture.pool)
        .await
        .unwrap();

    let policed = PgPool::connect(&fixture.service_login_url()).await.unwrap();
    let plan = explain(
        &policed,
        store::REPLAY_DRIVER,
        (0, "dairy", i64::MAX, 500, "ann"),
    )
    .await;
    let scan = plan
        .lines()
        .find(|line| line.contains("on task_events"))
        .unwrap_or_else(|| panic!("no scan of task_events:\n{plan}"));
    assert!(
        scan.contains("Index Scan using task_events_tenant_driver_idx"),
        "{plan}"
    );
    assert!(
        scan.contains("rows=4 "),
        "read more than Ann's events:\n{plan}"
    );
    assert!(
        index_condition(&plan).contains("driver_id = "),
        "the driver is not in the index condition:\n{plan}"
    );

    // A driver who has no events reads none.
    let plan = explain(
        &policed,
        store::REPLAY_DRIVER,
        (0, "dairy", i64::MAX, 500, "bob"),
    )
    .await;
    let scan = plan
        .lines()
        .find(|line| line.contains("on task_events"))
        .unwrap();
    assert!(
        scan.contains("task_events_tenant_driver_idx") && scan.contains("rows=0 "),
        "{plan}"
    );

    // An admin resuming near the end reads from there, not from the start.
    let last = *fixture.event_ids("dairy", 0, None).await.last().unwrap();
    let plan = explain(
        &policed,
        store::REPLAY_ALL,
        (last - 10, "dairy", i64::MAX, 500, "unused"),
    )
    .await;
    let scan = plan
        .lines()
        .find(|line| line.contains("on task_events"))
        .unwrap();
    assert!(
        scan.contains("Index Scan") && scan.contains("rows=10 "),
        "{plan}"
    );
    assert!(!plan.contains("Rows Removed by Filter"), "{plan}");

    // And through the service: Ann replaying from 0 gets exactly hers.
    let mut client = fixture.client().await;
    let mut ann_watch = fixture
        .watch(
            &mut client,
            &watching::driver_caller("dairy", "ann"),
            Some(0),
        )
        .await;
    let anns = fixture.event_ids("dairy", 0, Some(ann)).await;
    assert_eq!(anns.len(), 4);
    assert_eq!(next_ids(&mut ann_watch, 4).await, anns);
    assert_quiet(&mut ann_watch, QUIET).await;
}

#[tokio::test]
async fn a_tenants_hub_ends_when_its_last_watcher_leaves() {
    let fixture = Fixture::start().await;
    let url = fixture.service_login_url();
    let config = DatabaseConfig::from_env(
        &Env::from_pairs([("DISPATCH_DATABASE_URL", url.as_str())]),
        "dispatch",
    )
    .unwrap();
    let db = TenantDb::new(PgPool::connect(&url).await.unwrap(), config);
    let shutdown = CancellationToken::new();
    let listen = db.pool().clone();
    let events = TaskEvents::start(db, listen, shutdown.clone());

    let mut first = events.watch(admin("dairy"), None).await.unwrap();
    let second = events.watch(admin("dairy"), None).await.unwrap();
    let other = events.watch(admin("creamery"), None).await.unwrap();
    assert_eq!(events.watched_tenants(), 2);

    drop(second);
    fixture.create_tasks("dairy", 1).await;
    let event = tokio::time::timeout(watching::LIVE, first.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(events.watched_tenants(), 2);
    drop(first);
    wait_until(|| events.watched_tenants() == 1).await;
    drop(other);
    wait_until(|| events.watched_tenants() == 0).await;

    // A new watcher starts the tenant's hub again, from where the events stand.
    let mut again = events
        .watch(admin("dairy"), Some(event.event_id.parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(events.watched_tenants(), 1);
    fixture.create_tasks("dairy", 1).await;
    let next = tokio::time::timeout(watching::LIVE, again.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        next.event_id.parse::<i64>().unwrap(),
        event.event_id.parse::<i64>().unwrap() + 1
    );

    // Shutting down ends the streams cleanly, and the hubs with them.
    shutdown.cancel();
    let end = tokio::time::timeout(watching::LIVE, again.next())
        .await
        .unwrap();
    assert!(end.is_none(), "{end:?}");
    wait_until(|| events.watched_tenants() == 0).await;
}

async fn wait_until(condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "not within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
