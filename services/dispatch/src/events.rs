//! Live task events for `WatchTasks`.
//!
//! The `task_events` table is the source of truth: a trigger appends one row per task change
//! in the change's own transaction, with ids increasing in commit order within a tenant, and
//! sends `NOTIFY director_task_events, '<tenant>'` on commit. Each Dispatch replica keeps one
//! `LISTEN` connection ([`director_store::notify`]).
//!
//! Watching costs the database per tenant, not per watcher:
//!
//! - **One reader per tenant per process** (the `hub` module). The first watcher of a
//!   tenant starts its hub; woken by the tenant's notifications, the hub reads the new events
//!   once (one statement, in a scope of that tenant only) and fans them out in memory to
//!   every watcher of the tenant; the last watcher to leave stops it. A lost notification
//!   only delays events until the next one or the hub's [`POLL_INTERVAL`].
//! - **Filtering in memory.** The hub's read carries, for each event, the `user_id` of the
//!   live driver its task is assigned to; a driver's watcher forwards only the events whose
//!   driver is them, exactly what the tenant-wide filter by driver used to select per
//!   watcher.
//! - **Replays read only what the caller may see** ([`store::replay`]), through an index
//!   that serves it: a client resuming with `after_event_id` (SSE `Last-Event-ID`) first
//!   reads the events between its id and the point where its hub took it on, then follows
//!   the hub. A driver replaying from 0 reads their own events, not the tenant's history.
//! - **A watcher that falls behind catches up; it never loses events silently.** The hub's
//!   channel holds [`CAPACITY`] events; a watcher whose client reads slower than events
//!   come (or one still replaying a long history) is told it lagged and replays what it
//!   missed from the table, from its last event id up to the hub's, then follows again. This
//!   rather than ending the stream: a slow client — typically a browser tab on a bad
//!   network, or one caught by a bulk import of thousands of tasks — would otherwise be cut
//!   off exactly when it most needs to catch up, reconnect, and replay the same events
//!   anyway, through the gateway and with a new stream; the replay here is the same indexed
//!   read without the round trip. A lagging watcher costs the hub nothing (the channel is
//!   one ring, overwritten, whoever lags), and its replays go no faster than its client
//!   reads, a page of `BATCH` (500) events per statement. Each catch-up is counted in
//!   `director_task_watch_catch_ups_total`.
//!
//! Every stream sends each event it may see once, in id order: a watcher remembers the last
//! id it has passed (seen or not), and skips anything at or before it.

mod hub;
pub mod store;

use std::sync::Arc;

use director_platform::identity::Caller;
use director_proto::dispatch::WatchTasksResponse;
use director_store::notify::Notifications;
use director_store::tenant::TenantDb;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::error::DispatchError;
use crate::scope::driver_user;
use hub::{BATCH, Hubs, Membership, Subscription};

pub use hub::{CAPACITY, POLL_INTERVAL};

/// The channel the `tasks_record_event` trigger notifies.
const CHANNEL: &str = "director_task_events";
/// Messages queued for one stream before its watcher waits for the client.
const STREAM_BUFFER: usize = 64;

/// What `WatchTasks` answers with.
pub type WatchStream = ReceiverStream<Result<WatchTasksResponse, Status>>;

/// The replica's task events: one LISTEN connection, a hub per watched tenant, any number of
/// watchers.
#[derive(Debug, Clone)]
pub struct TaskEvents {
    db: TenantDb,
    hubs: Arc<Hubs>,
    shutdown: CancellationToken,
}

impl TaskEvents {
    /// Starts listening for notifications on a connection of `listen` — a pool with sessions
    /// of their own, never pgbouncer in transaction mode (see "Sessions" in
    /// [`director_store::db`]) — in the background, reconnecting as needed, until
    /// `shutdown`, which also ends every watch stream. Events are read through `db`.
    pub fn start(db: TenantDb, listen: sqlx::PgPool, shutdown: CancellationToken) -> Self {
        let notifications = Notifications::start(listen, CHANNEL, shutdown.clone());
        Self {
            hubs: Arc::new(Hubs::new(db.clone(), notifications, shutdown.clone())),
            db,
            shutdown,
        }
    }

