//! Background jobs as the API shows them: started by the Vessey RPCs, run by the queue
//! ([`run`]), listed, fetched and watched through `JobsService` ([`grpc`], [`watch`]).

pub mod grpc;
pub mod run;
pub mod store;
pub mod watch;
