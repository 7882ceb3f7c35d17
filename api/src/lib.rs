//! The HTTP API of the client registry: the axum router with its middleware, the handlers,
//! problem+json errors, authentication and the OpenAPI document. Nothing else: the screens
//! are `registry-screens`, and the binary that configures and composes everything is
//! `client-registry` (`server/`).
//!
//! Handlers are thin: extract, call the write side (`registry-commands`) or the read side
//! (`registry-projections`), map the outcome.
#![cfg_attr(test, allow(clippy::restriction, clippy::too_many_lines))]

pub mod auth;
pub mod client_documents;
pub mod clients;
pub mod documents;
pub mod error;
pub mod events;
pub mod export_gate;
pub mod exports;
pub mod extract;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod registration;
pub mod responses;
pub mod sealed_log;
pub mod state;
pub mod supervisor;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::trace::TraceLayer;

use error::ApiError;
use extract::BODY_LIMIT;
use state::AppState;

/// How the HTTP surface behaves, from the configuration.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// A request (but an apply) taking longer answers 503 `timeout`.
    pub request_timeout_seconds: u64,
    /// Origins allowed to call the API from a browser, comma-separated (`None`: no CORS).
    pub cors_allowed_origins: Option<String>,
}

pub use logging::REQUEST_ID;

/// The router: `/api/v1` behind bearer authentication, probes and the OpenAPI document
/// beside it, `beside` (the screens) next to them, problem+json for unknown routes and
/// methods; around everything a body limit, a request timeout, security headers, CORS when
/// configured, request ids and tracing.
///
/// # Errors
/// A configured CORS origin that is not an origin.
pub fn router(state: AppState, options: &HttpOptions, beside: Router) -> anyhow::Result<Router> {
    let api = clients::router()
        .merge(client_documents::routes::router())
        .merge(events::router())
        .merge(exports::router())
        .merge(documents::router())
        .merge(sealed_log::router())
        .merge(registration::token_router())
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(
            state.authenticator.clone(),
            auth::require_bearer,
        ));
    let openapi = Arc::new(openapi::document());
    let timeout = options.request_timeout_seconds;
    let registration = if state.registration.is_some() {
        registration::public_router()
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(registration::MAX_METADATA_BYTES))
    } else {
        Router::new()
    };
    let router = Router::new()
        .nest("/api/v1", api)
        .merge(registration)
        .merge(health::router())
        .route(
            "/openapi.json",
            get(move || std::future::ready(json_text(&openapi))),
        )
        .fallback(not_found)
        .with_state(state.clone())
        .merge(beside)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(timeout, request_timeout))
        .layer(middleware::from_fn(security_headers))
        .layer(middleware::from_fn_with_state(
            state.draining.clone(),
            close_when_draining,
        ))
        // Added with `layer`, it runs once routing chose a route: it sees the route template.
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ));
    let router = match cors(options)? {
        Some(cors) => router.layer(cors),
        None => router,
    };
    Ok(router
        // Failures are logged once, by the request line (warn) and the error itself; the
        // default would add an ERROR line for every 503 of a probe while draining.
        .layer(
            TraceLayer::new_for_http()
                .on_failure(())
                .make_span_with(request_span),
        )
        .layer(middleware::from_fn(request_id)))
}

fn json_text(text: &str) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        text.to_owned(),
    )
        .into_response()
}

/// The span of a request: its method, path (never its query string), request id and trace.
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let trace_id = logging::trace_id(request.headers());
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        trace_id = trace_id.as_deref(),
    )
}

/// While the process shuts down, each answer closes its connection (`Connection: close`): a
/// client's next request opens a new one, which reaches another process once this one stops
/// accepting, instead of racing the close of a kept-alive connection.
async fn close_when_draining(
    State(draining): State<Arc<std::sync::atomic::AtomicBool>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if draining.load(std::sync::atomic::Ordering::Relaxed) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Answers 503 `timeout` when a request takes longer than the configured limit.
///
/// Not for `/api/v1/clients/apply`: it runs in a task of its own to the end whatever the
/// caller does, and a large apply (hundreds of secrets to hash) outlasts any timeout; a
/// timeout would tell the caller to retry while it goes on, and drop its generated secrets.
async fn request_timeout(State(seconds): State<u64>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/api/v1/clients/apply" {
        return next.run(request).await;
    }
    match tokio::time::timeout(std::time::Duration::from_secs(seconds), next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(seconds).into_response(),
    }
}

/// Headers that keep browsers from sniffing, framing or caching API responses (some carry
/// a secret shown once).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // The screens set a policy of their own (they load this origin's script and style).
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// CORS for browser callers of this API: off unless origins are configured.
fn cors(options: &HttpOptions) -> anyhow::Result<Option<tower_http::cors::CorsLayer>> {
    use axum::http::Method;
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let Some(list) = &options.cors_allowed_origins else {
        return Ok(None);
    };
    let mut origins = Vec::new();
    for raw in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let origin = registry_domain::values::CorsOrigin::parse(raw)
            .map_err(|e| anyhow::anyhow!("REGISTRY_CORS_ALLOWED_ORIGINS: {raw}: {e}"))?;
        origins.push(HeaderValue::from_str(origin.as_ref())?);
    }
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                header::HeaderName::from_static("x-change-reason"),
                header::HeaderName::from_static(REQUEST_ID),
            ])
            .expose_headers([
                header::ETAG,
                header::LOCATION,
                header::CONTENT_DISPOSITION,
                header::HeaderName::from_static(REQUEST_ID),
                header::HeaderName::from_static("x-feed-position"),
                header::HeaderName::from_static("x-export-rows"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    ))
}

async fn not_found() -> ApiError {
    ApiError::RouteNotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Gives every request an id: the caller's `x-request-id` when it is a short token of safe
/// characters (so it can be correlated across services), else a new UUID v7. The id is
/// recorded with events and returned in the response.
async fn request_id(mut request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        })
        .map(str::to_owned);
    let id = given.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let Ok(value) = HeaderValue::from_str(&id) else {
        return ApiError::Internal(anyhow::anyhow!("request id is not a header value"))
            .into_response();
    };
    request.headers_mut().insert(REQUEST_ID, value.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID, value);
    response
}
