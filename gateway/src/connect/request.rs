//! Reading a Connect request and rewriting it as the native gRPC request the proxy forwards.
//!
//! - Unary: `POST` with `application/proto` or `application/json`, the body one message,
//!   compressed as `Content-Encoding` says; or `GET` (methods marked
//!   `idempotency_level = NO_SIDE_EFFECTS` only) with the message in the query
//!   (`encoding`, `message`, `base64`, `compression`, `connect`).
//! - Streaming: `POST` with `application/connect+proto` or `+json`, the body enveloped
//!   messages, compressed per message as `Connect-Content-Encoding` says.
//!
//! `Connect-Protocol-Version` (and GET's `connect`) are optional, but when sent must name
//! version 1. `Connect-Timeout-Ms` becomes `grpc-timeout`, so the proxy bounds it exactly like
//! a gRPC client's deadline. A unary body is read whole, at most `MAX_BODY_BYTES` before and
//! after decompression; a stream's messages are converted as they arrive
//! ([`super::stream_request`]), each capped the same way.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use bytes::{Bytes, BytesMut};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::BodyExt as _;
use prost_types::method_options::IdempotencyLevel;
use tonic::Code;

use super::codec::{Codec, GZIP, gunzip};
use super::error::ConnectError;
use super::stream_request::RequestStream;
use super::{Methods, Shape};

/// A Connect request understood: what the answer must look like.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub method: prost_reflect::MethodDescriptor,
    pub shape: Shape,
    /// The client takes gzip-compressed answers (`Accept-Encoding` for unary calls,
    /// `Connect-Accept-Encoding` for streams).
    pub accepts_gzip: bool,
    /// The client's deadline.
    pub timeout: Option<Duration>,
}

/// A request refused before it reached the proxy.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub error: ConnectError,
    /// An HTTP status other than the code's (405, 415): the request was not a Connect call
    /// this gateway takes at all.
    pub status: Option<StatusCode>,
    /// A header telling the client what would be taken (`Allow`, `Accept-Encoding`).
    pub header: Option<(HeaderName, &'static str)>,
}

impl From<ConnectError> for Refusal {
    fn from(error: ConnectError) -> Self {
        Self {
            error,
            status: None,
            header: None,
        }
    }
}

impl Refusal {
    fn with_status(error: ConnectError, status: StatusCode) -> Self {
        Self {
            status: Some(status),
            ..Refusal::from(error)
        }
    }

    fn with_header(mut self, name: HeaderName, value: &'static str) -> Self {
        self.header = Some((name, value));
        self
    }
}

/// Connect's request headers, none of which the upstream reads.
const CONNECT_HEADERS: [&str; 4] = [
    "connect-protocol-version",
    "connect-timeout-ms",
    "connect-content-encoding",
    "connect-accept-encoding",
];

/// URL-safe base64, padded or not, for GET's `base64=1` messages.
const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Reads `request` as a Connect call of one of `methods`; the call and its gRPC form.
pub(crate) async fn read(
    methods: &Methods,
    max_body_bytes: usize,
    request: Request<axum::body::Body>,
) -> Result<(Call, Request<tonic::body::Body>), Refusal> {
    let (mut parts, body) = request.into_parts();
    let shape = Shape::of(&parts.method, &parts.headers, &parts.uri);
    let path = parts.uri.path().to_owned();
    let Some(method) = methods.get(&path) else {
        return Err(
            ConnectError::new(Code::Unimplemented, format!("Unknown method {path}")).into(),
        );
    };
    let streaming = method.is_server_streaming() || method.is_client_streaming();
    let timeout = timeout(parts.headers.get("connect-timeout-ms"))?;
    let body = match parts.method {
        Method::POST => {
            check_version(parts.headers.get("connect-protocol-version"))?;
            check_content_type(&parts.headers, streaming)?;
            if streaming {
                // Converted message by message as the body arrives.
                let gzipped = stream_compression(&parts.headers)?;
                tonic::body::Body::new(RequestStream::new(
                    body,
                    shape.codec,
                    method.input(),
                    gzipped,
                    max_body_bytes,
                ))
            } else {
                let body = read_body(body, max_body_bytes).await?;
                let message = unary_message(&parts.headers, body, max_body_bytes)?;
                unary_body(shape, &method, message)?
            }
        }
        Method::GET if !streaming && has_no_side_effects(&method) => {
            unary_body(shape, &method, get_message(&parts.uri, max_body_bytes)?)?
        }
        _ => {
            let (allow, why) = if !streaming && has_no_side_effects(&method) {
                ("GET, POST", "Connect calls are GET or POST requests")
            } else {
                (
                    "POST",
                    "Only methods without side effects (idempotency_level = NO_SIDE_EFFECTS) take GET; use POST",
                )
            };
            return Err(Refusal::with_status(
                ConnectError::new(Code::Unimplemented, why),
                StatusCode::METHOD_NOT_ALLOWED,
            )
            .with_header(header::ALLOW, allow));
        }
    };
    let accepts_gzip = super::codec::accepts_gzip(parts.headers.get(if streaming {
        "connect-accept-encoding"
    } else {
        "accept-encoding"
    }));
    let call = Call {
        method,
        shape,
        accepts_gzip,
        timeout,
    };
    as_grpc(&mut parts, timeout);
    Ok((call, Request::from_parts(parts, body)))
}

