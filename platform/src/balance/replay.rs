//! A request body that can be sent again.
//!
//! A call is retried on another replica only with the request it had, and a request body is
//! a stream read once. [`Replay`] keeps what the first attempt read (at most
//! [`REPLAY_LIMIT_BYTES`], gRPC's own retry buffer size) and gives the next attempt those
//! frames again, then the rest of the original body. A body larger than the limit is not
//! retried (what was read is dropped then). Only the newest attempt may read: an older one
//! still held by its failed connection reads an error.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Frame;
use tonic::Status;
use tonic::body::Body;

/// The most a request may hold and still be sent again.
pub const REPLAY_LIMIT_BYTES: usize = 256 * 1024;

/// A body shared by the attempts of one call.
#[derive(Debug, Clone)]
pub struct Replay {
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug)]
struct Shared {
    original: Body,
    kept: Vec<Frame<Bytes>>,
    kept_bytes: usize,
    too_large: bool,
    attempt: u64,
}

impl Replay {
    /// Keeps `body` for the attempts of its call.
    pub fn new(body: Body) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                original: body,
                kept: Vec::new(),
                kept_bytes: 0,
                too_large: false,
                attempt: 0,
            })),
        }
    }

    /// The body of the next attempt.
    pub fn attempt(&self) -> Body {
        let attempt = match self.shared.lock() {
            Ok(mut shared) => {
                shared.attempt += 1;
                shared.attempt
            }
            Err(_) => 0,
        };
        Body::new(AttemptBody {
            shared: Arc::clone(&self.shared),
            attempt,
            position: 0,
        })
    }

    /// Whether another attempt would send the whole request.
    pub fn can_replay(&self) -> bool {
        self.shared.lock().is_ok_and(|shared| !shared.too_large)
    }
}

fn copy(frame: &Frame<Bytes>) -> Option<Frame<Bytes>> {
    if let Some(data) = frame.data_ref() {
        Some(Frame::data(data.clone()))
    } else {
        frame
            .trailers_ref()
            .map(|trailers| Frame::trailers(trailers.clone()))
    }
}

/// One attempt's view of the shared body.
struct AttemptBody {
    shared: Arc<Mutex<Shared>>,
    attempt: u64,
    position: usize,
}

impl http_body::Body for AttemptBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let Ok(mut shared) = this.shared.lock() else {
            return Poll::Ready(Some(Err(Status::internal("a request body was poisoned"))));
        };
        if shared.attempt != this.attempt {
            return Poll::Ready(Some(Err(Status::cancelled(
                "the call was sent again on another replica",
            ))));
        }
        if let Some(frame) = shared.kept.get(this.position).and_then(copy) {
            this.position += 1;
            return Poll::Ready(Some(Ok(frame)));
        }
        let polled = Pin::new(&mut shared.original).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && !shared.too_large
        {
            let size = frame.data_ref().map_or(0, Bytes::len);
            shared.kept_bytes += size;
            if shared.kept_bytes > REPLAY_LIMIT_BYTES {
                shared.too_large = true;
                shared.kept = Vec::new();
            } else if let Some(kept) = copy(frame) {
                shared.kept.push(kept);
                this.position += 1;
            }
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn read(body: Body) -> Vec<u8> {
        body.collect()
            .await
            .map(|all| all.to_bytes().to_vec())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_second_attempt_reads_what_the_first_read_and_the_rest() {
        let replay = Replay::new(Body::new(http_body_util::Full::new(Bytes::from_static(
            b"\0\0\0\0\x02hi",
        ))));
        let mut first = replay.attempt();
        let frame = first.frame().await;
        assert!(frame.is_some_and(|frame| frame.is_ok()));
        let second = replay.attempt();
        assert!(
            first.frame().await.is_some_and(|frame| frame.is_err()),
            "the older attempt may not read on"
        );
        assert_eq!(read(second).await, b"\0\0\0\0\x02hi");
        assert!(replay.can_replay());
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_not_replayed() {
        let large = Bytes::from(vec![0; REPLAY_LIMIT_BYTES + 1]);
        let replay = Replay::new(Body::new(http_body_util::Full::new(large)));
        assert_eq!(read(replay.attempt()).await.len(), REPLAY_LIMIT_BYTES + 1);
        assert!(!replay.can_replay());
    }
}
