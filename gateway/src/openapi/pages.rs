//! The documentation pages: Swagger UI at `/api/docs` and Redoc at `/api/redoc`, both pointed
//! at `/api/openapi.json` and loading their scripts and styles from the gateway itself
//! ([`super::assets`], pinned npm packages embedded in the binary), so they render without
//! internet access. Static strings: nothing is rendered per request; no inline script (the
//! pages' content security policy allows scripts from this origin only).

/// Where the pages read the document.
pub const OPENAPI_URL: &str = "/api/openapi.json";

/// Swagger UI. "Authorize" takes a bearer token (Supabase access token) and keeps it across
/// reloads (see `gateway/assets/swagger-initializer.js`, which reads `data-openapi-url`).
pub fn docs_html() -> &'static str {
    r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>IntegrationDirector API — Swagger UI</title>
  <link rel="stylesheet" href="/api/docs/assets/swagger-ui-dist@5.35.0/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="/api/openapi.json"></div>
  <script src="/api/docs/assets/swagger-ui-dist@5.35.0/swagger-ui-bundle.js"></script>
  <script src="/api/docs/assets/director@1/swagger-initializer.js"></script>
</body>
</html>
"##
}

/// Redoc, a read-only reference page.
pub fn redoc_html() -> &'static str {
    r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>IntegrationDirector API — Redoc</title>
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <redoc spec-url="/api/openapi.json"></redoc>
  <script src="/api/docs/assets/redoc@2.5.4/redoc.standalone.js"></script>
</body>
</html>
"##
}

#[cfg(test)]
mod tests {
    use super::super::assets;
    use super::*;

    /// The `src` and `href` values of `page`.
    fn references(page: &str) -> Vec<&str> {
        ["src=\"", "href=\""]
            .iter()
            .flat_map(|attribute| page.split(attribute).skip(1))
            .filter_map(|rest| rest.split('"').next())
            .collect()
    }

    /// Every script and stylesheet is one the gateway embeds: nothing is loaded from
    /// another origin.
    #[test]
    fn pages_load_only_embedded_assets() {
        for page in [docs_html(), redoc_html()] {
            let references = references(page);
            assert!(!references.is_empty());
            for reference in references {
                assert!(
                    assets::find(reference).is_some(),
                    "not embedded: {reference}"
                );
            }
            assert!(!page.contains("https://"), "{page}");
        }
        assert_eq!(
            references(docs_html()),
            [
                assets::SWAGGER_UI_BUNDLE,
                assets::SWAGGER_INITIALIZER,
                assets::SWAGGER_UI_CSS
            ]
        );
        assert_eq!(references(redoc_html()), [assets::REDOC_STANDALONE]);
    }

    #[test]
    fn both_pages_point_at_the_openapi_document() {
        assert!(docs_html().contains(&format!("data-openapi-url=\"{OPENAPI_URL}\"")));
        let initializer = assets::find(assets::SWAGGER_INITIALIZER).expect("embedded");
        let initializer = std::str::from_utf8(initializer.bytes).expect("UTF-8");
        assert!(initializer.contains("dataset.openapiUrl"));
        assert!(redoc_html().contains(&format!("spec-url=\"{OPENAPI_URL}\"")));
    }
}
