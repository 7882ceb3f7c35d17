//! `GET /oidc/login` (to the identity service) and `GET /oidc/callback` (back from it).

#[allow(clippy::wildcard_imports)]
use super::*;

/// Where a sign-in through the identity service starts.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub(super) fn login_cookie(headers: &HeaderMap) -> Option<String> {
    crate::session::cookie(headers, LOGIN_COOKIE)
}

/// `GET /oidc/login`: to the identity service.
pub async fn login(
    State(state): State<ScreensState>,
    Query(query): Query<LoginQuery>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let Some(oidc) = state.settings.oidc.as_ref() else {
        return Err(UiError::NotFound);
    };
    let discovery = oidc.discovery().await.map_err(|e| {
        tracing::warn!(error = %e, "identity service unavailable");
        UiError::Unavailable
    })?;
    let login = PendingLogin {
        state: random(),
        pkce_verifier: random(),
        nonce: random(),
        next_path: safe_next(query.next.as_deref()),
        expires_at: registry_api::extract::now().timestamp() + LOGIN_SECONDS,
    };
    let location = authorization_url(oidc, &discovery, &login, &headers);
    let mut response = Redirect::to(&location).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, login_cookie_for(oidc, &login)?);
    Ok(response)
}

/// Where the browser goes: the identity service's authorization endpoint, with this sign-in's
/// state, nonce and PKCE challenge (S256).
fn authorization_url(
    oidc: &Oidc,
    discovery: &Discovery,
    login: &PendingLogin,
    headers: &HeaderMap,
) -> String {
    let endpoint = &discovery.authorization_endpoint;
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    format!(
        "{endpoint}{separator}response_type=code&client_id={}&redirect_uri={}&scope={}\
         &state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
        encode(&oidc.config.client_id),
        encode(&oidc.redirect_uri(headers)),
        encode(&oidc.config.scopes),
        encode(&login.state),
        encode(&login.nonce),
        code_challenge(&login.pkce_verifier),
    )
}

/// The sign-in under way, sealed into the browser's short-lived login cookie.
fn login_cookie_for(oidc: &Oidc, login: &PendingLogin) -> Result<HeaderValue, UiError> {
    let sealed = login
        .seal(&oidc.login_key)
        .map_err(|e| UiError::Internal(e.into()))?;
    HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={sealed}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={LOGIN_SECONDS}"
    ))
    .map_err(|e| UiError::Internal(e.into()))
}

/// The identity service's answer.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub(super) fn refused(status: StatusCode, text: &str) -> Response {
    (status, pages::message(None, "Sign-in failed", text)).into_response()
}

/// `GET /oidc/callback`: the answer of the identity service.
pub async fn callback(
    State(state): State<ScreensState>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let Some(oidc) = state.settings.oidc.as_ref() else {
        return Err(UiError::NotFound);
    };
    let (login, code) = match answer(oidc, &query, &headers) {
        Ok(answer) => answer,
        Err((status, why)) => return Ok(refused(status, why)),
    };
    match oidc
        .finish(&code, &login, &oidc.redirect_uri(&headers))
        .await
    {
        Ok(signed_in) => signed_in_page(&state, signed_in, &login.next_path).await,
        Err(error) => Ok(not_signed_in(oidc, error)),
    }
}

/// The identity service's answer to a sign-in this browser started: the sign-in and its
/// code, or the status and words of the page that says why not.
fn answer(
    oidc: &Oidc,
    query: &CallbackQuery,
    headers: &HeaderMap,
) -> Result<(PendingLogin, String), (StatusCode, &'static str)> {
    let Some(login) = pending_login(oidc, query, headers) else {
        tracing::warn!(error = %OidcError::State, "sign-in refused");
        return Err((
            StatusCode::BAD_REQUEST,
            "This answer of the identity service does not belong to a sign-in started in this \
             browser (or it was already used, or took too long). Start again.",
        ));
    };
    if let Some(error) = &query.error {
        tracing::info!(%error, description = ?query.error_description, "the identity service refused the sign-in");
        return Err((
            StatusCode::FORBIDDEN,
            "The identity service did not sign you in.",
        ));
    }
    match &query.code {
        Some(code) => Ok((login, code.clone())),
        None => Err((
            StatusCode::BAD_REQUEST,
            "The identity service sent no code.",
        )),
    }
}

/// The page when the sign-in could not be finished: no role here, or a failure.
fn not_signed_in(oidc: &Oidc, error: OidcError) -> Response {
    match error {
        OidcError::NoRole(name) => {
            tracing::info!(actor = %name, "signed in at the identity service, but no role here");
            let page = pages::no_role(&name, oidc.config.roles_claim.as_deref());
            (StatusCode::FORBIDDEN, page).into_response()
        }
        error => {
            tracing::warn!(%error, "sign-in through the identity service failed");
            refused(
                StatusCode::BAD_GATEWAY,
                "The sign-in could not be completed.",
            )
        }
    }
}

/// The sign-in this browser started (its signed cookie), answered with its own state, for
/// the first time: an answer carried to another browser, a forged state, an expired sign-in
/// or one already used is `None`.
fn pending_login(oidc: &Oidc, query: &CallbackQuery, headers: &HeaderMap) -> Option<PendingLogin> {
    let now = registry_api::extract::now().timestamp();
    let login = match (&query.state, login_cookie(headers)) {
        (Some(state_token), Some(cookie)) => {
            PendingLogin::open(&oidc.login_key, &cookie, state_token, now)
        }
        _ => None,
    }?;
    let first = oidc
        .answered
        .lock()
        .is_ok_and(|mut answered| answered.first_answer(&login.state, login.expires_at, now));
    first.then_some(login)
}

/// The session started, its cookie set, the sign-in cookie cleared, and a page that goes on
/// to `next`.
async fn signed_in_page(
    state: &ScreensState,
    signed_in: SignedIn,
    next: &str,
) -> Result<Response, UiError> {
    let SignedIn {
        principal,
        lifetime,
    } = signed_in;
    let session = session::start(state, &principal, None, lifetime).await?;
    tracing::info!(actor = %principal.name, "signed in through the identity service");
    // A page of this site, not a redirect: the session cookie is SameSite=Strict, and a
    // browser does not send it on a redirect chain the identity service started.
    let mut response = pages::continue_to(next).into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, session);
    headers.append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "__Host-registry-login=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0",
        ),
    );
    Ok(response)
}
