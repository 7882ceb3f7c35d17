//! Sessions of the screens: created at sign-in, stored in the database (only the SHA-256 of
//! the session id), carried by a `__Host-` cookie (`Secure`, `HttpOnly`, `SameSite=Strict`,
//! `Path=/`), ended by "Sign out", by an idle timeout and by an absolute one.
//!
//! CSRF: every state-changing request carries the session's token in a hidden field, and must
//! come from this origin (`Sec-Fetch-Site: same-origin`, or an `Origin` naming this host).
//! Either missing or wrong: refused.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use registry_commands::sessions::NewSession;
use registry_commands::CommandContext;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::UiError;
use crate::ScreensState;
use registry_api::auth::{Principal, Role, Roles};

/// The session cookie. `__Host-`: only set over a secure connection, for this host only, with
/// `Path=/` (browsers treat `http://localhost` as secure).
pub const COOKIE: &str = "__Host-registry-session";

/// A session is touched (its idle deadline moved on) at most this often.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// A signed-in person, for one request.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the session id, hex (the stored key).
    pub id_sha256: String,
    /// Recorded as the actor of the changes made in this session.
    pub actor: String,
    /// What the session may do.
    pub roles: Roles,
    /// The token every form of this session carries.
    pub csrf_token: String,
}

impl Session {
    /// Whether the session may do what `role` allows (the screens offer only that).
    pub fn can(&self, role: Role) -> bool {
        self.roles.contains(role)
    }

    /// `Ok` when the session has `role`.
    ///
    /// # Errors
    /// [`UiError::Forbidden`].
    pub fn require(&self, role: Role) -> Result<(), UiError> {
        if self.can(role) {
            Ok(())
        } else {
            Err(UiError::Forbidden(role.to_string()))
        }
    }

    /// Checks a state-changing request: the form's token is this session's, and the request
    /// comes from this origin.
    ///
    /// # Errors
    /// [`UiError::Csrf`].
    pub fn check(&self, token: Option<&str>, headers: &HeaderMap) -> Result<(), UiError> {
        let token_matches = token
            .is_some_and(|token| bool::from(token.as_bytes().ct_eq(self.csrf_token.as_bytes())));
        if token_matches && same_origin(headers) {
            Ok(())
        } else {
            Err(UiError::Csrf)
        }
    }
}

/// Whether a state-changing request comes from a page of this origin: the browser says so
/// (`Sec-Fetch-Site: same-origin`), or, for browsers that do not send it, its `Origin` names
/// the host it was sent to. Neither header: refused (every browser sends one of them on a
/// form post; other clients use the API).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    match text(header::HeaderName::from_static("sec-fetch-site")) {
        Some(site) => site == "same-origin",
        None => match (text(header::ORIGIN), text(header::HOST)) {
            (Some(origin), Some(host)) => url::Url::parse(origin).is_ok_and(|origin| {
                let authority = match (origin.host_str(), origin.port()) {
                    (Some(name), Some(port)) => format!("{name}:{port}"),
                    (Some(name), None) => name.to_owned(),
                    _ => return false,
                };
                authority.eq_ignore_ascii_case(host)
            }),
            _ => false,
        },
    }
}

/// SHA-256 of a session id, hex.
fn digest(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()).into())
}

fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(bytes)
}

/// 256 random bits, URL-safe.
fn random_token() -> String {
    registry_commands::SecretString::generate()
        .expose()
        .to_owned()
}

fn now() -> i64 {
    registry_api::extract::now().timestamp()
}

/// The session id in the request's cookie, if any.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE)
}

/// The value of the request's cookie `name`, if any.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.to_owned())
}

/// The shortest a session through the identity service lasts, whatever its token says.
pub const MIN_LIFETIME_SECONDS: i64 = 60;

/// Starts a session for `principal`; returns the `Set-Cookie` value. `credential` is the
/// SHA-256 of the token it was begun with (the session ends when that token is no longer
/// configured, and follows its roles), `None` for the identity service, whose token lives
/// `lifetime` seconds (the session then ends with it).
///
/// # Errors
/// [`UiError::Unavailable`] when it cannot be stored.
pub async fn start(
    state: &ScreensState,
    principal: &Principal,
    credential: Option<&[u8; 32]>,
    lifetime: Option<i64>,
) -> Result<HeaderValue, UiError> {
    let id = random_token();
    let csrf = random_token();
    let now = now();
    let settings = &state.settings;
    // Roles granted by the identity service hold as long as its token: the session ends then
    // (and the next page signs in again, silently while the identity service's own session
    // lasts), so a role taken away there is gone here within one token lifetime.
    let absolute = lifetime.map_or(settings.absolute_seconds, |seconds| {
        seconds
            .max(MIN_LIFETIME_SECONDS)
            .min(settings.absolute_seconds)
    });
    let roles = principal.roles.to_string();
    let credential = credential.map(hex);
    let _ = state.database.purge_sessions(now).await;
    state
        .database
        .create_session(&NewSession {
            id_sha256: &digest(&id),
            csrf_token: &csrf,
            actor: &principal.name,
            roles: &roles,
            now,
            expires_at: now + settings.idle_seconds,
            absolute_expires_at: now + absolute,
            credential_sha256: credential.as_deref(),
        })
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot store a session");
            UiError::Unavailable
        })?;
    HeaderValue::from_str(&format!(
        "{COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={absolute}"
    ))
    .map_err(|e| UiError::Internal(e.into()))
}

