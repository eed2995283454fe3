//! Database errors as gRPC statuses.
//!
//! A client must never see SQL, constraint internals or driver text: the mapping here
//! produces short fixed messages and logs the real error instead. Services that can say
//! something more useful (which field was a duplicate) match on [`classify`] first and fall
//! back to [`status_from_sqlx`].

use tonic::Status;

/// What kind of database failure an error is, as far as a handler cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbFailure {
    /// SQLSTATE 23505: a unique or primary-key constraint.
    UniqueViolation {
        /// The violated constraint's name, for mapping to a field.
        constraint: Option<String>,
    },
    /// SQLSTATE 23503: a referenced row is missing, or a row is still referenced.
    ForeignKeyViolation {
        /// The violated constraint's name.
        constraint: Option<String>,
    },
    /// SQLSTATE 23514 (check), 23502 (not null) or 23P01 (exclusion).
    CheckViolation {
        /// The violated constraint's name (the column for not-null violations, if known).
        constraint: Option<String>,
    },
    /// The database could not be reached or went away: pool timeout, I/O or TLS errors,
    /// SQLSTATE class 08 (connection exception), 57P01–57P03 (shutdown / starting up),
    /// 53300 (too many connections).
    Unavailable,
    /// Anything else: a bug or an unexpected database state.
    Other,
}

/// Classifies `error` by SQLSTATE or by driver error kind.
pub fn classify(error: &sqlx::Error) -> DbFailure {
    match error {
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or_default();
            let constraint = db.constraint().map(str::to_owned);
            match code {
                "23505" => DbFailure::UniqueViolation { constraint },
                "23503" => DbFailure::ForeignKeyViolation { constraint },
                "23514" | "23502" | "23P01" => DbFailure::CheckViolation { constraint },
                "57P01" | "57P02" | "57P03" | "53300" => DbFailure::Unavailable,
                _ if code.starts_with("08") => DbFailure::Unavailable,
                _ => DbFailure::Other,
            }
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => DbFailure::Unavailable,
        _ => DbFailure::Other,
    }
}

/// The default gRPC answer for a database error: ALREADY_EXISTS for a unique violation,
/// FAILED_PRECONDITION for foreign-key and check violations, UNAVAILABLE when the database
/// is unreachable, DEADLINE_EXCEEDED when a statement hit `statement_timeout`, ABORTED for a
/// serialization failure or deadlock (safe to retry), INVALID_ARGUMENT for a value the
/// column cannot hold (SQLSTATE class 22), INTERNAL otherwise. Messages are fixed
/// texts; the error itself is logged.
pub fn status_from_sqlx(error: &sqlx::Error) -> Status {
    let sqlstate = match error {
        sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
        _ => None,
    };
    match classify(error) {
        DbFailure::UniqueViolation { constraint } => {
            tracing::info!(%error, ?constraint, "unique violation");
            Status::already_exists("a record with the same unique values already exists")
        }
        DbFailure::ForeignKeyViolation { constraint } => {
            tracing::info!(%error, ?constraint, "foreign key violation");
            Status::failed_precondition(
                "the change refers to a record that does not exist or is still referenced",
            )
        }
        DbFailure::CheckViolation { constraint } => {
            tracing::info!(%error, ?constraint, "check violation");
            Status::failed_precondition("a value is missing or not allowed")
        }
        DbFailure::Unavailable => {
            tracing::error!(%error, "database unavailable");
            Status::unavailable("database unavailable")
        }
        DbFailure::Other => match sqlstate.as_deref() {
            // query_canceled: statement_timeout (or an operator cancelling the query).
            Some("57014") => {
                tracing::error!(%error, "database statement timed out");
                Status::deadline_exceeded("database statement timed out")
            }
            Some("40001" | "40P01") => {
                tracing::warn!(%error, "transaction conflict");
                Status::aborted("the change conflicted with a concurrent one; retry")
            }
            // Class 22, data exception: a value the client sent that the column type cannot
            // hold (a NUL character in text, a timestamp or number out of range).
            Some(code) if code.starts_with("22") => {
                tracing::info!(%error, "value refused by the database");
                Status::invalid_argument("a value is not allowed or out of range")
            }
            _ => {
                tracing::error!(%error, "database error");
                Status::internal("internal error")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn pool_timeouts_are_unavailable() {
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), DbFailure::Unavailable);
        assert_eq!(
            status_from_sqlx(&sqlx::Error::PoolTimedOut).code(),
            Code::Unavailable
        );
    }

    #[test]
    fn other_errors_are_internal_without_details() {
        let status = status_from_sqlx(&sqlx::Error::Protocol("secret protocol detail".into()));
        assert_eq!(status.code(), Code::Internal);
        assert_eq!(status.message(), "internal error");
    }
}
