//! Security headers added to every answer. The documentation pages load Swagger UI and Redoc
//! from the gateway itself, so they get a content security policy that allows this origin's
//! scripts, styles and the OpenAPI document, and nothing from elsewhere; every other answer is
//! data and gets a policy that allows nothing.

use http::{HeaderMap, HeaderName, HeaderValue, header};

/// Policy for JSON and gRPC answers: nothing may be loaded or framed.
const DATA_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Policy for `/api/docs` and `/api/redoc`: scripts from this origin only (no inline script);
/// inline styles, which both renderers set on their elements; images and fonts from this
/// origin or inline (`data:`); Redoc's search worker (`blob:`); the document from this origin.
const DOCS_CSP: &str = "default-src 'self'; \
     script-src 'self'; \
     style-src 'self' 'unsafe-inline'; \
     font-src 'self' data:; \
     img-src 'self' data:; \
     worker-src 'self' blob:; \
     connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'self'";

/// Whether `path` is one of the documentation pages.
pub fn is_docs_page(path: &str) -> bool {
    matches!(path, "/api/docs" | "/api/redoc")
}

/// Adds the security headers; values already set by a handler are kept.
pub fn apply(headers: &mut HeaderMap, docs_page: bool, strict_transport: bool) {
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        if docs_page { DOCS_CSP } else { DATA_CSP },
    );
    if strict_transport {
        set(
            headers,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    headers
        .entry(name)
        .or_insert_with(|| HeaderValue::from_static(value));
}
