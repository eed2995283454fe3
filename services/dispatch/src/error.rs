//! Everything that can go wrong in a Dispatch request, and the one table that gives each
//! failure its gRPC code ([`DispatchError::code`]).
//!
//! Database errors become typed failures here, by constraint name, where Dispatch can say
//! what went wrong (a duplicate `external_id`, a window that ends before it starts); the rest
//! keep the platform's mapping ([`status_from_sqlx`]: a fixed message, the error logged).

use director_platform::error::{FieldViolation, invalid_argument};
use director_store::error::{DbFailure, classify, status_from_sqlx};
use tonic::{Code, Status};

/// A failed Dispatch request.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// Fields the input rules could not check were wrong (the database's constraint said so).
    #[error("{message}")]
    InvalidFields {
        message: &'static str,
        violations: Vec<FieldViolation>,
    },
    /// No such live row in the caller's tenant, or not one the caller may see.
    #[error("{0}")]
    NotFound(&'static str),
    /// A row with the same unique value already exists.
    #[error("{0}")]
    AlreadyExists(&'static str),
    /// The request is valid but the system is not in a state that allows it (a refused
    /// transition naming the current status, an unknown company, an inactive driver).
    #[error("{0}")]
    Refused(String),
    /// A stale `version`, or a row that changed under the request: the caller may retry.
    #[error("{0}")]
    Conflict(String),
    /// A service this request depends on did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// A call to another service could not be made (its deadline had passed, or no token
    /// could be minted); the platform's client says which, with its status.
    #[error("{}", .0.message())]
    Call(Status),
    /// The database refused or could not be reached, for a reason Dispatch has nothing to
    /// add to.
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl DispatchError {
    /// The gRPC code of each failure: the one table.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidFields { .. } => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::Refused(_) => Code::FailedPrecondition,
            Self::Conflict(_) => Code::Aborted,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Call(status) => status.code(),
            // The platform's table for the database errors Dispatch has nothing to add to.
            Self::Database(error) => status_from_sqlx(error).code(),
        }
    }
}

impl From<DispatchError> for Status {
    fn from(error: DispatchError) -> Self {
        match error {
            DispatchError::InvalidFields {
                message,
                violations,
            } => invalid_argument(message, violations),
            DispatchError::Call(status) => status,
            // The platform's fixed message, and the error logged rather than shown.
            DispatchError::Database(error) => status_from_sqlx(&error),
            error => Status::new(error.code(), error.to_string()),
        }
    }
}

impl From<sqlx::Error> for DispatchError {
    /// The database errors Dispatch can say something useful about, by constraint name.
    fn from(error: sqlx::Error) -> Self {
        let failure = classify(&error);
        let constraint = match &failure {
            DbFailure::UniqueViolation { constraint }
            | DbFailure::ForeignKeyViolation { constraint }
            | DbFailure::CheckViolation { constraint } => constraint.as_deref(),
            _ => None,
        };
        match constraint {
            Some("drivers_tenant_external_id_key") => {
                Self::AlreadyExists("A driver with this external_id already exists")
            }
            Some("drivers_tenant_user_id_key") => {
                Self::AlreadyExists("A driver with this user_id already exists")
            }
            Some("tasks_tenant_external_id_key") => {
                Self::AlreadyExists("A task with this external_id already exists")
            }
            Some("tasks_window_order") => Self::InvalidFields {
                message: "Invalid window_end",
                violations: vec![FieldViolation::new(
                    "window_end",
                    "must not be before window_start",
                )],
            },
            Some("tasks_driver_of_tenant") => {
                Self::Refused("driver_id does not name a driver of this tenant".to_owned())
            }
            // The trigger's last word on the state machine; the transition statements' own
            // conditions normally refuse first, naming the status.
            Some("tasks_status_transition") => {
                Self::Refused("The task's status does not allow this change".to_owned())
            }
            _ => Self::Database(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_answers_its_code_and_message() {
        let cases = [
            (DispatchError::NotFound("Task not found"), Code::NotFound),
            (
                DispatchError::AlreadyExists("A task with this external_id already exists"),
                Code::AlreadyExists,
            ),
            (
                DispatchError::Refused("Cannot start".to_owned()),
                Code::FailedPrecondition,
            ),
            (DispatchError::Conflict("retry".to_owned()), Code::Aborted),
            (
                DispatchError::Unavailable("no answer".to_owned()),
                Code::Unavailable,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code);
            let message = error.to_string();
            let status = Status::from(error);
            assert_eq!(status.code(), code);
            assert_eq!(status.message(), message);
        }
    }

    #[test]
    fn field_violations_travel_as_details() {
        let error = DispatchError::InvalidFields {
            message: "Invalid window_end",
            violations: vec![FieldViolation::new("window_end", "must not be before")],
        };
        assert_eq!(error.code(), Code::InvalidArgument);
        let status = Status::from(error);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            director_platform::error::field_violations(&status),
            vec![FieldViolation::new("window_end", "must not be before")]
        );
    }

    #[test]
    fn an_unreachable_database_is_unavailable() {
        let error = DispatchError::from(sqlx::Error::PoolTimedOut);
        assert_eq!(error.code(), Code::Unavailable);
        assert_eq!(Status::from(error).code(), Code::Unavailable);
    }
}
