//! The Dispatch service's tests, one test binary (each binary links the whole dependency
//! graph): its files by subject. `tests/watch_cost.rs` is its own binary: it counts every
//! database operation of the process, which any other test here would add to.

#![allow(clippy::unwrap_used)]

#[path = "../watching/mod.rs"]
mod watching;

mod api;
mod internal;
mod outbox;
mod relay;
mod relay_backlog;
mod relay_backoff;
mod rows;
mod watch;
