// Starts Swagger UI on /openapi.json, served by this same binary. No validator badge
// (it would call validator.swagger.io) and no persisted authorization (the token stays
// in memory, never in localStorage).
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: false,
    validatorUrl: null,
    persistAuthorization: false,
    tryItOutEnabled: false,
    displayRequestDuration: true,
    layout: "BaseLayout",
  });
});
