//! The documentation pages: Swagger UI at `/api/docs` and Redoc at `/api/redoc`, both loaded
//! from jsDelivr (allowed by the docs pages' content security policy) at exact versions with
//! subresource integrity, and pointed at `/api/openapi.json`. Static strings: nothing is
//! rendered per request. To upgrade, change the version and recompute each hash:
//! `npm pack <package>@<version>` and `openssl dgst -sha384 -binary <file> | base64`.

/// Where the pages read the document.
pub const OPENAPI_URL: &str = "/api/openapi.json";

/// Swagger UI. "Authorize" takes a bearer token (Supabase access token) and keeps it across
/// reloads.
pub fn docs_html() -> &'static str {
    r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>IntegrationDirector API — Swagger UI</title>
  <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0/swagger-ui.css" integrity="sha384-WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I" crossorigin="anonymous">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5.35.0/swagger-ui-bundle.js" integrity="sha384-gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9" crossorigin="anonymous"></script>
  <script>
    window.addEventListener("load", function () {
      window.ui = SwaggerUIBundle({
        url: "/api/openapi.json",
        dom_id: "#swagger-ui",
        deepLinking: true,
        persistAuthorization: true,
        displayRequestDuration: true
      });
    });
  </script>
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
  <script src="https://cdn.jsdelivr.net/npm/redoc@2.5.4/bundles/redoc.standalone.js" integrity="sha384-w447zOpYfw/1Tv/5AK9NfHTlQIqE3RVR6KY62jCyy9zNDgO64cMwGGP1Fj0zJVf5" crossorigin="anonymous"></script>
</body>
</html>
"##
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every asset from the CDN names an exact version and carries its subresource-integrity
    /// hash (the sha384 of the file in the npm package, which jsDelivr serves unchanged), so
    /// a changed or compromised file is refused by the browser.
    #[test]
    fn cdn_assets_are_pinned_with_subresource_integrity() {
        for page in [docs_html(), redoc_html()] {
            let tags: Vec<&str> = page
                .split('<')
                .filter(|tag| tag.contains("cdn.jsdelivr.net"))
                .collect();
            assert!(!tags.is_empty());
            for tag in tags {
                assert!(tag.contains("integrity=\"sha384-"), "{tag}");
                assert!(tag.contains("crossorigin=\"anonymous\""), "{tag}");
                let version = tag
                    .split("/npm/")
                    .nth(1)
                    .and_then(|rest| rest.split('/').next())
                    .and_then(|package| package.rsplit('@').next())
                    .unwrap_or_default();
                assert_eq!(version.split('.').count(), 3, "an exact version: {tag}");
            }
        }
    }

    #[test]
    fn both_pages_point_at_the_openapi_document() {
        assert!(docs_html().contains(OPENAPI_URL));
        assert!(docs_html().contains("swagger-ui-bundle.js"));
        assert!(redoc_html().contains(OPENAPI_URL));
        assert!(redoc_html().contains("redoc.standalone.js"));
    }
}
