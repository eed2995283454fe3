// Starts Swagger UI on /api/docs (served by the gateway as a file, so the page's content
// security policy needs no inline script), reading the document the page's
// `data-openapi-url` names. "Authorize" takes a bearer token (a Supabase access
// token) and keeps it across reloads; the online validator badge is off (it would call out).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: document.getElementById("swagger-ui").dataset.openapiUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    displayRequestDuration: true,
    validatorUrl: null
  });
});
