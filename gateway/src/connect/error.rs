//! Connect's error model: a code name, a message and typed details, sent as the JSON body of
//! a unary answer (with an HTTP status chosen by the code) or inside a stream's end-of-stream
//! message.
//!
//! Errors come either from the gateway itself or from the gRPC status an upstream (or the
//! gateway's gRPC path: authentication, limits, deadlines) answered with: `grpc-status`,
//! the percent-encoded `grpc-message`, and `grpc-status-details-bin` — a `google.rpc.Status`
//! whose `details` become Connect's `details`, so `ConnectError.findDetails(BadRequest)`
//! reads the same field violations a gRPC client gets. A detail of a `google.rpc` type also
//! carries its JSON form as `debug`, for people reading answers with curl.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Map, Value, json};
use tonic::Code;
use tracing::debug;

/// Base64 with or without padding: gRPC and Connect peers may send either.
pub(crate) const BASE64_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One Connect error.
#[derive(Debug, Clone)]
pub(crate) struct ConnectError {
    pub code: Code,
    pub message: String,
    /// `google.protobuf.Any` values of the `google.rpc.Status` details.
    pub details: Vec<prost_types::Any>,
}

impl ConnectError {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// The outcome a gRPC header block (trailers, or the headers of a trailers-only answer)
    /// reports: `None` without `grpc-status`, `Some(Ok)` for OK.
    pub(crate) fn from_grpc(headers: &HeaderMap) -> Option<Result<(), Self>> {
        let status = headers.get("grpc-status")?;
        let code = status
            .to_str()
            .ok()
            .and_then(|status| status.trim().parse::<i32>().ok())
            .map_or(Code::Unknown, Code::from);
        if code == Code::Ok {
            return Some(Ok(()));
        }
        let message = headers
            .get("grpc-message")
            .map(|message| percent_decode(message.as_bytes()))
            .unwrap_or_default();
        let details = headers
            .get("grpc-status-details-bin")
            .and_then(|details| {
                let decoded = BASE64_ANY_PADDING
                    .decode(details.as_bytes())
                    .ok()
                    .and_then(|bytes| tonic_types::pb::Status::decode(bytes.as_slice()).ok());
                if decoded.is_none() {
                    debug!("grpc-status-details-bin is not a google.rpc.Status, dropped");
                }
                decoded
            })
            .map(|status| status.details)
            .unwrap_or_default();
        Some(Err(Self {
            code,
            message,
            details,
        }))
    }

    /// The outcome of a gRPC response that ended without trailers, or whose body failed.
    pub(crate) fn from_status(status: &tonic::Status) -> Self {
        Self::new(status.code(), status.message())
    }

    /// Its JSON form: `{"code", "message", "details": [{"type", "value", "debug"}]}`.
    pub(crate) fn to_json(&self) -> Value {
        let mut error = Map::new();
        error.insert("code".into(), Value::from(code_name(self.code)));
        if !self.message.is_empty() {
            error.insert("message".into(), Value::from(self.message.clone()));
        }
        if !self.details.is_empty() {
            let details = self.details.iter().map(detail_json).collect();
            error.insert("details".into(), Value::Array(details));
        }
        Value::Object(error)
    }

    /// The HTTP status of a unary answer with this error.
    pub(crate) fn http_status(&self) -> StatusCode {
        http_status(self.code)
    }

