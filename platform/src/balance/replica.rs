//! One replica of a balanced service: its connection, and whether it is in rotation.
//!
//! A replica leaves the rotation the moment its connection is lost ([`Loss`]: refused,
//! GOAWAY, closed), reported by its own connector and connection ([`super::wire`]) before the
//! calls that failed with it return. It is then probed in the background — a TCP connection
//! to its address, first after [`PROBE_FIRST`], doubling up to [`PROBE_MAX`] — and returns
//! with a fresh channel once it accepts one. Membership is DNS's business
//! ([`crate::discovery`]): a replica the name stops resolving to is dropped and its probing
//! stops.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tonic::transport::{Channel, Endpoint};

use super::wire::{Loss, Watched};

/// The first probe of an ejected replica comes this long after it left.
pub const PROBE_FIRST: Duration = Duration::from_millis(50);
/// Probes of a replica that stays away slow down to one per this long.
pub const PROBE_MAX: Duration = Duration::from_secs(2);

/// Where a replica's connections go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// One resolved address.
    Socket(SocketAddr),
    /// The unresolved name (resolved at each connection): what a name that does not
    /// resolve yet is balanced over, so calls fail fast with its error.
    Name(String, u16),
}

impl Address {
    async fn connect(&self) -> std::io::Result<TcpStream> {
        match self {
            Self::Socket(address) => TcpStream::connect(address).await,
            Self::Name(host, port) => TcpStream::connect((host.as_str(), *port)).await,
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Socket(address) => address.fmt(f),
            Self::Name(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

/// A connection that could not be opened: the call never reached the replica.
#[derive(Debug, thiserror::Error)]
#[error("could not connect to {address}: {source}")]
pub struct ConnectFailed {
    address: String,
    #[source]
    source: std::io::Error,
}

/// One replica.
#[derive(Debug)]
pub struct Replica {
    address: Address,
    endpoint: Endpoint,
    connect_timeout: Duration,
    /// The current channel and its generation: losses reported by the connections of an
    /// older channel are ignored.
    channel: Mutex<(Channel, u64)>,
    generation: AtomicU64,
    ejected: AtomicBool,
    removed: AtomicBool,
    in_flight: AtomicUsize,
    /// How many times the replica has left the rotation.
    departures: watch::Sender<u64>,
}

impl Replica {
    /// A replica at `address`, in rotation, connecting lazily with `endpoint`'s settings.
    pub fn new(address: Address, endpoint: Endpoint, connect_timeout: Duration) -> Arc<Self> {
        Arc::new_cyclic(|weak: &Weak<Self>| {
            let channel = connect_lazy(&endpoint, weak.clone(), &address, 0, connect_timeout);
            Self {
                address,
                endpoint,
                connect_timeout,
                channel: Mutex::new((channel, 0)),
                generation: AtomicU64::new(0),
                ejected: AtomicBool::new(false),
                removed: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
                departures: watch::Sender::new(0),
            }
        })
    }

    /// Where it is.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Whether it is out of rotation.
    pub fn is_ejected(&self) -> bool {
        self.ejected.load(Ordering::Acquire)
    }

    /// Calls sent to it whose answer has not begun yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The channel calls to it use.
    pub fn channel(&self) -> Channel {
        self.channel
            .lock()
            .map(|current| current.0.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().0.clone())
    }

    /// Counts a call as in flight until the guard is dropped.
    pub fn start_call(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// How many times it has left the rotation so far.
    pub fn departures(&self) -> u64 {
        *self.departures.borrow()
    }

    /// Resolves once it has left the rotation more than `seen` times.
    pub async fn departed_since(&self, seen: u64) {
        let mut departures = self.departures.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = departures.wait_for(|now| *now > seen).await;
    }

    /// The name no longer resolves to it: it gets no calls and is no longer probed.
    pub fn remove(&self) {
        self.removed.store(true, Ordering::Release);
    }

    /// The generation of its current channel (see [`Replica::lost`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A connection of channel `generation` was lost: out of rotation, unless that channel
    /// has been replaced since (the replica came back).
    pub fn lost(self: &Arc<Self>, generation: u64, loss: Loss) {
        if generation == self.generation.load(Ordering::Acquire) {
            self.eject(loss);
        }
    }

    /// Takes it out of rotation (once) and starts probing it.
    fn eject(self: &Arc<Self>, loss: Loss) {
        if self.ejected.swap(true, Ordering::AcqRel) {
            return;
        }
        self.departures.send_modify(|count| *count += 1);
        tracing::info!(replica = %self.address, ?loss, "replica out of rotation");
        metrics::counter!("director_upstream_ejections_total").increment(1);
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(Arc::clone(self).probe());
        }
    }

    /// Probes with backoff until it accepts a connection (then it returns with a fresh
    /// channel) or DNS drops it.
    async fn probe(self: Arc<Self>) {
        let mut delay = PROBE_FIRST;
        loop {
            tokio::time::sleep(delay).await;
            if self.removed.load(Ordering::Acquire) {
                return;
            }
            let accepted = tokio::time::timeout(self.connect_timeout, self.address.connect()).await;
            if matches!(accepted, Ok(Ok(_))) {
                self.readmit();
                return;
            }
            delay = (delay * 2).min(PROBE_MAX);
        }
    }

    /// Back in rotation, with a new channel (the old one may hold a stale connect error).
    fn readmit(self: &Arc<Self>) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let channel = connect_lazy(
            &self.endpoint,
            Arc::downgrade(self),
            &self.address,
            generation,
            self.connect_timeout,
        );
        if let Ok(mut current) = self.channel.lock() {
            *current = (channel, generation);
        }
        self.ejected.store(false, Ordering::Release);
        tracing::info!(replica = %self.address, "replica back in rotation");
    }
}

/// A call counted in its replica's in-flight calls.
#[derive(Debug)]
pub struct InFlight(Arc<Replica>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A lazily connecting channel whose connections report their losses to `replica`.
fn connect_lazy(
    endpoint: &Endpoint,
    replica: Weak<Replica>,
    address: &Address,
    generation: u64,
    connect_timeout: Duration,
) -> Channel {
    let address = address.clone();
    let connector = tower::service_fn(move |_: http::Uri| {
        let address = address.clone();
        let replica = replica.clone();
        let connecting: BoxFuture<'static, Result<_, ConnectFailed>> = Box::pin(async move {
            let connected = tokio::time::timeout(connect_timeout, address.connect())
                .await
                .unwrap_or_else(|_| {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "connection timed out",
                    ))
                });
            let report = move |loss| {
                if let Some(replica) = replica.upgrade() {
                    replica.lost(generation, loss);
                }
            };
            match connected {
                Ok(stream) => {
                    // Small gRPC messages should not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    Ok(TokioIo::new(Watched::new(stream, report)))
                }
                Err(source) => {
                    report(Loss::Refused);
                    Err(ConnectFailed {
                        address: address.to_string(),
                        source,
                    })
                }
            }
        });
        connecting
    });
    endpoint.connect_with_connector_lazy(connector)
}

#[cfg(test)]
impl ConnectFailed {
    pub(crate) fn for_test(kind: std::io::ErrorKind) -> Self {
        Self {
            address: "127.0.0.1:1".to_owned(),
            source: kind.into(),
        }
    }
}
