//! Background jobs as the API shows them: recorded and queued ([`store`]), listed, fetched
//! and watched through `JobsService` ([`grpc`], [`watch`]), each answered as one message
//! ([`message`]). What a job does is its kind's business (the Vessey jobs: `vessey::run`).

pub mod grpc;
pub mod message;
pub mod store;
pub mod watch;
