//! The cross-service tests: the whole stack (`director up` and its parts in one process) through
//! the gateway, one test binary (each binary links the whole dependency graph): its files by
//! subject. Four stay binaries of their own: `no_secret_leaks.rs` and `trace.rs` install
//! process-wide telemetry, `replicas.rs` runs itself again as Dispatch replicas and times their
//! failures, and `service_lists.rs` is run by name by the recipe for adding a service.
//!
//! `connect_stack` and `connect_web` hold tests ignored by the plain run, which `.ci/run` runs
//! by module (`cargo test -p director --test cli -- --ignored connect_web::`).

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod background_work;
mod companies_rest;
mod compose_file;
mod compression;
mod connect_stack;
mod connect_web;
mod dispatch_rest;
mod fakes_cli;
mod grpc_clients;
mod health_cli;
mod integrations_flow;
mod metrics;
mod migrate_cli;
mod migrate_operations;
mod pgbouncer_stack;
mod task_watch;
mod tenant_integrations;
mod up;
