//! What can go wrong calling a third party, and how it reaches Director's callers.
//!
//! Messages say which call failed and how (`"Vessey GET /drivers/7 failed after 5 attempts:
//! 503 Service Unavailable"`) and never carry a credential: clients never put keys, tokens, the
//! Twilio account SID, URLs or the Slack webhook URL into them, describe transport failures by
//! kind rather than by reqwest's text, and replace their secrets in whatever the provider
//! answered (see `redact.rs`). A `ProviderError` has no `source()`: `{:#}` prints the same.
//! Such messages reach callers (gRPC statuses) and are stored (a notification's last error).

use crate::provider::Provider;

/// One integration call's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The integration's variables are not set.
    #[error(
        "{} not configured: {}",
        integration.credentials(),
        describe_unset(missing)
    )]
    NotConfigured {
        integration: Provider,
        /// The unset variables.
        missing: Vec<&'static str>,
    },
    /// The provider has no such record (Vessey 404).
    #[error("{0}")]
    NotFound(String),
    /// The provider refused our request with a 4xx other than 404/408/429, or redirected it to
    /// another host. Retrying the same request would not help.
    #[error("{message}")]
    Rejected {
        /// The provider's HTTP status.
        status: u16,
        /// Which call, and the provider's own explanation, trimmed.
        message: String,
    },
    /// The provider kept failing (5xx, 429, timeouts, connection errors) until the retries ran
    /// out.
    #[error("{0}")]
    Unavailable(String),
    /// The provider answered something unusable: not the JSON expected, or too large.
    #[error("{0}")]
    InvalidResponse(String),
    /// Director refused to send the request: a tenant-supplied destination the egress guard
    /// does not allow (its host is, or now resolves to, a private address; see
    /// [`crate::EgressPolicy`]). Only a change of the tenant's settings fixes it.
    #[error("{0}")]
    Refused(String),
}

impl ProviderError {
    /// Whether a later attempt of the whole job may succeed: true for [`Self::Unavailable`]
    /// (timeouts, 5xx, 429, connection failures), false for what only a configuration or
    /// data change fixes — an answer that is not the JSON documented included: asking again
    /// for the same page gets the same page, and retrying it would only delay the reason.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            Self::InvalidResponse(_)
            | Self::NotConfigured { .. }
            | Self::NotFound(_)
            | Self::Rejected { .. }
            | Self::Refused(_) => false,
        }
    }

    /// The error for an integration missing `missing`.
    pub fn not_configured(integration: Provider, missing: &[&'static str]) -> Self {
        Self::NotConfigured {
            integration,
            missing: missing.to_vec(),
        }
    }
}

/// The status Director answers with when a call to a provider failed.
///
/// - NotConfigured → FAILED_PRECONDITION: the deployment lacks credentials; the message names
///   the variables.
/// - NotFound → NOT_FOUND.
/// - Rejected → FAILED_PRECONDITION: the provider refused a request Director made on the
///   caller's behalf; it is neither the caller's malformed input (that is validated before any
///   call) nor a transient fault. The provider's message is passed on.
/// - Refused → FAILED_PRECONDITION: the tenant's settings point where Director does not send
///   requests; the message says which rule, not the URL.
/// - Unavailable → UNAVAILABLE: the provider is down or throttling; trying later may work.
/// - InvalidResponse → UNAVAILABLE: the provider is misbehaving, which for the caller is the
///   dependency being unusable right now, not a bug in Director (INTERNAL) and not their
///   fault.
impl From<ProviderError> for tonic::Status {
    fn from(error: ProviderError) -> Self {
        let code = match &error {
            ProviderError::NotConfigured { .. }
            | ProviderError::Rejected { .. }
            | ProviderError::Refused(_) => tonic::Code::FailedPrecondition,
            ProviderError::NotFound(_) => tonic::Code::NotFound,
            ProviderError::Unavailable(_) | ProviderError::InvalidResponse(_) => {
                tonic::Code::Unavailable
            }
        };
        tonic::Status::new(code, error.to_string())
    }
}

/// `"A is not set"`, `"A and B are not set"`, `"A, B and C are not set"`.
fn describe_unset(missing: &[&str]) -> String {
    match missing {
        [] => "a required variable is not set".to_owned(),
        [one] => format!("{one} is not set"),
        [init @ .., last] => format!("{} and {last} are not set", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_configured_names_the_unset_variables() {
        let error = ProviderError::not_configured(Provider::Vessey, &["VESSEY_API_KEY"]);
        let status = tonic::Status::from(error);
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert_eq!(
            status.message(),
            "Vessey API credentials not configured: VESSEY_API_KEY is not set"
        );
        let twilio = ProviderError::not_configured(
            Provider::Twilio,
            &[
                "TWILIO_ACCOUNT_SID",
                "TWILIO_AUTH_TOKEN",
                "TWILIO_FROM_NUMBER",
            ],
        );
        assert_eq!(
            twilio.to_string(),
            "Twilio credentials not configured: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and \
             TWILIO_FROM_NUMBER are not set"
        );
    }

    #[test]
    fn each_failure_maps_to_the_documented_code() {
        let code = |error: ProviderError| tonic::Status::from(error).code();
        assert_eq!(
            code(ProviderError::NotFound("x".into())),
            tonic::Code::NotFound
        );
        assert_eq!(
            code(ProviderError::Rejected {
                status: 400,
                message: "x".into()
            }),
            tonic::Code::FailedPrecondition
        );
        assert_eq!(
            code(ProviderError::Unavailable("x".into())),
            tonic::Code::Unavailable
        );
        assert_eq!(
            code(ProviderError::InvalidResponse("x".into())),
            tonic::Code::Unavailable
        );
        assert_eq!(
            code(ProviderError::Refused("x".into())),
            tonic::Code::FailedPrecondition
        );
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(ProviderError::Unavailable("x".into()).is_retryable());
        assert!(!ProviderError::InvalidResponse("x".into()).is_retryable());
        assert!(!ProviderError::NotFound("x".into()).is_retryable());
        assert!(
            !ProviderError::Rejected {
                status: 401,
                message: "x".into()
            }
            .is_retryable()
        );
        assert!(
            !ProviderError::not_configured(Provider::Slack, &["SLACK_WEBHOOK_URL"]).is_retryable()
        );
        assert!(!ProviderError::Refused("x".into()).is_retryable());
    }
}
