//! What every Director binary shares.
//!
//! Each service, the gateway and the `director` CLI are thin: they parse their own settings,
//! then lean on this crate for the parts that must behave the same everywhere. Nothing here
//! touches a database: what only a service with a database needs (the pool, tenant-scoped
//! transactions, the job queue, migrations, the service runner) is `director-store`
//! (`platform/store`), so the gateway links neither sqlx nor the job queue.
//!
//! - [`config`]: typed, validated environment variables (`.env` files for local work) with
//!   errors that name the offending variable, and [`Secret`]s that never print.
//! - [`telemetry`]: one entry point for logs (pretty or JSON), OpenTelemetry traces over
//!   OTLP, and W3C trace-context propagation across gRPC hops; [`span_export`] exports each
//!   span under its own service's name when several share a process.
//! - [`catalog`]: the one list of Director's services, their ports, packages and URLs.
//! - [`client`]: service-to-service calls carrying the caller, request id, trace and deadline,
//!   over [`discovery`]'s replicas and [`balance`]'s per-call balancing; [`grpc_timeout`]
//!   reads the deadline a call carries.
//! - [`identity`]: the internal token the gateway forwards to services, the tower layer that
//!   checks it, and Supabase-shaped user tokens for tools and tests.
//! - [`error`]: `INVALID_ARGUMENT` answers with `google.rpc.BadRequest` details.
//! - [`server`]: the gRPC server bootstrap (auth, tracing, health, reflection, graceful
//!   shutdown) every service uses.
//! - [`secrets`]: secrets published in this repository, refused outside dev.
//! - [`contract_rules`]: the `buf.validate` rules declared in the contracts, enforced for
//!   every request and read by the gateway for its OpenAPI document.
//! - [`validate`], [`time`]: input normalisation and timestamp conversions shared by services;
//!   [`domain_id`]: the typed-id macro [`uuid_id!`]; [`domain_value`]: the checked-text
//!   macro [`checked_text!`] and [`validate::Refused`], the rules' typed refusal.
//! - [`metrics`]: the Prometheus recorder, the admin listener serving `/metrics` and gRPC
//!   call histograms (server and client side).

pub mod balance;
pub mod catalog;
pub mod client;
pub mod config;
pub mod contract_rules;
pub mod discovery;
pub mod domain_id;
pub mod domain_state;
pub mod domain_value;
pub mod error;
pub mod grpc_timeout;
pub mod identity;
pub mod metrics;
pub mod secrets;
pub mod server;
pub mod span_export;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod validate;

pub use config::{CommonConfig, ConfigError, Env, Environment, Secret, load_env_files};
pub use error::{FieldViolation, invalid_argument};
pub use identity::{
    Caller, InternalAuthLayer, InternalTokenConfig, InternalTokens, Role, TokenError, caller,
};
pub use server::{ServeOptions, serve, shutdown_on_signals};
pub use telemetry::{LogFormat, TelemetryConfig, TelemetryGuard};
