//! Dynamic client registration: `POST /register` (RFC 7591) admitted by an initial access
//! token, and the client configuration endpoint `GET`/`PUT`/`DELETE /register/{client_id}`
//! (RFC 7592) with the client's registration access token. Off unless configured
//! (`REGISTRY_DYNAMIC_REGISTRATION`); the tokens are managed under `/api/v1` ([`tokens`]).
//!
//! Every registration is a `ClientRegistered` event whose actor names the initial access
//! token (`initial-access-token:<id>`); a change through RFC 7592 is the client's own
//! (`registration:<client_id>`). Writes run in their own task: a caller that goes away
//! mid-request neither half-registers a client nor loses a use it did not make.

pub mod endpoint;
pub mod error;
pub mod limit;
pub mod metadata;
pub mod tokens;

use axum::http::{header, HeaderName, HeaderValue};
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;
pub use crate::state::Registration;

pub use endpoint::{delete_registration, read_registration, register, replace_registration};

/// The largest client metadata document `/register` takes.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;

/// The admin routes of initial access tokens (under `/api/v1`, behind the bearer check).
pub fn token_router() -> Router<AppState> {
    Router::new()
        .route(
            "/initial-access-tokens",
            get(tokens::list_tokens).post(tokens::create_token),
        )
        .route(
            "/initial-access-tokens/{token_id}",
            get(tokens::get_token).delete(tokens::revoke_token),
        )
}

/// The public registration routes (their own tokens; no admin bearer).
pub fn public_router() -> Router<AppState> {
    Router::new().route("/register", post(register)).route(
        "/register/{client_id}",
        get(read_registration)
            .put(replace_registration)
            .delete(delete_registration),
    )
}

/// `Cache-Control: no-store` and `Pragma: no-cache`: a response with a token or a secret
/// is never cached (RFC 7591 §3.2.1).
pub fn no_store() -> [(HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}
