//! The gateway's tests, one test binary (each binary links the whole dependency graph): its
//! files by subject. `tests/metrics.rs` is its own binary: it asserts exact counts on the
//! process-wide metrics recorder, which any other test here would add to.
//!
//! `abuse`, `connect_interop` and `docs_pages` hold tests ignored by the plain run, which
//! `.ci/run` runs by module (`cargo test -p director-gateway --test gateway -- --ignored abuse::`).

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;
#[path = "../things/mod.rs"]
mod things;

mod abuse;
mod auth;
mod compression;
mod connect;
mod connect_interop;
mod cors;
mod docs_pages;
mod edge;
mod generic_service;
mod health;
mod openapi_document;
mod openapi_rules;
mod per_client_caps;
mod reflection;
mod rest_requests;
mod rest_responses;
mod rest_routes;
mod rest_transcoding;
mod rest_wire_json;
mod resume;
mod retry_info;
mod slow_clients_and_caps;
mod sse_streams;
