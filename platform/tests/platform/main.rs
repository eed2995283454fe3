//! The platform's tests, one test binary (each binary links the whole dependency graph): its
//! files by subject. Four stay binaries of their own, as each installs process-wide state:
//! `telemetry.rs`, `telemetry_otlp.rs` and `service_client.rs` the telemetry (tracing
//! subscriber, propagator, tracer provider), `env_files_load.rs` process variables.

#![allow(clippy::unwrap_used)]

mod auth_layer;
mod balance;
mod config;
mod discovery;
mod env_files;
mod internal_tokens;
