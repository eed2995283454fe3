//! Everything that can go wrong in the Companies service, and the one table that turns each
//! failure into a gRPC status.

use director_store::error::{DbFailure, classify, status_from_sqlx};
use tonic::Status;

/// A failed Companies request.
#[derive(Debug, thiserror::Error)]
pub enum CompaniesError {
    /// Bad input; the status already carries the field violations.
    #[error("invalid request")]
    Invalid(Status),
    /// No live company with that id in the caller's tenant (or in no tenant at all).
    #[error("company not found")]
    NotFound,
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<CompaniesError> for Status {
    fn from(error: CompaniesError) -> Self {
        match error {
            CompaniesError::Invalid(status) => status,
            CompaniesError::NotFound => Status::not_found("Company not found"),
            CompaniesError::Database(error) => match classify(&error) {
                DbFailure::UniqueViolation { constraint }
                    if constraint.as_deref() == Some("companies_tenant_external_id_key") =>
                {
                    Status::already_exists("A company with this external_id already exists")
                }
                _ => status_from_sqlx(&error),
            },
        }
    }
}

impl From<Status> for CompaniesError {
    fn from(status: Status) -> Self {
        Self::Invalid(status)
    }
}