/// The gRPC body of a unary call: its one message, as protobuf, framed.
fn unary_body(
    shape: Shape,
    method: &prost_reflect::MethodDescriptor,
    message: Bytes,
) -> Result<tonic::body::Body, Refusal> {
    let message = shape.codec.to_proto(message, &method.input())?;
    let mut framed = BytesMut::new();
    super::envelope::put(&mut framed, 0, &message);
    Ok(tonic::body::Body::new(http_body_util::Full::new(
        framed.freeze(),
    )))
}

/// Turns the request's head into a gRPC call's: POST to the bare method path, gRPC content
/// type, the deadline as `grpc-timeout`, Connect's own headers dropped. The other headers
/// (authorization, trace context, request id) travel as the call's metadata, as they do for
/// gRPC-Web; the request's extensions (client address, request id) stay for the proxy.
fn as_grpc(parts: &mut Parts, timeout: Option<Duration>) {
    parts.method = Method::POST;
    parts.uri = Uri::builder()
        .path_and_query(parts.uri.path())
        .build()
        .unwrap_or_else(|_| parts.uri.clone());
    let headers = &mut parts.headers;
    for name in CONNECT_HEADERS {
        headers.remove(name);
    }
    for name in [
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::ACCEPT_ENCODING,
        header::TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
    for name in ["grpc-timeout", "grpc-encoding", "grpc-accept-encoding"] {
        headers.remove(name);
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc+proto"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    if let Some(timeout) = timeout {
        // grpc-timeout takes at most 8 digits.
        let millis = timeout.as_millis().min(99_999_999);
        if let Ok(value) = HeaderValue::try_from(format!("{millis}m")) {
            headers.insert("grpc-timeout", value);
        }
    }
}

/// `Connect-Protocol-Version`, when sent, must be `1`.
fn check_version(version: Option<&HeaderValue>) -> Result<(), Refusal> {
    match version {
        None => Ok(()),
        Some(version) if version.as_bytes().trim_ascii() == b"1" => Ok(()),
        Some(version) => Err(ConnectError::new(
            Code::InvalidArgument,
            format!(
                "connect-protocol-version must be \"1\": got {:?}",
                String::from_utf8_lossy(version.as_bytes())
            ),
        )
        .into()),
    }
}

/// The content type must be the one of the method's kind: `application/{proto,json}` for a
/// unary method, `application/connect+{proto,json}` for a streaming one.
fn check_content_type(headers: &HeaderMap, streaming: bool) -> Result<(), Refusal> {
    let media_type = media_type(headers);
    let codec = if streaming {
        media_type.strip_prefix("application/connect+")
    } else {
        media_type.strip_prefix("application/")
    }
    .and_then(Codec::named);
    if codec.is_some() {
        return Ok(());
    }
    let expected = if streaming {
        "application/connect+proto or application/connect+json (a streaming method)"
    } else {
        "application/proto or application/json (a unary method)"
    };
    Err(Refusal::with_status(
        ConnectError::new(
            Code::Unimplemented,
            format!("Content type {media_type:?} is not served here; use {expected}"),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    ))
}

/// The content type without its parameters, lowercase.
pub(crate) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The body, whole, at most `max_body_bytes`.
async fn read_body(body: axum::body::Body, max_body_bytes: usize) -> Result<Bytes, Refusal> {
    match http_body_util::Limited::new(body, max_body_bytes)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(ConnectError::new(
            Code::ResourceExhausted,
            format!("Request message is larger than {max_body_bytes} bytes"),
        )
        .into()),
        Err(error) => Err(ConnectError::new(
            Code::InvalidArgument,
            format!("Could not read the request body: {error}"),
        )
        .into()),
    }
}

/// Whether `name` is a compression this gateway reads: gzip, or none.
fn compression(name: Option<&str>) -> Result<bool, ()> {
    match name.map(str::trim) {
        None | Some("" | "identity") => Ok(false),
        Some(name) if name.eq_ignore_ascii_case(GZIP) => Ok(true),
        Some(_) => Err(()),
    }
}

fn unsupported_compression(name: &str, header_name: &'static str) -> Refusal {
    Refusal::from(ConnectError::new(
        Code::Unimplemented,
        format!("Unsupported compression {name:?}; this server reads gzip"),
    ))
    .with_header(HeaderName::from_static(header_name), GZIP)
}

/// A unary POST's one message, decompressed.
fn unary_message(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, Refusal> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    match compression(encoding.as_deref()) {
        Ok(true) => Ok(gunzip(&body, limit)?),
        Ok(false) => Ok(body),
        Err(()) => Err(unsupported_compression(
            encoding.as_deref().unwrap_or_default(),
            "accept-encoding",
        )),
    }
}

/// Whether a stream's messages may come gzipped (`Connect-Content-Encoding`).
fn stream_compression(headers: &HeaderMap) -> Result<bool, Refusal> {
    let encoding = headers
        .get("connect-content-encoding")
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    compression(encoding.as_deref()).map_err(|()| {
        unsupported_compression(
            encoding.as_deref().unwrap_or_default(),
            "connect-accept-encoding",
        )
    })
}

/// A GET's message, from its query.
fn get_message(uri: &Uri, limit: usize) -> Result<Bytes, Refusal> {
    let axum::extract::Query(query) =
        axum::extract::Query::<HashMap<String, String>>::try_from_uri(uri).map_err(|error| {
            ConnectError::new(Code::InvalidArgument, format!("Invalid query: {error}"))
        })?;
    if let Some(version) = query.get("connect")
        && version != "v1"
    {
        return Err(ConnectError::new(
            Code::InvalidArgument,
            format!("connect must be \"v1\": got {version:?}"),
        )
        .into());
    }
    // The codec was taken from `encoding` already; here it must exist.
    match query
        .get("encoding")
        .map(String::as_str)
        .and_then(Codec::named)
    {
        Some(_) => {}
        None => {
            return Err(Refusal::with_status(
                ConnectError::new(
                    Code::Unimplemented,
                    "A GET call needs encoding=json or encoding=proto",
                ),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ));
        }
    }
    let text = query.get("message").map(String::as_str).unwrap_or_default();
    let message: Bytes = if query.get("base64").is_some_and(|flag| flag == "1") {
        URL_SAFE_ANY_PADDING
            .decode(text)
            .map_err(|error| {
                ConnectError::new(
                    Code::InvalidArgument,
                    format!("message is not URL-safe base64: {error}"),
                )
            })?
            .into()
    } else {
        Bytes::copy_from_slice(text.as_bytes())
    };
    if message.len() > limit {
        return Err(ConnectError::new(
            Code::ResourceExhausted,
            format!("Request message is larger than {limit} bytes"),
        )
        .into());
    }
    match compression(query.get("compression").map(String::as_str)) {
        Ok(true) => Ok(gunzip(&message, limit)?),
        Ok(false) => Ok(message),
        Err(()) => Err(unsupported_compression(
            query
                .get("compression")
                .map(String::as_str)
                .unwrap_or_default(),
            "accept-encoding",
        )),
    }
}

/// Whether the method is marked `option idempotency_level = NO_SIDE_EFFECTS`.
fn has_no_side_effects(method: &prost_reflect::MethodDescriptor) -> bool {
    method
        .method_descriptor_proto()
        .options
        .as_ref()
        .is_some_and(|options| options.idempotency_level() == IdempotencyLevel::NoSideEffects)
}

/// `Connect-Timeout-Ms`: 1 to 10 digits of milliseconds.
fn timeout(value: Option<&HeaderValue>) -> Result<Option<Duration>, Refusal> {
    let Some(value) = value else {
        return Ok(None);
    };
    let digits = value.as_bytes();
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ConnectError::new(
            Code::InvalidArgument,
            format!(
                "connect-timeout-ms must be 1 to 10 digits: got {:?}",
                String::from_utf8_lossy(digits)
            ),
        )
        .into());
    }
    let millis = std::str::from_utf8(digits)
        .ok()
        .and_then(|digits| digits.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    Ok(Some(Duration::from_millis(millis)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_one_to_ten_digits() {
        let parse = |value: &'static str| timeout(Some(&HeaderValue::from_static(value)));
        assert_eq!(parse("250").ok(), Some(Some(Duration::from_millis(250))));
        assert_eq!(
            parse("9999999999").ok(),
            Some(Some(Duration::from_millis(9_999_999_999)))
        );
        assert!(parse("12345678901").is_err());
        assert!(parse("1s").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn only_version_one_is_spoken() {
        assert!(check_version(None).is_ok());
        assert!(check_version(Some(&HeaderValue::from_static("1"))).is_ok());
        let refusal = check_version(Some(&HeaderValue::from_static("2"))).expect_err("v2");
        assert_eq!(refusal.error.code, Code::InvalidArgument);
    }

    #[test]
    fn the_deadline_travels_as_grpc_timeout() {
        let request = Request::builder()
            .method(Method::GET)
            .uri("/a.B/C?encoding=json&message=%7B%7D")
            .header("connect-timeout-ms", "1500")
            .header("accept-encoding", "gzip")
            .header("authorization", "Bearer t")
            .body(())
            .expect("a request");
        let (mut parts, ()) = request.into_parts();
        as_grpc(&mut parts, Some(Duration::from_millis(1500)));
        assert_eq!(parts.method, Method::POST);
        assert_eq!(parts.uri, "/a.B/C");
        assert_eq!(parts.headers["grpc-timeout"], "1500m");
        assert_eq!(parts.headers["content-type"], "application/grpc+proto");
        assert_eq!(parts.headers["authorization"], "Bearer t");
        assert!(!parts.headers.contains_key("connect-timeout-ms"));
        assert!(!parts.headers.contains_key("accept-encoding"));
    }
}
