//! Signing in with a token (the admin token or an API key; the production path, OpenID
//! Connect, sits beside it) and signing out.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::form::Posted;
use super::{pages, session, UiError};
use crate::ScreensState;

/// The longest `next` path a sign-in carries back (a longer one goes to the client list).
pub const MAX_NEXT: usize = 2048;
use registry_api::auth::Role;

/// Where to go after signing in.
#[derive(Debug, Deserialize)]
pub struct Next {
    next: Option<String>,
}

/// Only a path of this site: never another origin (`//evil.example`, `https://…`, nor
/// `/\t/evil.example`, which a browser reads as `//evil.example` once it drops the tab). The
/// path is resolved against a fixed origin and kept only if it stays there, re-serialised.
pub fn safe_next(next: Option<&str>) -> String {
    const HOME: &str = "/clients";
    let Some(path) = next else {
        return HOME.to_owned();
    };
    if path.len() > MAX_NEXT
        || !path.starts_with('/')
        || path
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return HOME.to_owned();
    }
    let Ok(base) = url::Url::parse("https://registry.invalid/") else {
        return HOME.to_owned();
    };
    match base.join(path) {
        Ok(resolved)
            if resolved.origin() == base.origin()
                && !resolved.path().starts_with("//")
                && !resolved.path().starts_with("/sign-")
                && !resolved.path().starts_with("/oidc/") =>
        {
            let mut kept = resolved.path().to_owned();
            if let Some(query) = resolved.query() {
                kept.push('?');
                kept.push_str(query);
            }
            kept
        }
        _ => HOME.to_owned(),
    }
}

/// The sign-in page (or, already signed in, where it leads).
pub async fn form(
    State(state): State<ScreensState>,
    Query(query): Query<Next>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let next = safe_next(query.next.as_deref());
    if session::current(&state, &headers).await?.is_some() {
        return Ok(Redirect::to(&next).into_response());
    }
    Ok(pages::sign_in(&next, None, state.settings.oidc_enabled()).into_response())
}

/// Signs in with a token: a session for the principal it names.
pub async fn submit(
    State(state): State<ScreensState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    // Login CSRF: only a form of this site may sign a browser in.
    if !session::same_origin(&headers) {
        return Err(UiError::Csrf);
    }
    let posted = Posted::parse(&body);
    let next = safe_next(posted.one("next"));
    let token = posted.one("token").unwrap_or_default().trim();
    let credential = registry_api::auth::api_keys::digest(token);
    let principal = match token_principal(&state, token, &credential) {
        Ok(principal) => principal,
        Err(message) => {
            let page = pages::sign_in(&next, Some(message), state.settings.oidc_enabled());
            return Ok((StatusCode::UNAUTHORIZED, page).into_response());
        }
    };
    let cookie = session::start(&state, &principal, Some(&credential), None).await?;
    tracing::info!(actor = %principal.name, "signed in to the screens with a token");
    signed_in(cookie, &next)
}

/// To `next`, with the session's cookie.
fn signed_in(cookie: axum::http::HeaderValue, next: &str) -> Result<Response, UiError> {
    let location: axum::http::HeaderValue =
        (next.parse()).map_err(|_| UiError::Internal(anyhow::anyhow!("bad next")))?;
    let headers = [(header::SET_COOKIE, cookie), (header::LOCATION, location)];
    Ok((StatusCode::SEE_OTHER, headers).into_response())
}

/// Whose token this is, or why it cannot sign in. Only a configured token: the session
/// re-checks it at every request and ends when it is removed. A JWT access token is refused
/// — it expires, a session would outlive it.
fn token_principal(
    state: &ScreensState,
    token: &str,
    credential: &[u8; 32],
) -> Result<registry_api::auth::Principal, &'static str> {
    let Some(principal) = state.authenticator.principal_for_digest(credential) else {
        if registry_api::auth::jwt::looks_like_jwt(token) {
            return Err(
                "Access tokens are not accepted here: sign in through the identity \
                        service, or with the admin token or an API key.",
            );
        }
        return Err("This token was not accepted.");
    };
    if !principal.roles.contains(Role::ClientsRead) {
        return Err("This key cannot read the clients (it lacks the clients:read role).");
    }
    Ok(principal)
}

/// Signs out: the session is deleted, the cookie cleared.
pub async fn sign_out(
    State(state): State<ScreensState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, UiError> {
    if let Some(current) = session::current(&state, &headers).await? {
        current.check(Posted::parse(&body).one("csrf"), &headers)?;
    }
    let cleared = session::end(&state, &headers).await;
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cleared),
            (
                header::LOCATION,
                axum::http::HeaderValue::from_static("/sign-in"),
            ),
        ],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_only_ever_a_path_of_this_site() {
        assert_eq!(safe_next(Some("/clients/app?x=1")), "/clients/app?x=1");
        for hostile in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/ /evil.example",
            "evil",
            "/sign-out",
            "/oidc/login",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/clients", "{hostile}");
        }
        assert_eq!(safe_next(None), "/clients");
    }
}
