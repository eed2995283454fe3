//! Security headers added to every answer. The documentation pages load Swagger UI and ReDoc
//! from a CDN, so they get a content security policy that allows those scripts; every other
//! answer is data and gets a policy that allows nothing.

use http::{HeaderMap, HeaderName, HeaderValue, header};

/// Policy for JSON and gRPC answers: nothing may be loaded or framed.
const DATA_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Policy for `/api/docs` and `/api/redoc`: their CDN scripts, styles and fonts, the
/// OpenAPI document from this origin, and nothing else.
const DOCS_CSP: &str = "default-src 'self'; \
     script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://unpkg.com https://cdn.redoc.ly; \
     style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://unpkg.com https://fonts.googleapis.com; \
     font-src 'self' data: https://fonts.gstatic.com https://cdn.jsdelivr.net; \
     img-src 'self' data: https:; \
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
