//! Outgoing SMS (Twilio) and Slack messages: queued with a delivery record in one
//! transaction ([`store`]), sent by a queue job with retries ([`send`]), listed through
//! `NotificationsService` ([`grpc`]), held to each tenant's spending limits ([`limits`]).

pub mod grpc;
pub mod limits;
pub mod send;
pub mod store;
