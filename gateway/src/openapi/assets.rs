//! The documentation pages' scripts and styles, embedded in the binary so `/api/docs` and
//! `/api/redoc` work without internet access: Swagger UI and Redoc from their npm packages at
//! pinned versions (vendored in `gateway/assets/` by its `refresh.sh`, which checks each
//! package's integrity), and Swagger UI's start-up script.
//!
//! Each path names its package version, so answers may be cached for a year (`immutable`): an
//! upgrade changes the paths. Compression is the edge's (see [`crate::compression`]).

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};

/// Where the assets are served.
pub const PREFIX: &str = "/api/docs/assets/";

/// Swagger UI's script, stylesheet and start-up script; Redoc's standalone bundle.
pub const SWAGGER_UI_BUNDLE: &str = "/api/docs/assets/swagger-ui-dist@5.35.0/swagger-ui-bundle.js";
pub const SWAGGER_UI_CSS: &str = "/api/docs/assets/swagger-ui-dist@5.35.0/swagger-ui.css";
pub const SWAGGER_INITIALIZER: &str = "/api/docs/assets/director@1/swagger-initializer.js";
pub const REDOC_STANDALONE: &str = "/api/docs/assets/redoc@2.5.4/redoc.standalone.js";

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its full path (under [`PREFIX`]).
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

static ASSETS: [Asset; 4] = [
    Asset {
        path: SWAGGER_UI_BUNDLE,
        content_type: JAVASCRIPT,
        bytes: include_bytes!("../../assets/swagger-ui-dist@5.35.0/swagger-ui-bundle.js"),
    },
    Asset {
        path: SWAGGER_UI_CSS,
        content_type: CSS,
        bytes: include_bytes!("../../assets/swagger-ui-dist@5.35.0/swagger-ui.css"),
    },
    Asset {
        path: SWAGGER_INITIALIZER,
        content_type: JAVASCRIPT,
        bytes: include_bytes!("../../assets/swagger-initializer.js"),
    },
    Asset {
        path: REDOC_STANDALONE,
        content_type: JAVASCRIPT,
        bytes: include_bytes!("../../assets/redoc@2.5.4/redoc.standalone.js"),
    },
];

/// The asset served at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

/// Answers with `asset`, cacheable for a year.
pub fn response(asset: &'static Asset) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        Body::from(asset.bytes),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_under_the_prefix_and_found_by_its_path() {
        for asset in &ASSETS {
            assert!(asset.path.starts_with(PREFIX), "{}", asset.path);
            assert!(!asset.bytes.is_empty(), "{}", asset.path);
            assert!(std::ptr::eq(find(asset.path).expect("found"), asset));
        }
        assert!(find("/api/docs/assets/../openapi.json").is_none());
        assert!(find(PREFIX).is_none());
    }
}
