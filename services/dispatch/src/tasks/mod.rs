//! Tasks: the `TasksService` API ([`grpc`]), its input rules ([`input`]) and the `tasks`
//! table ([`store`]); the state machine is the domain's ([`crate::domain::Transition`]).

mod grpc;
mod input;
mod store;

pub use grpc::TasksApi;
pub use store::{NewTask, TaskChanges, TaskFilter, TaskStore};
