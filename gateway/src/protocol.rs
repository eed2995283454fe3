//! Which protocol a request speaks, decided by its `content-type` (and, for Connect, its
//! path), and how an error the gateway raises itself is shaped for it: JSON for REST, a
//! trailers-only gRPC answer (`grpc-status`/`grpc-message` headers, HTTP 200) for gRPC and
//! gRPC-Web, Connect's error JSON (or end-of-stream message) for Connect.

use axum::body::Body;
use axum::response::IntoResponse;
use http::{HeaderValue, Request, Response, header};

use crate::connect::{self, Shape};
use crate::error::ApiError;

/// The protocol of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `application/grpc`, `application/grpc+proto`, …: proxied as is.
    Grpc,
    /// `application/grpc-web`, `application/grpc-web-text`, …: converted to gRPC and proxied.
    GrpcWeb,
    /// `application/connect+*` (streams), or any other request to an RPC path
    /// (`/package.Service/Method`: unary calls, `POST` or `GET`).
    Connect(Shape),
    /// Anything else: the REST/JSON routes.
    Rest,
}

impl Protocol {
    /// Classifies a request by its `content-type`.
    pub fn of<B>(request: &Request<B>) -> Self {
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("application/grpc-web") {
            Self::GrpcWeb
        } else if content_type.starts_with("application/grpc") {
            Self::Grpc
        } else if content_type.starts_with("application/connect+")
            || connect::is_rpc_path(request.uri().path())
        {
            Self::Connect(Shape::of_request(request))
        } else {
            Self::Rest
        }
    }

    /// An error answer in this protocol's shape. For gRPC-Web the content type is set to
    /// `application/grpc-web+proto`; a trailers-only answer has no body to encode, so it
    /// is readable by binary and text clients alike.
    pub fn error_response(self, error: ApiError) -> Response<Body> {
        match self {
            Self::Rest => error.into_response(),
            Self::Connect(shape) => shape.error_response(error),
            Self::Grpc | Self::GrpcWeb => {
                let retry_after = error.retry_after;
                let mut response: Response<Body> =
                    tonic::Status::new(error.code, error.message).into_http();
                if self == Self::GrpcWeb {
                    response.headers_mut().insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/grpc-web+proto"),
                    );
                }
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
        }
    }
}
