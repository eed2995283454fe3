//! The providers' tests, one test binary (each binary links the whole dependency graph): its
//! files by subject.

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod egress;
mod notifications;
mod secrets;
mod vessey;
