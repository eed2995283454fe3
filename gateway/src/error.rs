//! The one error shape every gateway answer uses, whether the failure came from an upstream
//! service (a `tonic::Status`) or from the gateway itself (auth, limits, bad JSON, no route).
//!
//! ```json
//! {"error": "Company not found", "detail": "Company not found", "code": "NOT_FOUND",
//!  "status": 404, "fields": [], "request_id": "…"}
//! ```
//! `error` keeps the reference's 401 bodies and `detail` keeps FastAPI's 404 bodies, so a
//! frontend written against the reference reads either key.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::Serialize;
use tonic::Code;
use tonic_types::StatusExt;

/// One offending input field of a validation failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldViolation {
    /// The field's name as the client sent it (proto field name, dotted for nested fields).
    pub field: String,
    /// What is wrong with it.
    pub description: String,
}

/// An error answer of the gateway.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The gRPC code; it names the error class in the body and picks the HTTP status.
    pub code: Code,
    /// Human-readable message, safe to show to the client.
    pub message: String,
    /// Offending fields of a validation failure.
    pub fields: Vec<FieldViolation>,
    /// HTTP status when the standard mapping of `code` is not the right one (405, 413, 415).
    pub http_status: Option<StatusCode>,
    /// Seconds the client should wait before retrying (429, 503).
    pub retry_after: Option<u64>,
    /// The request id to echo in the body; filled in by the request-id layer when absent.
    pub request_id: Option<String>,
}

impl ApiError {
    /// An error with the standard HTTP status of `code`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
            http_status: None,
            retry_after: None,
            request_id: None,
        }
    }

    /// The same error answered with a specific HTTP status.
    pub fn with_http_status(mut self, status: StatusCode) -> Self {
        self.http_status = Some(status);
        self
    }

    /// Adds field violations (400 validation failures).
    pub fn with_fields(mut self, fields: Vec<FieldViolation>) -> Self {
        self.fields = fields;
        self
    }

    /// Adds a `Retry-After` header.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 400 INVALID_ARGUMENT.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    /// 401 UNAUTHENTICATED with one of the reference's messages.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, message)
    }

    /// Translates an upstream status. Messages of INTERNAL/UNKNOWN/DATA_LOSS errors are
    /// replaced by a generic one unless `expose_internal` (DEBUG outside prod) is set; the
    /// original is logged by the caller with the request id. A `google.rpc.BadRequest` detail
    /// becomes `fields`; a `google.rpc.RetryInfo` detail (a service's spending limit, say)
    /// becomes `Retry-After`, in whole seconds rounded up.
    pub fn from_status(status: &tonic::Status, expose_internal: bool) -> Self {
        let code = status.code();
        let hides_details = matches!(code, Code::Internal | Code::Unknown | Code::DataLoss);
        let message = if hides_details && !expose_internal {
            "An error occurred".to_owned()
        } else {
            status.message().to_owned()
        };
        let fields = status
            .get_details_bad_request()
            .map(|bad_request| {
                bad_request
                    .field_violations
                    .into_iter()
                    .map(|violation| FieldViolation {
                        field: violation.field,
                        description: violation.description,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut error = Self::new(code, message).with_fields(fields);
        error.retry_after = status
            .get_details_retry_info()
            .and_then(|info| info.retry_delay)
            .map(retry_after_seconds);
        error
    }

    /// The HTTP status: the override, else the standard gRPC → HTTP mapping
    /// (google.rpc.Code documentation).
    pub fn status(&self) -> StatusCode {
        self.http_status
            .unwrap_or_else(|| http_status_of(self.code))
    }

    /// The code's canonical name, e.g. `NOT_FOUND`.
    pub fn code_name(&self) -> &'static str {
        code_name(self.code)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code_name(), self.message)
    }
}

impl std::error::Error for ApiError {}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    detail: &'a str,
    code: &'static str,
    status: u16,
    fields: &'a [FieldViolation],
    request_id: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: &self.message,
            detail: &self.message,
            code: self.code_name(),
            status: status.as_u16(),
            fields: &self.fields,
            request_id: self.request_id.as_deref(),
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // Kept on the response so the request-id layer can fill in `request_id` and logs can
        // name the failure without parsing the body.
        response.extensions_mut().insert(self);
        response
    }
}

/// A retry delay as `Retry-After` seconds: rounded up, and at least 1 (a client told "0"
/// would retry at once).
fn retry_after_seconds(delay: std::time::Duration) -> u64 {
    let rounded_up = delay
        .as_secs()
        .saturating_add(u64::from(delay.subsec_nanos() > 0));
    rounded_up.max(1)
}

/// The standard mapping from gRPC codes to HTTP statuses.
pub fn http_status_of(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The canonical upper-snake name of a gRPC code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic_types::ErrorDetails;

    use super::*;

    fn exhausted_with_retry_info(delay: Duration) -> tonic::Status {
        tonic::Status::with_error_details(
            Code::ResourceExhausted,
            "Daily SMS limit of 500 reached",
            ErrorDetails::with_retry_info(Some(delay)),
        )
    }

    #[test]
    fn retry_info_becomes_retry_after_in_whole_seconds_rounded_up() {
        for (delay, seconds) in [
            (Duration::from_millis(1200), 2),
            (Duration::from_secs(30), 30),
            (Duration::from_millis(1), 1),
            (Duration::ZERO, 1),
            (
                Duration::from_secs(86_399) + Duration::from_nanos(1),
                86_400,
            ),
        ] {
            let error = ApiError::from_status(&exhausted_with_retry_info(delay), false);
            assert_eq!(error.retry_after, Some(seconds), "{delay:?}");
            assert_eq!(error.code, Code::ResourceExhausted);
            assert_eq!(error.message, "Daily SMS limit of 500 reached");
            let response = error.into_response();
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(
                response.headers()[header::RETRY_AFTER],
                seconds.to_string().as_str()
            );
        }
    }

    #[test]
    fn without_retry_info_there_is_no_retry_after() {
        let plain = tonic::Status::resource_exhausted("Too many requests");
        let error = ApiError::from_status(&plain, false);
        assert_eq!(error.retry_after, None);
        assert!(
            error
                .into_response()
                .headers()
                .get(header::RETRY_AFTER)
                .is_none()
        );
        let no_delay = tonic::Status::with_error_details(
            Code::ResourceExhausted,
            "Too many requests",
            ErrorDetails::with_retry_info(None),
        );
        assert_eq!(ApiError::from_status(&no_delay, false).retry_after, None);
    }

    #[test]
    fn retry_info_and_field_violations_are_read_together() {
        let mut details = ErrorDetails::with_retry_info(Some(Duration::from_secs(5)));
        details.add_bad_request_violation("to", "calling code 882 is not allowed");
        let status =
            tonic::Status::with_error_details(Code::InvalidArgument, "Invalid SMS", details);
        let error = ApiError::from_status(&status, false);
        assert_eq!(error.retry_after, Some(5));
        assert_eq!(error.fields.len(), 1);
        assert_eq!(error.fields[0].field, "to");
    }
}
