//! What every Director binary shares.
//!
//! Each service, the gateway and the `director` CLI are thin: they parse their own settings,
//! then lean on this crate for the parts that must behave the same everywhere.
//!
//! - [`config`]: typed, validated environment variables (`.env` files for local work) with
//!   errors that name the offending variable, and [`Secret`]s that never print.
//! - [`telemetry`]: one entry point for logs (pretty or JSON), OpenTelemetry traces over
//!   OTLP, and W3C trace-context propagation across gRPC hops; [`span_export`] exports each
//!   span under its own service's name when several share a process.
//! - [`db`]: a lazily connecting PostgreSQL pool that fails fast when the database is down,
//!   with a pgbouncer transaction-pooling mode.
//! - [`tenant`]: transactions scoped to the caller's tenant so row-level security applies, and
//!   [`TenantDb`], which runs one statement in one such transaction.
//! - [`catalog`]: the one list of Director's services, their ports, packages and URLs.
//! - [`runner`]: the service kit — a service is its routes plus a one-line `main`.
//! - [`client`]: service-to-service calls carrying the caller, request id, trace and deadline.
//! - [`identity`]: the internal token the gateway forwards to services, the tower layer that
//!   checks it, and Supabase-shaped user tokens for tools and tests.
//! - [`error`]: database errors mapped to gRPC statuses without leaking SQL, and
//!   `INVALID_ARGUMENT` answers with `google.rpc.BadRequest` details.
//! - [`server`]: the gRPC server bootstrap (auth, tracing, health, reflection, graceful
//!   shutdown) every service uses.
//! - [`secrets`]: secrets published in this repository, refused outside dev.
//! - [`contract_rules`]: the `buf.validate` rules declared in the contracts, enforced for
//!   every request and read by the gateway for its OpenAPI document.
//! - [`validate`], [`time`]: input normalisation and timestamp conversions shared by services.
//! - [`jobs`]: durable background jobs (graphile_worker) enqueued in the caller's
//!   transaction; [`notify`]: LISTEN/NOTIFY wake-ups fanned out to waiters.
//! - [`metrics`]: the Prometheus recorder, the admin listener serving `/metrics`, gRPC
//!   call histograms (server and client side) and pool gauges.
//! - [`migrate`]: database creation and migrations, a deploy step (`director migrate`).

pub mod balance;
pub mod catalog;
pub mod client;
pub mod config;
pub mod contract_rules;
pub mod db;
pub mod discovery;
pub mod domain_id;
pub mod error;
pub mod identity;
pub mod jobs;
pub mod metrics;
pub mod migrate;
pub mod notify;
pub mod roles;
pub mod runner;
pub mod secrets;
pub mod server;
pub mod span_export;
pub mod telemetry;
pub mod tenant;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod validate;

pub use config::{CommonConfig, ConfigError, Env, Environment, Secret, load_env_files};
pub use db::{DatabaseConfig, connect_lazy, ping};
pub use error::{DbFailure, FieldViolation, classify, invalid_argument, status_from_sqlx};
pub use identity::{
    Caller, InternalAuthLayer, InternalTokenConfig, InternalTokens, Role, TokenError, caller,
};
pub use server::{ServeOptions, serve, shutdown_on_signals};
pub use telemetry::{LogFormat, TelemetryConfig, TelemetryGuard};
pub use tenant::TenantDb;
