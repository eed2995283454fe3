//! Everything that can go wrong in the Dispatch service, and the one table that turns each
//! failure into a gRPC status.

use director_platform::error::{FieldViolation, invalid_argument};
use director_store::error::{DbFailure, classify, status_from_sqlx};
use tonic::Status;

/// A failed Dispatch request.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// Bad input; the status already carries the field violations.
    #[error("invalid request")]
    Invalid(Status),
    /// No such live row in the caller's tenant, or not one the caller may see.
    #[error("{0}")]
    NotFound(&'static str),
    /// The caller's role may not do this.
    #[error("permission denied: {0}")]
    Forbidden(&'static str),
    /// The request is valid but the system is not in a state that allows it (a refused
    /// transition naming the current status, an unknown company, an inactive driver).
    #[error("failed precondition: {0}")]
    Precondition(String),
    /// A stale `version`: someone else changed the row first.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A service this request depends on did not answer.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<Status> for DispatchError {
    fn from(status: Status) -> Self {
        Self::Invalid(status)
    }
}

impl From<DispatchError> for Status {
    fn from(error: DispatchError) -> Self {
        match error {
            DispatchError::Invalid(status) => status,
            DispatchError::NotFound(message) => Status::not_found(message),
            DispatchError::Forbidden(message) => Status::permission_denied(message),
            DispatchError::Precondition(message) => Status::failed_precondition(message),
            DispatchError::Conflict(message) => Status::aborted(message),
            DispatchError::Unavailable(message) => Status::unavailable(message),
            DispatchError::Database(error) => database_status(&error),
        }
    }
}

/// The database errors Dispatch can say something useful about, by constraint name; the
/// platform's default mapping for the rest.
fn database_status(error: &sqlx::Error) -> Status {
    let failure = classify(error);
    let constraint = match &failure {
        DbFailure::UniqueViolation { constraint }
        | DbFailure::ForeignKeyViolation { constraint }
        | DbFailure::CheckViolation { constraint } => constraint.as_deref(),
        _ => None,
    };
    match constraint {
        Some("drivers_tenant_external_id_key") => {
            Status::already_exists("A driver with this external_id already exists")
        }
        Some("drivers_tenant_user_id_key") => {
            Status::already_exists("A driver with this user_id already exists")
        }
        Some("tasks_tenant_external_id_key") => {
            Status::already_exists("A task with this external_id already exists")
        }
        Some("tasks_window_order") => invalid_argument(
            "Invalid window_end",
            vec![FieldViolation::new(
                "window_end",
                "must not be before window_start",
            )],
        ),
        Some("tasks_driver_of_tenant") => {
            Status::failed_precondition("driver_id does not name a driver of this tenant")
        }
        // The trigger's last word on the state machine; the transition statements' own
        // conditions normally refuse first, naming the status.
        Some("tasks_status_transition") => {
            Status::failed_precondition("The task's status does not allow this change")
        }
        _ => status_from_sqlx(error),
    }
}
