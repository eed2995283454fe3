//! The Companies service's API tests, one test binary (each binary links the whole dependency
//! graph): its files by subject. `tests/metrics.rs` is its own binary: it asserts exact call
//! counts on the process' metrics recorder, which any other test here would add to.

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod availability;
mod companies_api;
mod internal;
mod tenant_isolation;
