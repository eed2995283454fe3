//! Dispatch's typed domain core: the values every other module of the service speaks in.
//!
//! A leaf: it imports nothing from the rest of the crate. The gRPC layer ([`crate::drivers`],
//! [`crate::tasks`], [`crate::internal`]) parses requests into these types at its edge, the
//! stores bind and decode them, and the event stream and the relay send them on; so a value
//! that reaches a store has already been checked, and a row read back holds typed values.
//!
//! - **Ids** ([`DriverId`], [`TaskId`], [`CompanyId`]): one newtype per kind of row, made by
//!   [`director_platform::uuid_id!`] (sqlx-transparent over `uuid`, `parse_field` at the gRPC
//!   edge). Swapping two of them does not compile:
//!
//!   ```compile_fail,E0308
//!   use director_dispatch::domain::{DriverId, TaskId};
//!
//!   fn assign(task: TaskId, driver: DriverId) -> (TaskId, DriverId) {
//!       (task, driver)
//!   }
//!
//!   let task = TaskId::new_random();
//!   let driver = DriverId::new_random();
//!   assign(driver, task);
//!   ```
//!
//!   The same call with the ids in their places compiles:
//!
//!   ```
//!   use director_dispatch::domain::{DriverId, TaskId};
//!
//!   fn assign(task: TaskId, driver: DriverId) -> (TaskId, DriverId) {
//!       (task, driver)
//!   }
//!
//!   let task = TaskId::new_random();
//!   let driver = DriverId::new_random();
//!   assign(task, driver);
//!   ```
//! - **States** ([`status`]): [`TaskStatus`], [`DriverStatus`] and [`TaskEventKind`], each
//!   mapped to the text the migrations store and to its proto enum in one place; a value our
//!   own tables hold that is none of them is a decoding error, never a silent default. The
//!   task state machine ([`Transition`]) is typed over [`TaskStatus`].
//! - **Checked values** ([`values`]): [`PhoneE164`], [`Email`] and bounded text, built only
//!   by parsing with the platform's rules ([`director_platform::validate`]), declared with
//!   [`director_platform::checked_text!`].
//! - **Rows** ([`task`], [`driver`]): a task and a driver as stored (`sqlx::FromRow`, typed
//!   fields), and each one's message.

pub mod driver;
pub mod status;
pub mod task;
pub mod values;

pub use driver::DriverRow;
pub use status::{DriverStatus, TaskEventKind, TaskStatus, Transition, UnknownValue};
pub use task::TaskRow;
pub use values::{DriverName, Email, ExternalId, Notes, PhoneE164, Title, UserRef};

director_platform::uuid_id! {
    /// A driver (`drivers.id`).
    pub struct DriverId;
}

director_platform::uuid_id! {
    /// A collection task (`tasks.id`).
    pub struct TaskId;
}

director_platform::uuid_id! {
    /// A company as Dispatch refers to it (`tasks.company_id`): a row of the Companies
    /// service, checked with it over gRPC, never joined.
    pub struct CompanyId;
}
