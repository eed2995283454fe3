//! Vessey: the `IntegrationsService` API (configuration state, driver look-up, starting a
//! sync or an import), the work those jobs do, and the queue job that runs them ([`run`]).

pub mod grpc;
pub mod import;
mod pages;
mod refusals;
pub mod run;
mod summaries;
pub mod sync;