    /// A unary error answer: its HTTP status, `application/json`, the error as the body.
    pub(crate) fn into_unary_response(self) -> http::Response<tonic::body::Body> {
        let body = serde_json::to_vec(&self.to_json()).unwrap_or_default();
        let mut response = http::Response::new(tonic::body::Body::new(http_body_util::Full::new(
            bytes::Bytes::from(body),
        )));
        *response.status_mut() = self.http_status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// A `google.rpc.Status` detail as Connect sends it: the type's full name, the message in
/// unpadded base64, and (for types the gateway knows) its JSON as `debug`.
fn detail_json(detail: &prost_types::Any) -> Value {
    let type_name = detail
        .type_url
        .rsplit_once('/')
        .map_or(detail.type_url.as_str(), |(_, name)| name);
    let mut json = json!({
        "type": type_name,
        "value": STANDARD_NO_PAD.encode(&detail.value),
    });
    if let Some(debug) = debug_json(type_name, &detail.value) {
        json["debug"] = debug;
    }
    json
}

/// The `google.rpc` error detail types (BadRequest, RetryInfo, …), for `debug`.
static ERROR_DETAIL_TYPES: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(tonic_types::pb::FILE_DESCRIPTOR_SET).ok());

fn debug_json(type_name: &str, value: &[u8]) -> Option<Value> {
    let descriptor = ERROR_DETAIL_TYPES
        .as_ref()?
        .get_message_by_name(type_name)?;
    let message = DynamicMessage::decode(descriptor, value).ok()?;
    serde_json::to_value(&message).ok()
}

/// Connect's name of a gRPC code.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "ok",
        Code::Cancelled => "canceled",
        Code::Unknown => "unknown",
        Code::InvalidArgument => "invalid_argument",
        Code::DeadlineExceeded => "deadline_exceeded",
        Code::NotFound => "not_found",
        Code::AlreadyExists => "already_exists",
        Code::PermissionDenied => "permission_denied",
        Code::ResourceExhausted => "resource_exhausted",
        Code::FailedPrecondition => "failed_precondition",
        Code::Aborted => "aborted",
        Code::OutOfRange => "out_of_range",
        Code::Unimplemented => "unimplemented",
        Code::Internal => "internal",
        Code::Unavailable => "unavailable",
        Code::DataLoss => "data_loss",
        Code::Unauthenticated => "unauthenticated",
    }
}

/// The HTTP status of a unary error, per the Connect specification's table.
pub(crate) fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::REQUEST_TIMEOUT),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Decodes gRPC's percent-encoded `grpc-message` (invalid UTF-8 is replaced).
fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%'
            && let Some(hex) = bytes.get(index + 1..index + 3)
            && let Some(decoded) = std::str::from_utf8(hex)
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(decoded);
            index += 3;
        } else {
            out.push(byte);
            index += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt as _};

    #[test]
    fn an_upstream_status_becomes_a_connect_error_with_its_details() {
        let mut details = ErrorDetails::new();
        details.add_bad_request_violation("name", "must not be empty");
        let status = tonic::Status::with_error_details(
            Code::InvalidArgument,
            "Invalid company: 100% wrong",
            details,
        );
        let mut headers = HeaderMap::new();
        status
            .add_header(&mut headers)
            .expect("a status renders as headers");
        let error = ConnectError::from_grpc(&headers)
            .expect("a status")
            .expect_err("an error");
        let json = error.to_json();
        assert_eq!(json["code"], "invalid_argument");
        assert_eq!(json["message"], "Invalid company: 100% wrong");
        assert_eq!(json["details"][0]["type"], "google.rpc.BadRequest");
        assert_eq!(
            json["details"][0]["debug"]["fieldViolations"][0]["field"],
            "name"
        );
        let value = BASE64_ANY_PADDING
            .decode(json["details"][0]["value"].as_str().expect("base64 text"))
            .expect("base64");
        let bad_request =
            tonic_types::pb::BadRequest::decode(value.as_slice()).expect("BadRequest");
        assert_eq!(
            bad_request.field_violations[0].description,
            "must not be empty"
        );
        assert_eq!(error.http_status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn ok_and_missing_statuses_are_not_errors() {
        let mut headers = HeaderMap::new();
        assert!(ConnectError::from_grpc(&headers).is_none());
        headers.insert("grpc-status", HeaderValue::from_static("0"));
        assert!(matches!(ConnectError::from_grpc(&headers), Some(Ok(()))));
    }

    #[test]
    fn codes_map_to_the_specified_http_statuses() {
        assert_eq!(http_status(Code::Unauthenticated), StatusCode::UNAUTHORIZED);
        assert_eq!(
            http_status(Code::ResourceExhausted),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            http_status(Code::DeadlineExceeded),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            http_status(Code::Unimplemented),
            StatusCode::NOT_IMPLEMENTED
        );
        assert_eq!(http_status(Code::Cancelled).as_u16(), 499);
        assert_eq!(code_name(Code::Cancelled), "canceled");
    }
}
