//! Validation failures as gRPC statuses with field details: `INVALID_ARGUMENT` answers
//! carrying `google.rpc.BadRequest`, which the gateway turns into the JSON `fields` list.
//! Database errors are mapped in `director_store::error`.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

/// One invalid request field, as in `google.rpc.BadRequest.FieldViolation`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldViolation {
    /// The field path, e.g. `email` or `window.start`.
    pub field: String,
    /// What is wrong, for a person.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// INVALID_ARGUMENT with `message` and the violations as `google.rpc.BadRequest` details in
/// `grpc-status-details-bin` (which the gateway turns into the JSON `fields` list).
pub fn invalid_argument(message: &str, violations: Vec<FieldViolation>) -> Status {
    let violations: Vec<tonic_types::FieldViolation> = violations
        .into_iter()
        .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
        .collect();
    Status::with_error_details(
        Code::InvalidArgument,
        message,
        ErrorDetails::with_bad_request(violations),
    )
}

/// The `google.rpc.BadRequest` field violations carried by `status`, if any.
pub fn field_violations(status: &Status) -> Vec<FieldViolation> {
    status
        .get_details_bad_request()
        .map(|bad_request| {
            bad_request
                .field_violations
                .into_iter()
                .map(|v| FieldViolation::new(v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_field_violations() {
        let status = invalid_argument(
            "invalid company",
            vec![
                FieldViolation::new("name", "must not be empty"),
                FieldViolation::new("email", "not an email address"),
            ],
        );
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "invalid company");
        assert_eq!(
            field_violations(&status),
            vec![
                FieldViolation::new("name", "must not be empty"),
                FieldViolation::new("email", "not an email address"),
            ]
        );
    }
}
