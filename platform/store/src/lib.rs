//! What a Director service with a database shares, and the gateway does without.
//!
//! `director-platform` holds what every process uses (config, telemetry, identity, the gRPC
//! server, service-to-service calls); this crate adds the database and what rests on it, so
//! only the services link sqlx and the job queue.
//!
//! - [`db`]: a lazily connecting PostgreSQL pool that fails fast when the database is down,
//!   with a pgbouncer transaction-pooling mode, and the health check the runner serves.
//! - [`tenant`]: transactions scoped to the caller's tenant so row-level security applies, and
//!   [`TenantDb`], which runs one statement in one such transaction.
//! - [`error`]: database errors mapped to gRPC statuses without leaking SQL.
//! - [`jobs`]: durable background jobs (graphile_worker) enqueued in the caller's
//!   transaction; [`notify`]: LISTEN/NOTIFY wake-ups fanned out to waiters.
//! - [`migrate`]: database creation and migrations, a deploy step (`director migrate`);
//!   [`roles`]: the database roles services and jobs run as.
//! - [`pool_metrics`]: the pool's gauges on `/metrics`.
//! - [`runner`]: the service kit — a service is its routes plus a one-line `main`; it opens
//!   the database, serves the routes with [`director_platform::server`], runs migrations.
//! - `testing` (feature `testing`): a fresh database and the real service per test.

pub mod db;
pub mod error;
pub mod jobs;
pub mod migrate;
pub mod notify;
pub mod pool_metrics;
pub mod roles;
pub mod runner;
pub mod tenant;
#[cfg(feature = "testing")]
pub mod testing;

pub use db::{DatabaseConfig, connect_lazy, ping};
pub use error::{DbFailure, classify, status_from_sqlx};
pub use tenant::TenantDb;
