//! The request id: taken from the client's `x-request-id` when it is a sane token, otherwise a
//! fresh UUID. It is returned on every response, carried in the log span and error bodies, and
//! forwarded to upstream services.

use http::{HeaderMap, HeaderName};

/// `x-request-id`.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied id accepted as is.
const MAX_LEN: usize = 128;

/// The id of the request being served; stored in the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The client's id if it is 1 to 128 characters of `[A-Za-z0-9._:-]`, else a new UUID.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        headers
            .get(&X_REQUEST_ID)
            .and_then(|value| value.to_str().ok())
            .filter(|id| is_acceptable(id))
            .map(|id| Self(id.to_owned()))
            .unwrap_or_else(|| Self(uuid::Uuid::new_v4().to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_client_id_is_kept_and_anything_else_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(&X_REQUEST_ID, http::HeaderValue::from_static("abc-123"));
        assert_eq!(RequestId::from_headers(&headers).as_str(), "abc-123");

        headers.insert(
            &X_REQUEST_ID,
            http::HeaderValue::from_static("bad id <script>"),
        );
        let replaced = RequestId::from_headers(&headers);
        assert!(uuid::Uuid::parse_str(replaced.as_str()).is_ok());
    }
}
