//! The pages served by the binary, every byte embedded at build time: the API explorer
//! (`/docs`, vendored Swagger UI) and the audit console (`/console`, plain ES modules).
//! No CDN, no third-party request: the Content-Security-Policy allows this origin only
//! and no inline script.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// Scripts, styles and connections from this origin only; no inline script or style, no
/// eval: the console's policy, and the problem pages'.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The API explorer's: the same, but Swagger UI (React) sets inline `style` attributes.
/// Still no inline script.
pub const EXPLORER_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A year: vendored files under a versioned path never change.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Our own pages and modules: revalidated on every load, so a new binary is seen at once.
pub const REVALIDATE: &str = "no-cache";

pub const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// One embedded file.
pub struct Page {
    pub path: &'static str,
    pub body: &'static [u8],
    pub content_type: &'static str,
    pub cache_control: &'static str,
}

macro_rules! own {
    ($path:expr, $file:expr, $type:expr) => {
        Page { path: $path, body: include_bytes!($file), content_type: $type, cache_control: REVALIDATE }
    };
}

macro_rules! console {
    ($name:expr, $type:expr) => {
        own!(concat!("/console/", $name), concat!("../../assets/console/", $name), $type)
    };
}

/// Every embedded file, by the path it is served at.
pub const PAGES: &[Page] = &[
    own!("/docs", "docs.html", HTML),
    own!("/docs/assets/docs-init.js", "../../assets/docs-init.js", JS),
    own!("/docs/assets/docs.css", "../../assets/docs.css", CSS),
    Page {
        path: "/docs/vendor/swagger-ui-5.35.0/swagger-ui-bundle.js",
        body: include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
        content_type: JS,
        cache_control: IMMUTABLE,
    },
    Page {
        path: "/docs/vendor/swagger-ui-5.35.0/swagger-ui.css",
        body: include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
        content_type: CSS,
        cache_control: IMMUTABLE,
    },
    own!("/console", "../../assets/console/index.html", HTML),
    console!("app.js", JS),
    console!("api.js", JS),
    console!("amount.js", JS),
    console!("chart.js", JS),
    console!("credit.js", JS),
    console!("credits.js", JS),
    console!("dom.js", JS),
    console!("member.js", JS),
    console!("feed.js", JS),
    console!("session.js", JS),
    console!("console.css", CSS),
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    for page in PAGES {
        cfg.route(page.path, web::get().to(move || async move { serve(page) }));
    }
}

/// An embedded file with its type, caching and the security headers.
pub fn serve(page: &'static Page) -> HttpResponse {
    respond(page.content_type, page.cache_control, policy_for(page.path), page.body)
}

/// The Content-Security-Policy of a page: the explorer's under `/docs`, the strict one elsewhere.
pub fn policy_for(path: &str) -> &'static str {
    if path == "/docs" || path.starts_with("/docs/") {
        EXPLORER_CONTENT_SECURITY_POLICY
    } else {
        CONTENT_SECURITY_POLICY
    }
}

/// A 200 page with its type, caching and the security headers.
pub fn respond(
    content_type: &str,
    cache_control: &'static str,
    content_security_policy: &'static str,
    body: impl actix_web::body::MessageBody + 'static,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::CONTENT_SECURITY_POLICY, content_security_policy))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(body)
}
