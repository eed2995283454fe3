//! What watching costs the database: with 200 watchers of one tenant open, one task update
//! costs Dispatch at most 3 statements to fan out (issue 17 measured one transaction per
//! watcher), counted from the platform's own record of every database operation
//! (`db_client_operation_duration_seconds`, by operation). Alone in its test binary: the
//! metrics recorder is the process', and nothing else may touch the database here.

#![allow(clippy::unwrap_used)]

mod watching;

use std::collections::BTreeMap;
use std::time::Duration;

use watching::{Fixture, admin, assert_quiet, driver_caller, next_ids};

const WATCHERS: usize = 200;
/// Streams per connection: several connections, so the count does not depend on one
/// connection's limit of concurrent streams.
const PER_CONNECTION: usize = 50;
/// The fan-out budget of one task update, in statements.
const BUDGET: u64 = 3;

/// Dispatch's database operations so far, by operation (`read`, `query`, `execute`,
/// `begin`).
fn operations() -> BTreeMap<String, u64> {
    let text = director_platform::metrics::install().render();
    let mut counts = BTreeMap::new();
    for line in text.lines() {
        let Some(labels) = line.strip_prefix("db_client_operation_duration_seconds_count{") else {
            continue;
        };
        let operation = labels
            .split("db_operation_name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        *counts.entry(operation).or_default() += value as u64;
    }
    counts
}

/// The statements behind the operations between two snapshots: a `read` is one scoped
/// statement; a `query` or an `execute` is a transaction (`BEGIN` with its settings, the
/// statement, `COMMIT`: four); a `begin` opens a transaction whose statements are not
/// counted, so it counts as over any budget.
fn statements(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> u64 {
    after
        .iter()
        .map(|(operation, count)| {
            let delta = count - before.get(operation).copied().unwrap_or(0);
            delta
                * match operation.as_str() {
                    "read" => 1,
                    "query" | "execute" => 4,
                    _ => 1000,
                }
        })
        .sum()
}

#[tokio::test]
async fn one_task_update_costs_at_most_three_statements_whatever_the_number_of_watchers() {
    director_platform::metrics::install();
    let fixture = Fixture::start().await;
    let ann = fixture.driver("dairy", "ann").await;
    // Only events that relay nothing (an import's `created`, `updated`): a relay job to
    // Integrations,
    // which this test does not run, would be retried in the background and land in the
    // count.
    let tasks = [
        fixture.create_assigned_task("dairy", ann).await,
        fixture.create_tasks("dairy", 1).await[0],
    ];

    // 200 watchers of one tenant: dispatchers, and a driver among every ten.
    let mut streams = Vec::new();
    for connection in 0..WATCHERS / PER_CONNECTION {
        let mut client = fixture.client().await;
        for n in 0..PER_CONNECTION {
            let caller = if n % 10 == 0 {
                driver_caller("dairy", "ann")
            } else {
                admin("dairy")
            };
            let stream = fixture.watch(&mut client, &caller, None).await;
            streams.push((connection * PER_CONNECTION + n, n % 10 == 0, stream));
        }
    }
    // Whatever opening cost has been paid.
    tokio::time::sleep(Duration::from_secs(1)).await;

    for (round, task) in [tasks[0], tasks[1], tasks[0]].into_iter().enumerate() {
        let before = operations();
        let last = *fixture.event_ids("dairy", 0, None).await.last().unwrap();
        fixture.touch("dairy", task).await;
        let event = fixture.event_ids("dairy", last, None).await;
        assert_eq!(event.len(), 1);
        let ann_sees = task == tasks[0];
        for (n, is_driver, stream) in &mut streams {
            if !*is_driver || ann_sees {
                assert_eq!(next_ids(stream, 1).await, event, "watcher {n}");
            }
        }
        // Anything late (a second read, a watcher's own) lands in the count too.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = operations();
        let cost = statements(&before, &after);
        assert!(
            cost <= BUDGET,
            "update {round}: {cost} statements for {WATCHERS} watchers (operations before \
             {before:?}, after {after:?})"
        );
        // The hub's read is counted: the count is not vacuous.
        assert!(
            after.get("read") > before.get("read"),
            "update {round}: no read recorded ({before:?} → {after:?})"
        );
    }
    // Nobody got anything twice, and Ann nothing that is not hers.
    for (_, _, stream) in &mut streams {
        assert_quiet(stream, Duration::from_millis(5)).await;
    }
}