    /// The events of `caller`'s tenant after `after` (or from now), then live ones, until the
    /// client goes away or the service shuts down. A driver receives only events of tasks
    /// assigned to them.
    pub async fn watch(&self, caller: Caller, after: Option<i64>) -> Result<WatchStream, Status> {
        let membership = self.hubs.join(&caller.tenant_id);
        let Subscription { events, through } = membership.subscribe().await?;
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        let watcher = Watcher {
            db: self.db.clone(),
            // From now: where the hub stands (events it has not read yet are still to come).
            last: after.unwrap_or(through),
            hub_through: through,
            caller,
            membership,
            events,
            sender,
            shutdown: self.shutdown.clone(),
        };
        tokio::spawn(watcher.run());
        Ok(ReceiverStream::new(receiver))
    }

    /// How many tenants have watchers in this process (each has one hub).
    pub fn watched_tenants(&self) -> usize {
        self.hubs.len()
    }
}

/// One watch stream: replays from the table while behind its hub, then forwards what the
/// hub publishes that its caller may see.
struct Watcher {
    db: TenantDb,
    caller: Caller,
    /// The id of the last event passed on this stream, sent or not the caller's to see.
    last: i64,
    /// Where the hub stood when this watcher subscribed.
    hub_through: i64,
    membership: Membership,
    events: tokio::sync::broadcast::Receiver<Arc<store::Event>>,
    sender: mpsc::Sender<Result<WatchTasksResponse, Status>>,
    shutdown: CancellationToken,
}

impl Watcher {
    async fn run(mut self) {
        // Behind from the start when resuming from an id the hub has passed; after that,
        // only when the hub's channel says events were lost.
        let mut behind = Some(self.hub_through);
        loop {
            if let Some(through) = behind {
                match self.catch_up(through).await {
                    Ok(true) => behind = None,
                    Ok(false) => return,
                    Err(error) => {
                        self.send(Err(DispatchError::from(error).into())).await;
                        return;
                    }
                }
            }
            let received = tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = self.sender.closed() => return,
                received = self.events.recv() => received,
            };
            match received {
                Ok(event) => {
                    if event.id <= self.last {
                        continue;
                    }
                    self.last = event.id;
                    if event.visible_to(driver_user(&self.caller))
                        && !self.send(Ok(event.message.clone())).await
                    {
                        return;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    // Every event lost was published, so is at most where the hub stands now.
                    metrics::counter!("director_task_watch_catch_ups_total").increment(1);
                    behind = Some(self.membership.through());
                }
                Err(RecvError::Closed) => {
                    // The hub ended: at shutdown the stream ends cleanly, after a failed
                    // read with its error.
                    if self.membership.failed() {
                        self.send(Err(self.membership.ended())).await;
                    }
                    return;
                }
            }
        }
    }

    /// Sends, from the table, the events the caller may see after `last` up to `through`;
    /// `false` when the stream should end.
    async fn catch_up(&mut self, through: i64) -> Result<bool, sqlx::Error> {
        while self.last < through {
            let batch = tokio::select! {
                () = self.shutdown.cancelled() => return Ok(false),
                batch = store::replay(&self.db, &self.caller, self.last, through, BATCH) => batch?,
            };
            let full = batch.len() as i64 == BATCH;
            for event in batch {
                self.last = event.id;
                if !self.send(Ok(event.message)).await {
                    return Ok(false);
                }
            }
            if !full {
                self.last = through;
            }
        }
        Ok(true)
    }

    /// Queues `item` for the client, waiting while its buffer is full; `false` when the
    /// client has gone or the service is shutting down.
    async fn send(&self, item: Result<WatchTasksResponse, Status>) -> bool {
        tokio::select! {
            () = self.shutdown.cancelled() => false,
            sent = self.sender.send(item) => sent.is_ok(),
        }
    }
}
