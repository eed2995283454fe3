//! Tasks: the `TasksService` API ([`grpc`]), its input rules ([`input`]), the state machine
//! ([`status`]) and the `tasks` table ([`store`]).

mod grpc;
mod input;
pub mod status;
mod store;

pub use grpc::{TasksApi, task_message};
pub use store::{NewTask, TaskChanges, TaskFilter, TaskRow, TaskStore};
