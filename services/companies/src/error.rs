//! Everything that can go wrong in the Companies service once a request is admitted and its
//! fields are checked, and the one table that turns each failure into a gRPC status.
//!
//! What the gRPC edge refuses before (no or a bad caller, a broken contract rule, bad fields)
//! is answered by the platform's shared checks, which name every bad field themselves.

use director_store::error::{DbFailure, classify, status_from_sqlx};
use tonic::{Code, Status};

/// The unique index that keeps a tenant's live companies' `external_id`s apart.
const EXTERNAL_ID_KEY: &str = "companies_tenant_external_id_key";

/// A failed Companies request. Its `Display` is the message clients read (see the table in
/// `From<CompaniesError> for Status`).
#[derive(Debug, thiserror::Error)]
pub enum CompaniesError {
    /// No live company with that id in the caller's tenant (or in no tenant at all).
    #[error("Company not found")]
    NotFound,
    /// Another live company of the tenant has that `external_id`.
    #[error("A company with this external_id already exists")]
    ExternalIdTaken,
    /// A company an import ensures stayed invisible to every run of the statement (created
    /// and deleted again in between).
    #[error("Companies changed concurrently while being ensured; try again")]
    ChangedConcurrently,
    /// The database refused or could not be reached (classified by the platform).
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for CompaniesError {
    /// The failures the database reports for Companies' own rules get their own variant.
    fn from(error: sqlx::Error) -> Self {
        match classify(&error) {
            DbFailure::UniqueViolation { constraint }
                if constraint.as_deref() == Some(EXTERNAL_ID_KEY) =>
            {
                Self::ExternalIdTaken
            }
            _ => Self::Database(error),
        }
    }
}

impl From<CompaniesError> for Status {
    /// The one table: each failure's gRPC code, with its `Display` as the message.
    fn from(error: CompaniesError) -> Self {
        let code = match &error {
            CompaniesError::NotFound => Code::NotFound,
            CompaniesError::ExternalIdTaken => Code::AlreadyExists,
            CompaniesError::ChangedConcurrently => Code::Aborted,
            // Unavailable, timed out, conflicting, refused: the table every service shares.
            CompaniesError::Database(error) => return status_from_sqlx(error),
        };
        Status::new(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_code_and_message() {
        for (error, code, message) in [
            (
                CompaniesError::NotFound,
                Code::NotFound,
                "Company not found",
            ),
            (
                CompaniesError::ExternalIdTaken,
                Code::AlreadyExists,
                "A company with this external_id already exists",
            ),
            (
                CompaniesError::ChangedConcurrently,
                Code::Aborted,
                "Companies changed concurrently while being ensured; try again",
            ),
        ] {
            let status = Status::from(error);
            assert_eq!((status.code(), status.message()), (code, message));
        }
        let status = Status::from(CompaniesError::from(sqlx::Error::PoolTimedOut));
        assert_eq!(status.code(), Code::Unavailable);
    }
}
