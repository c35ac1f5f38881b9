// Starts Swagger UI on the /docs page. It lives in its own file rather than in an inline
// script so that the page works under a Content-Security-Policy of script-src 'self'.
(function () {
  "use strict";
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // Keep the token entered with "Authorize" across reloads (in this browser's storage).
    persistAuthorization: true,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
    // Never send the document to validator.swagger.io: the page works offline.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "BaseLayout"
  });
})();
