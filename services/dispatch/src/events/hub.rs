//! Per-tenant hubs: one reader of a tenant's new events per process, however many of its
//! watchers the process serves.
//!
//! A hub exists while its tenant has at least one watcher here. Its reader task wakes on the
//! tenant's notifications (or every [`POLL_INTERVAL`], in case one was lost), reads the
//! events after the last one it read ([`store::follow`], one statement in a tenant scope of
//! that tenant only), and publishes each on a [`broadcast`] channel that every watcher of the
//! tenant receives from. Wake-ups that pile up while it reads are folded into the next read,
//! so a burst of changes costs at most as many reads as there were notifications, usually
//! far fewer, and never more with more watchers.
//!
//! The hub keeps `through`, the id of the last event it has published, and updates it
//! under the same lock as it publishes and as a watcher subscribes. So a watcher that
//! subscribes and reads `through` gets by broadcast every event after `through`, unless it
//! falls more than [`CAPACITY`] events behind; then the channel tells it so
//! (`RecvError::Lagged`), every event it lost has an id at most the `through` it reads next,
//! and it replays them from the table (see `super::Watcher`).
//!
//! The last watcher to leave stops the reader and removes the hub; the next watcher of the
//! tenant starts a new one. A read that fails ends the hub with the error, which each of its
//! watchers ends its stream with (the client resumes with its last event id); a hub ending at
//! shutdown ends its watchers' streams cleanly.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use director_platform::identity::{Caller, Role};
use director_store::notify::{Notifications, Wake};
use director_store::tenant::TenantDb;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use super::store::{self, Event};
use crate::error::DispatchError;

/// Events read per statement; a hub far behind (a bulk import) reads page by page.
pub const BATCH: i64 = 500;
/// Events a watcher may fall behind its hub before it must replay from the table. Shared by
/// the tenant's watchers (the channel is one ring), so it bounds the hub's memory too.
pub const CAPACITY: usize = 4 * BATCH as usize;
/// How often an idle hub reads anyway, in case a notification was lost.
pub const POLL_INTERVAL: Duration = Duration::from_secs(10);
/// The identity a hub reads with: an admin of its tenant (it reads every event; watchers
/// filter).
const SERVICE_USER: &str = "service:dispatch";

/// The hubs of one process, by tenant.
#[derive(Debug)]
pub struct Hubs {
    db: TenantDb,
    notifications: Notifications,
    shutdown: CancellationToken,
    open: Mutex<HashMap<String, Arc<Hub>>>,
}

/// One tenant's hub.
#[derive(Debug)]
pub struct Hub {
    tenant: String,
    shared: Mutex<Shared>,
    /// Becomes `true` once the hub is live or has ended: what a new watcher waits for.
    settled: watch::Sender<bool>,
    /// Stops the reader: the last watcher left, or the service is shutting down.
    stop: CancellationToken,
}

#[derive(Debug)]
struct Shared {
    /// The id of the last event published; `None` until the reader knows where the tenant's
    /// events stand.
    through: Option<i64>,
    /// Where events are published; `None` once the hub has ended.
    events: Option<broadcast::Sender<Arc<Event>>>,
    /// Why the hub ended, if a read failed.
    failure: Option<Status>,
    watchers: usize,
}

/// A watcher's place in its tenant's hub; leaving is dropping it.
#[derive(Debug)]
pub struct Membership {
    hubs: Arc<Hubs>,
    hub: Arc<Hub>,
}

