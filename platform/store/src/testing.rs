//! `spawn_service` for black-box tests of any service (feature `testing`): a fresh, migrated
//! database per test and the real gRPC server on a random port, as the runner starts it.
//!
//! Databases are created and migrated as the test server's user (the owner, normally a
//! superuser); services log in as the least-privilege [`SERVICE_ROLE`] a deployment uses
//! ([`service_url`]), so every service test runs under row-level security and without
//! owner rights.

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod pgbouncer;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::db::{database_url_for, with_login};
use crate::migrate::create_and_migrate;
use crate::roles::{DEV_SERVICE_PASSWORD, SERVICE_ROLE, ensure_service_login};
use crate::runner::{self, Service};
use director_platform::config::Env;
use director_platform::identity::{Caller, InternalTokens};

/// The internal token secret test services verify with.
pub const INTERNAL_SECRET: &str = "test-internal-secret-0123456789abcdef-0123";

/// How long [`eventually`] waits for background work (a job, a delivery) before failing.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `check` every 100 ms until it answers `Some`, or fails the test after [`PATIENCE`]
/// naming `what` it was waiting for.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The PostgreSQL server tests use: `DATABASE_URL`, default the local one.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| crate::db::DEFAULT_DATABASE_URL.into())
}

/// A new database, named after `service`, with that service's migrations applied and the
/// services' login role set up, as `director migrate` leaves it. Answers the owner's URL
/// (for a test's own inspection); services connect with [`service_url`] of it.
pub async fn fresh_database(service: &str) -> String {
    let name = format!("test_{service}_{}", uuid::Uuid::new_v4().simple());
    let url = database_url_for(&server_url(), &name).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    create_and_migrate(&url, &root, service).await.unwrap();
    ensure_service_login(&url, &service_url(&url))
        .await
        .unwrap();
    url
}

/// `owner_url` logging in as the services' least-privilege role instead (what
/// `director up` derives too).
pub fn service_url(owner_url: &str) -> String {
    with_login(owner_url, SERVICE_ROLE, DEV_SERVICE_PASSWORD).unwrap()
}

/// A service running for one test.
#[derive(Debug)]
pub struct TestService {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its database, as the owner (bypassing row-level security): for a test's own
    /// inspection. The service itself logs in with [`service_url`] of it.
    pub database_url: String,
    /// Mints tokens it accepts.
    pub tokens: InternalTokens,
    /// Cancel to stop it.
    pub shutdown: CancellationToken,
    /// The server task; resolves when it has stopped.
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts `service` on a fresh database; `extra` settings are added (and win).
pub async fn spawn_service(service: &'static Service, extra: &[(&str, &str)]) -> TestService {
    let database_url = fresh_database(service.spec.name).await;
    spawn_service_on(service, database_url, extra).await
}

/// Starts `service` on an existing database made by [`fresh_database`] (`database_url` is
/// the owner's URL; the service logs in as the services' role); `extra` settings are added
/// (and win).
pub async fn spawn_service_on(
    service: &'static Service,
    database_url: String,
    extra: &[(&str, &str)],
) -> TestService {
    let prefix = service.spec.env_prefix();
    let env = Env::from_pairs(extra.iter().copied()).with_defaults([
        (format!("{prefix}_DATABASE_URL"), service_url(&database_url)),
        (
            "INTERNAL_TOKEN_SECRET".to_owned(),
            INTERNAL_SECRET.to_owned(),
        ),
        ("DB_ACQUIRE_TIMEOUT_MS".to_owned(), "1000".to_owned()),
        ("DB_CONNECT_TIMEOUT_MS".to_owned(), "1000".to_owned()),
    ]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { runner::serve(service, &env, listener, shutdown).await }
    });
    TestService {
        addr,
        database_url,
        tokens: InternalTokens::new(&INTERNAL_SECRET.into(), Duration::from_secs(60)),
        shutdown,
        task,
    }
}

impl TestService {
    /// A channel to the service.
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// `message` as a request from `caller`.
    pub fn request<T>(&self, caller: &Caller, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        let token = self.tokens.mint(caller).unwrap();
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        request
    }
}
