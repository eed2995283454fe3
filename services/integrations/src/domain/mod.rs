//! The Integrations service's typed core: a leaf module that imports nothing from the rest of
//! the crate, and that the gRPC layer, the stores and the jobs all speak.
//!
//! - [`ids`]: one newtype per kind of row ([`JobId`], [`NotificationId`]), made with
//!   [`director_platform::uuid_id!`]: they bind and decode with sqlx as `uuid`, parse at the
//!   gRPC edge naming the field, and travel in queue payloads as their UUID.
//! - [`states`]: every state the service stores as text — a job's [`JobKind`] and
//!   [`JobStatus`], a notification's [`NotificationChannel`] and [`NotificationStatus`] —
//!   mapped to the database and to the proto in one place each. A value our own table holds
//!   that the enum does not know fails to decode: it is an error, never a silent default.
//! - [`values`]: values Integrations takes from outside, built by parsing with
//!   `director_platform::validate`'s rules ([`PhoneE164`]) or the service's own
//!   ([`ApiSecret`], [`AccountSid`]); holding one means it was checked.
//! - [`limits`]: the spending windows and [`LimitReached`], the refusal they cause.
//! - [`job_request`]: what a job is asked to do ([`JobRequest`]), as its kind and stored
//!   parameters.
//! - [`tally`]: what a job did with every record ([`Tally`]), stored with the job.
//! - [`queue`]: the payloads of the service's queue jobs ([`RunJob`], [`SendNotification`]):
//!   what a store enqueues and a handler runs, so neither knows the other.
//!
//! Ids of different kinds do not mix: this does not compile, and only for that reason
//! (E0308, expected `JobId`, found `NotificationId`; the snippet below, with the right kind,
//! does).
//!
//! ```compile_fail,E0308
//! use director_integrations::domain::{JobId, NotificationId};
//!
//! fn cancel(job: JobId) -> JobId {
//!     job
//! }
//!
//! let notification = NotificationId::new_random();
//! cancel(notification);
//! ```
//!
//! With the right kind it does:
//!
//! ```
//! use director_integrations::domain::JobId;
//!
//! fn cancel(job: JobId) -> JobId {
//!     job
//! }
//!
//! let job = JobId::new_random();
//! assert_eq!(cancel(job), job);
//! ```

pub mod ids;
pub mod job_request;
pub mod limits;
pub mod queue;
pub mod states;
pub mod tally;
pub mod values;

pub use ids::{JobId, NotificationId};
pub use job_request::JobRequest;
pub use limits::{LimitReached, Window};
pub use queue::{RunJob, SendNotification};
pub use states::{JobKind, JobStatus, NotificationChannel, NotificationStatus, UnknownValue};
pub use tally::Tally;
pub use values::{AccountSid, ApiSecret, PhoneE164};
