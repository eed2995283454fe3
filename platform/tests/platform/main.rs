//! The platform's tests, one test binary (each binary links the whole dependency graph): its
//! files by subject. Four stay binaries of their own, as each installs process-wide state:
//! `telemetry.rs`, `telemetry_otlp.rs` and `service_client.rs` the telemetry (tracing
//! subscriber, propagator, tracer provider), `env_files_load.rs` process variables.

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod auth_layer;
mod balance;
mod config;
mod db_errors;
mod db_pool;
mod discovery;
mod env_files;
mod internal_tokens;
mod job_attempts;
mod job_queue;
mod migrate;
mod migrate_wait;
mod pgbouncer;
mod server;
mod tenant_scope;
