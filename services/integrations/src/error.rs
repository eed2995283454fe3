//! Everything that can go wrong in the Integrations service, and the one table that turns
//! each failure into a gRPC status.

use director_providers::ProviderError;
use director_store::error::status_from_sqlx;
use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::notifications::limits::LimitReached;

/// How long a tenant at its job limit is asked to wait: about one page of a large import.
const JOBS_BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

/// A failed Integrations request or job step.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationsError {
    /// Bad input; the status already carries the field violations.
    #[error("invalid request")]
    Invalid(Status),
    /// No such row in the caller's tenant.
    #[error("{0}")]
    NotFound(&'static str),
    /// A third party failed, refused, or is not configured.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// Another Director service refused or did not answer.
    #[error("{service} answered {code:?}: {message}")]
    Service {
        /// The service called.
        service: &'static str,
        /// Its status code.
        code: tonic::Code,
        /// Its message.
        message: String,
    },
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The tenant's stored settings for an integration do not open (a key was dropped from
    /// the configuration, or the row was altered).
    #[error("the tenant's {integration} settings cannot be read: {reason}")]
    SettingsUnreadable {
        integration: &'static str,
        /// Logged; not shown to the caller.
        reason: String,
    },
    /// Over one of the tenant's spending limits.
    #[error("{0}")]
    LimitReached(LimitReached),
    /// The tenant already has as many syncs and imports queued or running as it may.
    #[error("the tenant already has {limit} syncs or imports queued or running")]
    TooManyJobs { limit: u32 },
}

impl IntegrationsError {
    /// A failed call to another Director service.
    pub fn service(service: &'static str, status: &Status) -> Self {
        Self::Service {
            service,
            code: status.code(),
            message: status.message().to_owned(),
        }
    }

    /// Whether trying the same work again later may succeed: third-party and service
    /// outages, the database. Refusals (bad data, missing credentials, not found) are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Invalid(_) | Self::NotFound(_) => false,
            Self::Provider(error) => error.is_retryable(),
            Self::Service { code, .. } => matches!(
                code,
                tonic::Code::Unavailable
                    | tonic::Code::DeadlineExceeded
                    | tonic::Code::ResourceExhausted
                    | tonic::Code::Aborted
                    | tonic::Code::Internal
                    | tonic::Code::Unknown
            ),
            Self::Database(_) => true,
            Self::SettingsUnreadable { .. } | Self::LimitReached(_) | Self::TooManyJobs { .. } => {
                false
            }
        }
    }
}

impl From<Status> for IntegrationsError {
    fn from(status: Status) -> Self {
        Self::Invalid(status)
    }
}

impl From<IntegrationsError> for Status {
    fn from(error: IntegrationsError) -> Self {
        match error {
            IntegrationsError::Invalid(status) => status,
            IntegrationsError::NotFound(message) => Status::not_found(message),
            IntegrationsError::Provider(error) => error.into(),
            IntegrationsError::Service {
                service, message, ..
            } => {
                tracing::warn!(service, message, "a service call failed");
                Status::unavailable(format!("The {service} service did not answer"))
            }
            IntegrationsError::Database(error) => status_from_sqlx(&error),
            IntegrationsError::SettingsUnreadable { integration, .. } => {
                Status::failed_precondition(format!(
                    "The tenant's {integration} settings cannot be read; an admin must set \
                     them again (PUT /api/integrations/settings)"
                ))
            }
            IntegrationsError::TooManyJobs { limit } => Status::with_error_details(
                tonic::Code::ResourceExhausted,
                format!(
                    "MAX_ACTIVE_JOBS_PER_TENANT reached: this tenant already has {limit} syncs \
                     or imports queued or running; try again when one has finished"
                ),
                ErrorDetails::with_retry_info(Some(JOBS_BUSY_RETRY)),
            ),
            IntegrationsError::LimitReached(reached) => Status::with_error_details(
                tonic::Code::ResourceExhausted,
                reached.to_string(),
                ErrorDetails::with_retry_info(Some(reached.retry_after)),
            ),
        }
    }
}