/// What a watcher starts from: every event published after `through` reaches `events`.
#[derive(Debug)]
pub struct Subscription {
    pub events: broadcast::Receiver<Arc<Event>>,
    pub through: i64,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover the data if something ever does.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Hubs {
    pub fn new(db: TenantDb, notifications: Notifications, shutdown: CancellationToken) -> Self {
        Self {
            db,
            notifications,
            shutdown,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Joins `tenant`'s hub, starting it if the tenant has no watcher here yet.
    pub fn join(self: &Arc<Self>, tenant: &str) -> Membership {
        let mut open = locked(&self.open);
        let hub = match open.get(tenant) {
            Some(hub) if !hub.stop.is_cancelled() => Arc::clone(hub),
            _ => {
                let hub = Arc::new(Hub {
                    tenant: tenant.to_owned(),
                    shared: Mutex::new(Shared {
                        through: None,
                        events: Some(broadcast::channel(CAPACITY).0),
                        failure: None,
                        watchers: 0,
                    }),
                    settled: watch::Sender::new(false),
                    stop: self.shutdown.child_token(),
                });
                // Subscribed before the reader looks where the events stand, so nothing
                // committed in between goes unnoticed.
                let wake = self.notifications.subscribe();
                tokio::spawn(Arc::clone(self).read(Arc::clone(&hub), wake));
                open.insert(tenant.to_owned(), Arc::clone(&hub));
                hub
            }
        };
        locked(&hub.shared).watchers += 1;
        Membership {
            hubs: Arc::clone(self),
            hub,
        }
    }

    /// How many tenants have a hub in this process.
    pub fn len(&self) -> usize {
        locked(&self.open).len()
    }

    /// Removes `hub` from the open hubs, if it is still the one there.
    fn forget(open: &mut HashMap<String, Arc<Hub>>, hub: &Arc<Hub>) {
        if open
            .get(&hub.tenant)
            .is_some_and(|current| Arc::ptr_eq(current, hub))
        {
            open.remove(&hub.tenant);
        }
    }

    fn leave(&self, hub: &Arc<Hub>) {
        let mut open = locked(&self.open);
        let mut shared = locked(&hub.shared);
        shared.watchers -= 1;
        if shared.watchers == 0 {
            hub.stop.cancel();
            Self::forget(&mut open, hub);
        }
    }

    /// The hub's reader, from start to end.
    async fn read(self: Arc<Self>, hub: Arc<Hub>, wake: broadcast::Receiver<Wake>) {
        metrics::gauge!("director_task_watch_hubs").increment(1.0);
        let outcome = self.follow(&hub, wake).await;
        Self::forget(&mut locked(&self.open), &hub);
        hub.stop.cancel();
        {
            let mut shared = locked(&hub.shared);
            if let Err(error) = outcome {
                tracing::warn!(%error, tenant = %hub.tenant, "task events: the hub's read failed; its watchers' streams end");
                shared.failure = Some(DispatchError::from(error).into());
            }
            // Dropping the sender closes every receiver once it has what was published.
            shared.events = None;
        }
        hub.settled.send_replace(true);
        metrics::gauge!("director_task_watch_hubs").decrement(1.0);
    }

    /// Reads the tenant's events as they come, until stopped (`Ok`) or a read fails.
    async fn follow(
        &self,
        hub: &Hub,
        mut wake: broadcast::Receiver<Wake>,
    ) -> Result<(), sqlx::Error> {
        let caller = Caller::new(SERVICE_USER, hub.tenant.as_str(), Role::Admin);
        let mut through = tokio::select! {
            () = hub.stop.cancelled() => return Ok(()),
            latest = store::latest_id(&self.db, &caller) => latest?,
        };
        locked(&hub.shared).through = Some(through);
        hub.settled.send_replace(true);
        loop {
            if !woken(&mut wake, &hub.tenant, &hub.stop).await {
                return Ok(());
            }
            loop {
                let batch = tokio::select! {
                    () = hub.stop.cancelled() => return Ok(()),
                    batch = store::follow(&self.db, &caller, through, BATCH) => batch?,
                };
                let full = batch.len() as i64 == BATCH;
                if let Some(last) = batch.last() {
                    through = last.id;
                    hub.publish(batch);
                }
                if !full {
                    break;
                }
            }
        }
    }
}

/// Waits for a reason to read `tenant`'s events: `false` when the hub should stop instead.
/// Wake-ups already queued behind the first are folded into it.
async fn woken(
    wake: &mut broadcast::Receiver<Wake>,
    tenant: &str,
    stop: &CancellationToken,
) -> bool {
    let poll = tokio::time::sleep(POLL_INTERVAL);
    tokio::pin!(poll);
    loop {
        tokio::select! {
            () = stop.cancelled() => return false,
            () = &mut poll => return true,
            received = wake.recv() => match received {
                Ok(wake) if !wake.concerns(tenant) => {}
                Ok(_) | Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return false,
            },
        }
    }
    loop {
        match wake.try_recv() {
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty | TryRecvError::Closed) => return true,
        }
    }
}

impl Hub {
    /// Publishes `batch` (in id order, after `through`) and moves `through` to its last id.
    fn publish(&self, batch: Vec<Event>) {
        let mut shared = locked(&self.shared);
        shared.through = batch.last().map(|event| event.id).or(shared.through);
        if let Some(events) = &shared.events {
            for event in batch {
                // No receiver (every watcher is leaving) is not an error.
                let _ = events.send(Arc::new(event));
            }
        }
    }
}

impl Membership {
    /// Waits for the hub to be live, then subscribes; the hub's failure (or UNAVAILABLE at
    /// shutdown) if it has ended.
    pub async fn subscribe(&self) -> Result<Subscription, Status> {
        let mut settled = self.hub.settled.subscribe();
        // The sender lives in the hub, which this membership holds: it cannot be dropped.
        let _ = settled.wait_for(|settled| *settled).await;
        let shared = locked(&self.hub.shared);
        match (&shared.events, shared.through) {
            (Some(events), Some(through)) => Ok(Subscription {
                events: events.subscribe(),
                through,
            }),
            _ => Err(self.ended()),
        }
    }

    /// The id of the last event the hub has published: a watcher that lagged has lost only
    /// events up to it.
    pub fn through(&self) -> i64 {
        locked(&self.hub.shared).through.unwrap_or(0)
    }

    /// Why the hub ended: its read's failure, or UNAVAILABLE (shutting down).
    pub fn ended(&self) -> Status {
        locked(&self.hub.shared)
            .failure
            .clone()
            .unwrap_or_else(|| Status::unavailable("Dispatch is shutting down; reconnect"))
    }

    /// Whether the hub ended because a read failed (rather than at shutdown).
    pub fn failed(&self) -> bool {
        locked(&self.hub.shared).failure.is_some()
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hubs.leave(&self.hub);
    }
}
