//! Drivers: the `DriversService` API ([`grpc`]) over the `drivers` table ([`store`]).

mod grpc;
mod store;

pub use grpc::DriversApi;
pub use store::{DriverChanges, DriverStore, NewDriver};
