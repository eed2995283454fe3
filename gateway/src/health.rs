//! Liveness and readiness.
//!
//! `/api/health` answers from the gateway alone (a process that can answer is alive).
//! `/api/health/ready` asks every upstream's `grpc.health.v1.Health/Check` (overall status,
//! service `""`) concurrently with a short deadline. A Director service reports NOT_SERVING
//! exactly when its database does not answer, so the answer doubles as the reference's
//! `"database": "connected"` check.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::upstream::{UpstreamChannel, Upstreams};

/// The liveness answer, as in the reference.
pub fn liveness() -> serde_json::Value {
    serde_json::json!({"status": "healthy", "service": "integration-director"})
}

/// What one upstream said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamState {
    /// SERVING: the service and its database answer.
    Serving,
    /// NOT_SERVING (or UNKNOWN): the service answers but its database does not.
    NotServing,
    /// No answer within the deadline, or no health service.
    Unreachable,
}

/// One upstream in the readiness body.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamHealth {
    /// The service's state.
    pub status: UpstreamState,
    /// `connected`, `disconnected`, or `unknown` when the service did not answer.
    pub database: &'static str,
}

/// The readiness body.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    /// `ok` when every upstream is serving, `degraded` when some are (the gateway serves;
    /// the routes of the others answer 503), `unavailable` when none is.
    pub status: &'static str,
    /// Each upstream by the protobuf package it serves.
    pub services: BTreeMap<String, UpstreamHealth>,
}

impl Readiness {
    /// Whether the gateway can serve: at least one upstream is serving. One absent service
    /// must not take the whole API out of its load balancer; its own routes answer 503.
    pub fn is_ready(&self) -> bool {
        self.status != "unavailable"
    }
}

/// Checks every upstream concurrently; each check is limited to `deadline`.
pub async fn readiness(upstreams: &Upstreams, deadline: Duration) -> Readiness {
    let checks = upstreams.packages().map(|(package, _)| {
        let channel = upstreams.channel_for_package(package);
        let package = package.to_owned();
        async move {
            let state = match channel {
                Some(channel) => check(channel, deadline).await,
                None => UpstreamState::Unreachable,
            };
            (package, state)
        }
    });
    let services: BTreeMap<String, UpstreamHealth> = join_all(checks)
        .await
        .into_iter()
        .map(|(package, status)| {
            let database = match status {
                UpstreamState::Serving => "connected",
                UpstreamState::NotServing => "disconnected",
                UpstreamState::Unreachable => "unknown",
            };
            (package, UpstreamHealth { status, database })
        })
        .collect();
    let serving = services
        .values()
        .filter(|health| health.status == UpstreamState::Serving)
        .count();
    let status = if serving == services.len() {
        "ok"
    } else if serving > 0 {
        "degraded"
    } else {
        "unavailable"
    };
    Readiness { status, services }
}

async fn check(channel: UpstreamChannel, deadline: Duration) -> UpstreamState {
    let mut client = HealthClient::new(channel);
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(deadline);
    match tokio::time::timeout(deadline, client.check(request)).await {
        Ok(Ok(response)) => match response.into_inner().status() {
            ServingStatus::Serving => UpstreamState::Serving,
            _ => UpstreamState::NotServing,
        },
        Ok(Err(status)) => {
            tracing::debug!(code = ?status.code(), message = status.message(), "upstream health check failed");
            UpstreamState::Unreachable
        }
        Err(_) => UpstreamState::Unreachable,
    }
}
