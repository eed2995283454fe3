//! The store crate's tests, one test binary (each binary links the whole dependency graph): its
//! files by subject.

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod db_errors;
mod db_pool;
mod job_attempts;
mod job_queue;
mod migrate;
mod migrate_wait;
mod pgbouncer;
mod server;
mod tenant_scope;
