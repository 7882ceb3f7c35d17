//! The admin guide's screens, served by the registry itself at `/`: the client list with its
//! toolbar, the create and edit form, "Set New Secret", delete with a confirmation, and a
//! client's history.
//!
//! Server-rendered HTML ([maud], escaped by default); every form is a real
//! `<form method="post">` that works with JavaScript off, and htmx (vendored, see
//! `screens/assets/VENDORED.md`) only enhances: search as you type, paging without a reload, the
//! delete dialog. Pages call the same command and query layer as the API, with the same roles,
//! and record the signed-in person as the actor of every change.
//!
//! Sign-in creates a server-side session ([`session`]): stored in the database (only a hash of
//! its id), carried by a `__Host-` cookie, with idle and absolute timeouts; every
//! state-changing request needs the session's CSRF token and a same-origin request. `/api/v1`
//! never looks at the cookie.
#![cfg_attr(test, allow(clippy::restriction, clippy::too_many_lines))]

pub mod assets;
mod client_document;
mod clients;
mod findings;
pub mod form;
mod listing;
pub mod oidc;
pub mod pages;
pub mod registration;
pub mod session;
mod sign_in;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use registry_api::state::AppState;

/// What every screen handler reads: the services the API uses (through `Deref`) and the
/// screens' own settings.
#[derive(Clone)]
pub struct ScreensState {
    app: AppState,
    /// Sessions and sign-in.
    pub settings: std::sync::Arc<UiSettings>,
}

impl ScreensState {
    /// The screens over `app`'s services.
    pub fn new(app: AppState, settings: UiSettings) -> Self {
        Self {
            app,
            settings: std::sync::Arc::new(settings),
        }
    }
}

impl std::ops::Deref for ScreensState {
    type Target = AppState;

    fn deref(&self) -> &AppState {
        &self.app
    }
}

impl axum::extract::FromRef<ScreensState> for AppState {
    fn from_ref(state: &ScreensState) -> Self {
        state.app.clone()
    }
}

/// Settings of the screens.
#[derive(Debug)]
pub struct UiSettings {
    /// A session ends after this long without a request.
    pub idle_seconds: i64,
    /// A session ends this long after sign-in, whatever happens.
    pub absolute_seconds: i64,
    /// Sign-in through the identity service, when configured.
    pub oidc: Option<oidc::Oidc>,
}

impl UiSettings {
    /// Whether sign-in through OpenID Connect is offered.
    pub fn oidc_enabled(&self) -> bool {
        self.oidc.is_some()
    }
}

/// The content security policy of every screen: scripts, styles and images from this origin
/// only, no inline script or style, forms posting to this origin only, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

/// The routes of the screens (none under `/api`), over `state`.
pub fn router(state: ScreensState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/clients") }))
        .route("/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/oidc/login", get(oidc::login))
        .route("/oidc/callback", get(oidc::callback))
        .merge(clients::router())
        .merge(client_document::router())
        .merge(findings::router())
        .merge(registration::router())
        .route_layer(middleware::from_fn(screen_headers))
        .merge(assets::router())
        .with_state(state)
}

/// Headers of every screen: their own CSP (the API's `default-src 'none'` would forbid the
/// stylesheet and script), and no caching (pages show clients and sometimes a secret).
async fn screen_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Why a screen could not be shown, as a page.
#[derive(Debug)]
pub enum UiError {
    /// Not signed in (or the session ended): to the sign-in page, then back.
    SignIn {
        /// Where to go back to.
        next: String,
        /// Through the identity service at once (a session of a browser that had one ended).
        renew: bool,
    },
    /// Signed in, but the session's roles do not allow this.
    Forbidden(String),
    /// A state-changing request without the session's CSRF token or from another origin.
    Csrf,
    /// No such client.
    NotFound,
    /// The database or the service is unavailable, or overloaded.
    Unavailable,
    /// Anything else (logged with the request id).
    Internal(anyhow::Error),
}

impl From<registry_api::error::ApiError> for UiError {
    fn from(error: registry_api::error::ApiError) -> Self {
        use registry_api::error::ApiError;
        match error {
            ApiError::ClientNotFound | ApiError::RouteNotFound => Self::NotFound,
            ApiError::Forbidden(role) => Self::Forbidden(role.to_string()),
            ApiError::Unavailable(_)
            | ApiError::Overloaded
            | ApiError::Timeout(_)
            | ApiError::NotReady(_) => Self::Unavailable,
            ApiError::Internal(cause) => Self::Internal(cause),
            other => Self::Internal(anyhow::anyhow!("{other}")),
        }
    }
}

impl From<registry_projections::ReadError> for UiError {
    fn from(error: registry_projections::ReadError) -> Self {
        registry_api::error::ApiError::from(error).into()
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, text) = match self {
            Self::SignIn { next, renew } => {
                let page = if renew { "/oidc/login" } else { "/sign-in" };
                let target = format!("{page}?next={}", form::encode(&next));
                return Redirect::to(&target).into_response();
            }
            Self::Forbidden(role) => (
                StatusCode::FORBIDDEN,
                "Not allowed",
                format!("Your sign-in does not have the role this needs ({role})."),
            ),
            Self::Csrf => (
                StatusCode::FORBIDDEN,
                "Request refused",
                "This form was not sent from this registry's own page, or your session \
                 changed. Go back, reload the page and try again."
                    .to_owned(),
            ),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is no such client (it may have been deleted).".to_owned(),
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The registry cannot answer right now. Try again in a moment.".to_owned(),
            ),
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "screen failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The registry could not show this page. The log has the details, under \
                     this request's id."
                        .to_owned(),
                )
            }
        };
        (status, pages::message(None, title, &text)).into_response()
    }
}
