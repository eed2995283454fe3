//! LISTEN/NOTIFY fan-out: one listening connection per process, any number of waiters.
//!
//! Services keep their source of truth in tables (an outbox, a jobs table) and use
//! notifications only as wake-ups: a waiter woken re-reads the table. So a lost notification —
//! sent while the listener was reconnecting — costs only latency: on every (re)connection
//! everyone is woken ([`Wake::Everyone`]), and waiters are expected to poll now and then
//! anyway.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Notifications a slow waiter may fall behind by before it is told to re-read everything.
const WAKE_BUFFER: usize = 1024;
/// The first and the longest pause between reconnection attempts.
const RECONNECT_MIN: Duration = Duration::from_millis(250);
const RECONNECT_MAX: Duration = Duration::from_secs(10);

/// A wake-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wake {
    /// A notification arrived with this payload (a tenant id, a job id).
    Key(Arc<str>),
    /// Anything may have happened (the listener (re)connected): every waiter looks.
    Everyone,
}

impl Wake {
    /// Whether a waiter interested in `key` should look.
    pub fn concerns(&self, key: &str) -> bool {
        match self {
            Wake::Key(payload) => payload.as_ref() == key,
            Wake::Everyone => true,
        }
    }
}

/// The fan-out of one channel.
#[derive(Debug, Clone)]
pub struct Notifications {
    wake: broadcast::Sender<Wake>,
}

impl Notifications {
    /// Listens on `channel` in the background (reconnecting with backoff as needed) until
    /// `shutdown`.
    pub fn start(pool: PgPool, channel: &'static str, shutdown: CancellationToken) -> Self {
        let (wake, _) = broadcast::channel(WAKE_BUFFER);
        tokio::spawn(listen(pool, channel, wake.clone(), shutdown));
        Self { wake }
    }

    /// A receiver of every wake-up from now on. Subscribe before reading the table, so
    /// nothing committed in between is missed. A receiver that lags gets
    /// `RecvError::Lagged`, which should be treated like [`Wake::Everyone`].
    pub fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.wake.subscribe()
    }
}

/// Keeps one LISTEN connection and broadcasts what it hears, until `shutdown`.
async fn listen(
    pool: PgPool,
    channel: &'static str,
    wake: broadcast::Sender<Wake>,
    shutdown: CancellationToken,
) {
    let mut backoff = RECONNECT_MIN;
    loop {
        let listener = tokio::select! {
            () = shutdown.cancelled() => return,
            listener = connect(&pool, channel) => listener,
        };
        let mut listener = match listener {
            Ok(listener) => {
                backoff = RECONNECT_MIN;
                listener
            }
            Err(error) => {
                tracing::warn!(%error, channel, retry_in_ms = backoff.as_millis(), "listener cannot connect");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(RECONNECT_MAX);
                continue;
            }
        };
        // Notifications sent while no connection listened are lost: everyone re-reads.
        let _ = wake.send(Wake::Everyone);
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => {
                    let _ = wake.send(Wake::Key(Arc::from(notification.payload())));
                }
                Ok(None) => {
                    tracing::warn!(channel, "listener lost its connection; reconnecting");
                    let _ = wake.send(Wake::Everyone);
                }
                Err(error) => {
                    tracing::warn!(%error, channel, "listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn connect(pool: &PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    Ok(listener)
}
