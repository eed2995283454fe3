//! The fake Vessey API: drivers and collections behind a bearer API key, with magic driver ids
//! that misbehave on purpose (see the crate documentation).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::server::{
    FakeServer, RetryAfter, error_json, rate_limited, redirect, sleep_unless_shutdown,
};
use crate::vessey_data::{Collection, Driver, VesseyData};

/// The API key the fake accepts unless told otherwise.
pub const DEFAULT_VESSEY_API_KEY: &str = "fake-vessey-key";

/// How long `GET /drivers/slow` takes: longer than Director's 10 s per-call timeout.
pub const SLOW_DRIVER_DELAY: Duration = Duration::from_secs(15);

/// A fake Vessey to start: which key it accepts and what data it serves.
#[derive(Debug, Clone)]
pub struct FakeVessey {
    api_key: String,
    data: VesseyData,
}

impl Default for FakeVessey {
    fn default() -> Self {
        Self::sample()
    }
}

impl FakeVessey {
    /// The built-in sample data, key [`DEFAULT_VESSEY_API_KEY`].
    pub fn sample() -> Self {
        Self {
            api_key: DEFAULT_VESSEY_API_KEY.to_owned(),
            data: VesseyData::sample(),
        }
    }

    /// Serves `data` instead (e.g. [`VesseyData::generated`] for a benchmark).
    pub fn with_data(mut self, data: VesseyData) -> Self {
        self.data = data;
        self
    }

    /// Accepts `api_key` instead of the default one.
    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = api_key.into();
        self
    }

    /// The key requests must carry as `Authorization: Bearer <key>`.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// The data served.
    pub fn data(&self) -> &VesseyData {
        &self.data
    }

    /// Serves on `listener` until the handle is dropped or shut down. [`FakeServer::url`] is
    /// the `VESSEY_API_URL`.
    pub fn start(self, listener: TcpListener) -> std::io::Result<FakeServer> {
        let shutdown = CancellationToken::new();
        let addr = listener.local_addr()?;
        let state = Arc::new(VesseyState {
            fake: self,
            addr,
            flaky_calls: AtomicU32::new(0),
            rate_limited_calls: AtomicU32::new(0),
            shutdown: shutdown.clone(),
        });
        let routes = Router::new()
            .route("/drivers", get(list_drivers))
            .route("/drivers/{id}", get(one_driver))
            .route("/collections", get(list_collections))
            .fallback(|| async { error_json(StatusCode::NOT_FOUND, "no such route") })
            .with_state(state);
        FakeServer::spawn("vessey", listener, "", routes, shutdown)
    }

    /// Binds `addr` (port 0 for any) and serves there.
    pub async fn start_on(self, addr: SocketAddr) -> std::io::Result<FakeServer> {
        self.start(TcpListener::bind(addr).await?)
    }
}

#[derive(Debug)]
struct VesseyState {
    fake: FakeVessey,
    addr: SocketAddr,
    flaky_calls: AtomicU32,
    rate_limited_calls: AtomicU32,
    shutdown: CancellationToken,
}

impl VesseyState {
    /// `None` when the bearer key matches, else the 401 to answer.
    fn refuse_unless_authorized(&self, headers: &HeaderMap) -> Option<Response> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        (presented != Some(self.fake.api_key.as_str()))
            .then(|| error_json(StatusCode::UNAUTHORIZED, "invalid or missing API key"))
    }
}

/// `GET /drivers`, serialized straight from the page (no intermediate JSON value).
#[derive(Debug, Serialize)]
struct DriversBody<'a> {
    drivers: &'a [Driver],
    next_page: Option<u32>,
}

/// `GET /collections`.
#[derive(Debug, Serialize)]
struct CollectionsBody<'a> {
    collections: &'a [Collection],
    next_page: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    page: Option<String>,
    date: Option<String>,
}

/// Pages start at 1; an absent page is page 1. `None` for anything else.
fn page_number(raw: Option<&str>) -> Option<u32> {
    match raw {
        None => Some(1),
        Some(raw) => raw.parse::<u32>().ok().filter(|page| *page >= 1),
    }
}

fn bad_page() -> Response {
    error_json(StatusCode::BAD_REQUEST, "page must be a positive integer")
}

async fn list_drivers(
    State(state): State<Arc<VesseyState>>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    if let Some(refusal) = state.refuse_unless_authorized(&headers) {
        return refusal;
    }
    let Some(page) = page_number(query.page.as_deref()) else {
        return bad_page();
    };
    let page = state.fake.data.drivers_page(page);
    axum::Json(DriversBody {
        drivers: &page.items,
        next_page: page.next_page,
    })
    .into_response()
}

async fn one_driver(
    State(state): State<Arc<VesseyState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(refusal) = state.refuse_unless_authorized(&headers) {
        return refusal;
    }
    match id.as_str() {
        "flaky" => {
            if state.flaky_calls.fetch_add(1, Ordering::SeqCst) < 2 {
                return error_json(StatusCode::SERVICE_UNAVAILABLE, "flaky: try again");
            }
            magic_driver(&id).into_response()
        }
        "rate-limited" => {
            if state.rate_limited_calls.fetch_add(1, Ordering::SeqCst) < 1 {
                return rate_limited(RetryAfter::Seconds(1));
            }
            magic_driver(&id).into_response()
        }
        "bad-request" => error_json(StatusCode::BAD_REQUEST, "bad-request: refused on purpose"),
        "redirect" => redirect(&format!("http://127.0.0.2:{}/drivers/1", state.addr.port())),
        "moved" => redirect("/drivers/1"),
        "slow" => {
            if sleep_unless_shutdown(SLOW_DRIVER_DELAY, &state.shutdown).await {
                magic_driver(&id).into_response()
            } else {
                error_json(StatusCode::SERVICE_UNAVAILABLE, "fake shutting down")
            }
        }
        _ => match state.fake.data.driver(&id) {
            Some(driver) => axum::Json(driver).into_response(),
            None => error_json(StatusCode::NOT_FOUND, &format!("driver {id} not found")),
        },
    }
}

/// The record a magic id answers with once it stops misbehaving.
fn magic_driver(id: &str) -> axum::Json<Driver> {
    axum::Json(Driver {
        id: id.to_owned(),
        name: format!("Magic {id}"),
        phone: Some("+1 555 010 0099".to_owned()),
        email: None,
        active: true,
    })
}

async fn list_collections(
    State(state): State<Arc<VesseyState>>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Response {
    if let Some(refusal) = state.refuse_unless_authorized(&headers) {
        return refusal;
    }
    let Some(date) = query
        .date
        .as_deref()
        .and_then(|raw| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok())
    else {
        return error_json(StatusCode::BAD_REQUEST, "date must be YYYY-MM-DD");
    };
    let Some(page) = page_number(query.page.as_deref()) else {
        return bad_page();
    };
    let page = state.fake.data.collections_page(date, page);
    axum::Json(CollectionsBody {
        collections: &page.items,
        next_page: page.next_page,
    })
    .into_response()
}
