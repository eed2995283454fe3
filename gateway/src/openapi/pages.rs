//! The documentation pages: Swagger UI at `/api/docs` and Redoc at `/api/redoc`, both loaded
//! from jsDelivr (allowed by the docs pages' content security policy) and pointed at
//! `/api/openapi.json`. Static strings: nothing is rendered per request.

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
  <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js" crossorigin="anonymous"></script>
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
  <script src="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js" crossorigin="anonymous"></script>
</body>
</html>
"##
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_pages_point_at_the_openapi_document() {
        assert!(docs_html().contains(OPENAPI_URL));
        assert!(docs_html().contains("swagger-ui-bundle.js"));
        assert!(redoc_html().contains(OPENAPI_URL));
        assert!(redoc_html().contains("redoc.standalone.js"));
    }
}