/// Ends the session of this request (if any); returns the `Set-Cookie` value that clears the
/// cookie.
pub async fn end(state: &ScreensState, headers: &HeaderMap) -> HeaderValue {
    if let Some(id) = cookie_value(headers) {
        let _ = state.database.delete_session(&digest(&id)).await;
    }
    HeaderValue::from_static(
        "__Host-registry-session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
    )
}

/// The live session of a request, if any (touching it when due).
///
/// # Errors
/// [`UiError::Unavailable`] when the database cannot be asked.
pub async fn current(
    state: &ScreensState,
    headers: &HeaderMap,
) -> Result<Option<Session>, UiError> {
    let Some(id) = cookie_value(headers) else {
        return Ok(None);
    };
    let id_sha256 = digest(&id);
    let now = now();
    let row = state
        .database
        .find_session(&id_sha256, now)
        .await
        .map_err(|_| UiError::Unavailable)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut roles = Roles::parse(&row.roles).unwrap_or_default();
    if row.credential_sha256.is_none() && !state.settings.oidc_enabled() {
        // Begun through the identity service, which this process no longer uses.
        let _ = state.database.delete_session(&id_sha256).await;
        return Ok(None);
    }
    if let Some(credential) = &row.credential_sha256 {
        // Begun with a token: only while that token is still configured, with its roles now.
        match unhex(credential).and_then(|d| state.authenticator.principal_for_digest(&d)) {
            Some(principal) => roles = principal.roles,
            None => {
                let _ = state.database.delete_session(&id_sha256).await;
                tracing::info!(actor = %row.actor, "session ended: its token is no longer configured");
                return Ok(None);
            }
        }
    }
    if now - row.last_seen_at >= TOUCH_EVERY_SECONDS {
        let _ = state
            .database
            .touch_session(&id_sha256, now, now + state.settings.idle_seconds)
            .await;
    }
    Ok(Some(Session {
        id_sha256,
        actor: row.actor,
        roles,
        csrf_token: row.csrf_token,
    }))
}

/// A form posted to change clients: the session (which may change clients), the fields and
/// the request's headers, the CSRF token and the origin checked — what every form of the
/// client screens starts with.
pub struct WriteForm {
    /// The signed-in session.
    pub session: Session,
    /// The posted fields.
    pub posted: crate::form::Posted,
    /// The request's headers (its id, htmx).
    pub headers: HeaderMap,
}

impl WriteForm {
    /// The metadata of the change this form asks for: the signed-in person, the request, the
    /// reason typed into the form (control characters become spaces; at most 500 characters).
    pub fn context(&self) -> CommandContext {
        let reason = self.posted.one("reason").map(|r| {
            r.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(registry_api::extract::MAX_REASON_LEN)
                .collect::<String>()
                .trim()
                .to_owned()
        });
        let request_id = self.headers.get(registry_api::REQUEST_ID);
        CommandContext {
            actor: self.session.actor.clone(),
            request_id: request_id
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            reason: reason.filter(|r| !r.is_empty()),
            at: registry_api::extract::now(),
        }
    }
}

impl axum::extract::FromRequest<ScreensState> for WriteForm {
    type Rejection = axum::response::Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &ScreensState,
    ) -> Result<Self, Self::Rejection> {
        use axum::response::IntoResponse;
        let (mut parts, body) = request.into_parts();
        let session = (Session::from_request_parts(&mut parts, state).await)
            .map_err(IntoResponse::into_response)?;
        let headers = parts.headers.clone();
        let request = axum::extract::Request::from_parts(parts, body);
        let bytes = (axum::body::Bytes::from_request(request, state).await)
            .map_err(IntoResponse::into_response)?;
        let posted = crate::form::Posted::parse(&bytes);
        session
            .check(posted.one("csrf"), &headers)
            .and_then(|()| session.require(Role::ClientsWrite))
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            session,
            posted,
            headers,
        })
    }
}

impl FromRequestParts<ScreensState> for Session {
    type Rejection = UiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ScreensState,
    ) -> Result<Self, Self::Rejection> {
        let session = current(state, &parts.headers).await?;
        if let Some(session) = &session {
            registry_api::logging::name_actor(&parts.extensions, &session.actor);
        }
        // A page asked for with a session that ended (its identity service's token ran out):
        // sign in again through the identity service straight away, which takes no click
        // while the person's session there lasts, and checks their roles afresh.
        let renew = state.settings.oidc_enabled()
            && parts.method == axum::http::Method::GET
            && cookie_value(&parts.headers).is_some();
        session.ok_or_else(|| UiError::SignIn {
            next: parts
                .uri
                .path_and_query()
                .map_or("/clients".to_owned(), ToString::to_string),
            renew,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_request_is_same_origin_only_when_the_browser_says_so() {
        assert!(same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "same-site")])));
        assert!(same_origin(&headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:8080")
        ])));
    }

    #[test]
    fn a_digest_survives_hex() {
        let digest = [0xa5; 32];
        assert_eq!(unhex(&hex(&digest)), Some(digest));
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(&"é".repeat(32)), None);
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let map = headers(&[("cookie", "a=1; __Host-registry-session=abc; b=2")]);
        assert_eq!(cookie_value(&map).as_deref(), Some("abc"));
        assert_eq!(cookie_value(&headers(&[("cookie", "a=1")])), None);
    }
}
