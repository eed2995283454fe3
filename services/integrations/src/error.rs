//! Everything that can go wrong in the Integrations service, and the one table that turns
//! each failure into a gRPC status (`From<IntegrationsError> for Status`; a third party's
//! failure and a database error keep their own crate's table, which it delegates to). Every
//! variant says what went wrong: there is no catch-all carrying a ready-made status.

use director_providers::{Provider, ProviderError};
use director_store::error::status_from_sqlx;
use tonic::Status;
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::domain::{JobId, LimitReached};

/// How long a tenant at its job limit is asked to wait: about one page of a large import.
const JOBS_BUSY_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

/// A failed Integrations request or job step.
#[derive(Debug, thiserror::Error)]
pub enum IntegrationsError {
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
    /// A call to another Director service could not be made: no time left of the request's
    /// deadline, or no internal token (see `ServiceClient::request`).
    #[error("could not call {service}: {message}")]
    CallNotMade {
        /// The service that was to be called.
        service: &'static str,
        /// The code the call's set-up failed with.
        code: tonic::Code,
        message: String,
    },
    /// A job row this service wrote does not say what to do (its parameters do not read):
    /// a bug or a hand edit, never the caller's input.
    #[error("job {job} cannot run: {reason}")]
    JobUnreadable { job: JobId, reason: &'static str },
    /// The database refused or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The tenant's stored settings for an integration do not open (a key was dropped from
    /// the configuration, or the row was altered).
    #[error("the tenant's {} settings cannot be read: {reason}", integration.as_str())]
    SettingsUnreadable {
        integration: Provider,
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
    /// A call to `service` whose set-up failed with `status` (see [`Self::CallNotMade`]).
    pub fn call_not_made(service: &'static str, status: &Status) -> Self {
        Self::CallNotMade {
            service,
            code: status.code(),
            message: status.message().to_owned(),
        }
    }

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
            Self::NotFound(_) | Self::CallNotMade { .. } | Self::JobUnreadable { .. } => false,
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

impl From<IntegrationsError> for Status {
    fn from(error: IntegrationsError) -> Self {
        match error {
            IntegrationsError::NotFound(message) => Status::not_found(message),
            IntegrationsError::Provider(error) => error.into(),
            IntegrationsError::Service {
                service, message, ..
            } => {
                tracing::warn!(service, message, "a service call failed");
                Status::unavailable(format!("The {service} service did not answer"))
            }
            IntegrationsError::CallNotMade { code, message, .. } => Status::new(code, message),
            IntegrationsError::JobUnreadable { job, reason } => {
                tracing::error!(%job, reason, "a stored job cannot run");
                Status::internal("a stored job cannot run")
            }
            IntegrationsError::Database(error) => status_from_sqlx(&error),
            IntegrationsError::SettingsUnreadable { integration, .. } => {
                Status::failed_precondition(format!(
                    "The tenant's {} settings cannot be read; an admin must set them again \
                     (UpdateIntegrationSettings, or PUT /api/integrations/settings)",
                    integration.as_str()
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
