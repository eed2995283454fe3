//! Vessey: the `IntegrationsService` API (configuration state, driver look-up, starting a
//! sync or an import) and the work those jobs do.

pub mod accounting;
pub mod grpc;
pub mod import;
mod pages;
mod summaries;
pub mod sync;
