//! The screens' static files, compiled into the binary: the stylesheet, a few lines of script
//! (copy button, delete dialog, right-click menu), and htmx, vendored (`api/assets/VENDORED.md`
//! records its version and checksum). No CDN, no build step.

use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::ScreensState;

const HTMX: &str = include_str!("../assets/htmx-2.0.11.min.js");
const CSS: &str = include_str!("../assets/app.css");
const SCRIPT: &str = include_str!("../assets/app.js");

/// The asset routes.
pub fn router() -> Router<ScreensState> {
    Router::new()
        .route(
            super::pages::HTMX,
            get(|| async { serve(HTMX, "text/javascript", true) }),
        )
        .route(
            "/assets/app.css",
            get(|| async { serve(CSS, "text/css", false) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { serve(SCRIPT, "text/javascript", false) }),
        )
}

/// A static file: cached for a year when its name carries its version, else revalidated.
fn serve(body: &'static str, content_type: &'static str, versioned: bool) -> impl IntoResponse {
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        body,
    )
}
