//! The fake Slack incoming webhook: `POST` JSON `{"text", "channel"?}` to any path, answered
//! `200 ok`, or `400 invalid_payload` like Slack does for a body it cannot use.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::FakeServer;

/// The path of the webhook URL the fake hands out; any path is accepted.
pub const WEBHOOK_PATH: &str = "/services/T00000000/B00000000/fakewebhooksecret";

/// A fake Slack webhook to start.
#[derive(Debug, Clone, Default)]
pub struct FakeSlack;

impl FakeSlack {
    /// A fake Slack webhook.
    pub fn new() -> Self {
        Self
    }

    /// Serves on `listener`; [`FakeServer::url`] is the `SLACK_WEBHOOK_URL`.
    pub fn start(self, listener: TcpListener) -> std::io::Result<FakeServer> {
        let routes = Router::new().fallback(webhook);
        FakeServer::spawn(
            "slack",
            listener,
            WEBHOOK_PATH,
            routes,
            CancellationToken::new(),
        )
    }

    /// Binds `addr` (port 0 for any) and serves there.
    pub async fn start_on(self, addr: SocketAddr) -> std::io::Result<FakeServer> {
        self.start(TcpListener::bind(addr).await?)
    }
}

async fn webhook(method: Method, body: Bytes) -> Response {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "invalid_method").into_response();
    }
    let payload: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let has_text = payload
        .as_ref()
        .and_then(|p| p.get("text"))
        .and_then(serde_json::Value::as_str)
        .is_some_and(|text| !text.is_empty());
    let channel_ok = payload
        .as_ref()
        .and_then(|p| p.get("channel"))
        .is_none_or(|channel| channel.is_string() || channel.is_null());
    if has_text && channel_ok {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::BAD_REQUEST, "invalid_payload").into_response()
    }
}
