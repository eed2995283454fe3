//! The Integrations service's tests, one test binary (each binary links the whole dependency
//! graph): its files by subject.

#![allow(clippy::unwrap_used)]

mod durability;
mod task_events;
mod tenant_integrations;
