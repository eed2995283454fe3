//! Server-Sent Events read from a stack's gateway (`/api/tasks/watch`), event by event.

use std::time::Duration;

use serde_json::Value;

use super::TestStack;

/// One Server-Sent Event: its `id:` and its `data:` as JSON.
#[derive(Debug)]
pub struct SseEvent {
    pub id: Option<String>,
    pub data: Value,
}

/// An open SSE response, read event by event.
pub struct SseStream {
    response: reqwest::Response,
    /// What has been read and not yet taken as an event.
    pub buffer: String,
}

impl SseStream {
    pub async fn open(
        app: &TestStack,
        path: &str,
        token: &str,
        last_event_id: Option<&str>,
    ) -> Self {
        let mut request = app
            .http
            .get(app.url(path))
            .bearer_auth(token)
            .header("accept", "text/event-stream")
            .timeout(Duration::from_secs(60));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event with data (comments skipped), or `None` if none arrives within `wait`
    /// or the stream ends.
    pub async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        tokio::time::timeout(wait, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    if let Some(event) = parse_sse(&block) {
                        return Some(event);
                    }
                    continue;
                }
                let chunk = self.response.chunk().await.unwrap()?;
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .ok()
        .flatten()
    }

    /// Whether the stream ends (cleanly) within `wait`.
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, async {
            while let Some(chunk) = self.response.chunk().await.unwrap() {
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .is_ok()
    }
}

fn parse_sse(block: &str) -> Option<SseEvent> {
    let mut id = None;
    let mut data = None;
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("id:") {
            id = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            data = Some(serde_json::from_str(value.trim()).unwrap());
        }
    }
    data.map(|data| SseEvent { id, data })
}
