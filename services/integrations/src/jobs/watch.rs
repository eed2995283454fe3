//! `WatchJob`: the job's state each time it changes, until it is finished.
//!
//! A trigger notifies `director_jobs` with the job id on every change; each replica keeps one
//! listening connection ([`director_store::notify`]). A woken watcher re-reads the row and
//! sends it when it differs from the last one sent, so a lost notification only delays an
//! update until the next one or `POLL_INTERVAL`.

use std::time::Duration;

use super::message::{NOT_FOUND, job_message};
use super::store::{JobRow, JobStore};
use crate::domain::JobId;
use crate::error::IntegrationsError;
use director_platform::identity::Caller;
use director_proto::integrations::WatchJobResponse;
use director_store::notify::Notifications;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// The channel the `jobs_notify_change` trigger notifies.
pub const CHANNEL: &str = "director_jobs";
/// How often a watcher re-reads anyway.
const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Updates queued for one watcher before its reader waits for the client.
const STREAM_BUFFER: usize = 16;

/// The replica's job watchers.
#[derive(Debug, Clone)]
pub struct JobWatch {
    store: JobStore,
    notifications: Notifications,
    shutdown: CancellationToken,
}

impl JobWatch {
    pub fn new(store: JobStore, notifications: Notifications, shutdown: CancellationToken) -> Self {
        Self {
            store,
            notifications,
            shutdown,
        }
    }

    /// The job now, then after each change, ending after it is finished. NOT_FOUND when the
    /// caller's tenant has no such job.
    pub async fn watch(
        &self,
        caller: Caller,
        id: JobId,
    ) -> Result<ReceiverStream<Result<WatchJobResponse, Status>>, Status> {
        // Subscribed before the first read, so a change in between is not missed.
        let wake = self.notifications.subscribe();
        let first = self
            .store
            .get(&caller, id)
            .await
            .map_err(IntegrationsError::from)?
            .ok_or(IntegrationsError::NotFound(NOT_FOUND))?;
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        let watcher = Watcher {
            store: self.store.clone(),
            caller,
            id,
            wake,
            sender,
            shutdown: self.shutdown.clone(),
        };
        tokio::spawn(watcher.run(first));
        Ok(ReceiverStream::new(receiver))
    }
}

struct Watcher {
    store: JobStore,
    caller: Caller,
    id: JobId,
    wake: broadcast::Receiver<director_store::notify::Wake>,
    sender: mpsc::Sender<Result<WatchJobResponse, Status>>,
    shutdown: CancellationToken,
}

impl Watcher {
    async fn run(mut self, first: JobRow) {
        let mut last = first;
        if !self.send(&last).await || last.is_finished() {
            return;
        }
        let key = self.id.to_string();
        loop {
            if !self.wait(&key).await {
                return;
            }
            let row = match self.store.get(&self.caller, self.id).await {
                Ok(Some(row)) => row,
                Ok(None) => return,
                Err(error) => {
                    let _ = self
                        .sender
                        .send(Err(IntegrationsError::from(error).into()))
                        .await;
                    return;
                }
            };
            if row.updated_at != last.updated_at || row.status != last.status {
                if !self.send(&row).await {
                    return;
                }
                last = row;
            }
            if last.is_finished() {
                return;
            }
        }
    }

    async fn send(&self, row: &JobRow) -> bool {
        let message = WatchJobResponse {
            job: Some(job_message(row.clone())),
        };
        self.sender.send(Ok(message)).await.is_ok()
    }

    /// Waits for a reason to re-read; `false` when the stream should end.
    async fn wait(&mut self, key: &str) -> bool {
        let poll = tokio::time::sleep(POLL_INTERVAL);
        tokio::pin!(poll);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return false,
                () = self.sender.closed() => return false,
                () = &mut poll => return true,
                woken = self.wake.recv() => match woken {
                    Ok(wake) if !wake.concerns(key) => {}
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => return true,
                    Err(broadcast::error::RecvError::Closed) => return false,
                },
            }
        }
    }
}
