//! Sign-in through the identity service: OpenID Connect, authorization code with PKCE
//! (RFC 7636, S256), `state` and `nonce` checked.
//!
//! `/oidc/login` records the sign-in under way in the database (so that the answer may reach
//! any process), keyed by a digest of `state`, with the PKCE verifier, the nonce and a digest
//! of a login cookie set on this browser (`SameSite=Lax`: it must come back on the identity
//! service's redirect), then redirects to the authorization endpoint. `/oidc/callback` takes
//! that record (single use), checks the cookie (an answer started by another browser — login
//! CSRF — is refused), redeems the code with the verifier, verifies the ID token (signature
//! by the issuer's JWKS, `iss`, `aud` (and `azp` with several), `exp`, `nbf`, `nonce`), maps
//! the person's roles claim (`REGISTRY_OIDC_ROLES_CLAIM`) or else the scopes the token
//! endpoint says it granted to roles (`REGISTRY_JWT_SCOPE_ROLES`), and starts a session whose
//! actor is the person's name and `sub`.

use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use registry_commands::mac::MacKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

use super::form::encode;
use super::sign_in::safe_next;
use super::{pages, session, UiError};
use crate::ScreensState;
use registry_api::auth::{Principal, Roles};

/// The cookie tying a sign-in under way to its browser.
const LOGIN_COOKIE: &str = "__Host-registry-login";

/// How long a sign-in may take at the identity service.
const LOGIN_SECONDS: i64 = 600;

/// How the registry signs people in through the identity service.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer (its discovery document is at `/.well-known/openid-configuration`).
    pub issuer: String,
    /// This registry's client id at the identity service.
    pub client_id: String,
    /// Its secret, for a confidential registration (sent with HTTP Basic).
    pub client_secret: Option<String>,
    /// The scopes asked for (`openid` included).
    pub scopes: String,
    /// The registry's public base URL (the redirect URI is `<it>/oidc/callback`); without
    /// it, the request's `Host` is used.
    pub public_url: Option<String>,
    /// Scopes (or values of `roles_claim`) to roles.
    pub scope_roles: Vec<(String, Roles)>,
    /// The ID token claim the roles come from, instead of the granted scopes.
    pub roles_claim: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// The identity service as this registry uses it; discovery and keys cached.
pub struct Oidc {
    config: OidcConfig,
    /// Signs the sign-ins under way, kept by each browser in its login cookie.
    login_key: MacKey,
    /// The sign-ins already answered (their state's digest, until they expire): an answer is
    /// good once. Bounded: past it the oldest are forgotten (the identity service still
    /// refuses a code used twice).
    answered: std::sync::Mutex<Answered>,
    http: reqwest::Client,
    discovery: RwLock<Option<(Discovery, Instant)>>,
    keys: RwLock<Option<(JwkSet, Instant)>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.config.issuer)
            .finish_non_exhaustive()
    }
}

/// Why a sign-in through the identity service failed (logged; the person sees a page).
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The identity service could not be reached or answered nonsense.
    #[error("identity service: {0}")]
    Service(String),
    /// The answer does not belong to a sign-in of this browser (unknown or reused `state`,
    /// another browser's, expired).
    #[error("the sign-in answer matches no sign-in of this browser")]
    State,
    /// The ID token failed a check.
    #[error("ID token refused: {0}")]
    Token(String),
    /// The identity service said no (or the person declined).
    #[error("the identity service refused: {0}")]
    Refused(String),
    /// The person (named) has none of the scopes or groups that give a role here.
    #[error("no role for {0}")]
    NoRole(String),
}

const CACHE_FOR: Duration = Duration::from_secs(300);

pub use super::sign_in::MAX_NEXT;

/// The most sign-in answers remembered as used, per process.
const MAX_ANSWERED: usize = 10_000;

/// The states of answered sign-ins, oldest first, until they expire.
#[derive(Debug, Default)]
struct Answered {
    order: std::collections::VecDeque<(i64, [u8; 32])>,
    seen: std::collections::HashSet<[u8; 32]>,
}

impl Answered {
    /// Records `state` as answered; `false` if it was already.
    fn first_answer(&mut self, state: &str, expires_at: i64, now: i64) -> bool {
        while let Some(&(expires, digest)) = self.order.front() {
            if expires > now && self.order.len() < MAX_ANSWERED {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&digest);
        }
        let digest: [u8; 32] = Sha256::digest(state.as_bytes()).into();
        if !self.seen.insert(digest) {
            return false;
        }
        self.order.push_back((expires_at, digest));
        true
    }
}

/// A sign-in under way: what the callback needs to finish it. Kept by the browser in the
/// login cookie, signed by the registry, not in the database: `/oidc/login` is open to anyone,
/// and must not write a row per request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent to the identity service (the answer must carry it back).
    state: String,
    /// The PKCE code verifier.
    pub pkce_verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// Where to go once signed in (a path of this site).
    pub next_path: String,
    /// Unix seconds after which the sign-in is refused.
    expires_at: i64,
}

impl PendingLogin {
    /// The cookie value: the sign-in as base64url JSON, a dot, its HMAC-SHA-256.
    fn seal(&self, key: &MacKey) -> Result<String, serde_json::Error> {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self)?);
        let tag = URL_SAFE_NO_PAD.encode(key.sign(payload.as_bytes()));
        Ok(format!("{payload}.{tag}"))
    }

    /// The sign-in of a cookie value signed with `key`, if it is unchanged, not expired at
    /// `now`, and `state` is the one it was started with.
    fn open(key: &MacKey, cookie: &str, state: &str, now: i64) -> Option<Self> {
        let (payload, tag) = cookie.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if !key.verify(payload.as_bytes(), &tag) {
            return None;
        }
        let login: Self = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let same_state = bool::from(subtle::ConstantTimeEq::ct_eq(
            login.state.as_bytes(),
            state.as_bytes(),
        ));
        (same_state && login.expires_at > now).then_some(login)
    }
}

fn random() -> String {
    registry_commands::SecretString::generate()
        .expose()
        .to_owned()
}

/// The S256 code challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    id_token: String,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    /// Seconds the access token lives (RFC 6749 §5.1): the session's roles are checked again
    /// by signing in again after that long.
    #[serde(default)]
    expires_in: Option<i64>,
}

/// A finished sign-in: who, and how long what the identity service granted holds.
#[derive(Debug)]
pub struct SignedIn {
    /// The person and their roles here.
    pub principal: Principal,
    /// Seconds until the roles must be checked again (the token's lifetime), if it said.
    pub lifetime: Option<i64>,
}

/// The scopes an access token that is a JWT of the issuer carries (`scope`, or `scp`).
#[derive(Debug, Deserialize)]
struct AccessClaims {
    #[serde(default)]
    scope: Option<serde_json::Value>,
    #[serde(default)]
    scp: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct IdClaims {
    sub: String,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    aud: serde_json::Value,
    #[serde(default)]
    azp: Option<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// Whether `alg` is a public-key algorithm (never HMAC with a key someone could guess).
fn asymmetric(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::ES256
            | Algorithm::ES384
            | Algorithm::EdDSA
    )
}

/// The values of a claim that is a string or a list of strings; a string is split at spaces
/// only where it is a scope list (`spaced`): a group named `octo_api readers` is one value.
fn claim_values(value: Option<&serde_json::Value>, spaced: bool) -> Vec<&str> {
    match value {
        Some(serde_json::Value::String(text)) if spaced => text.split_whitespace().collect(),
        Some(serde_json::Value::String(text)) => vec![text.as_str()],
        Some(serde_json::Value::Array(items)) => {
            items.iter().filter_map(serde_json::Value::as_str).collect()
        }
        _ => Vec::new(),
    }
}

impl Oidc {
    /// The identity service of `config`.
    ///
    /// # Errors
    /// Signs sign-ins with `key` (every process of a store must use the same one: a sign-in
    /// may start at one and come back to another). Until then a key of this process only.
    #[must_use]
    pub fn with_login_key(mut self, key: MacKey) -> Self {
        self.login_key = key;
        self
    }

    /// An issuer that is neither `https` nor `http` on a loopback host.
    pub fn new(config: OidcConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            registry_api::auth::jwt::jwks_url_allowed(&config.issuer),
            "REGISTRY_OIDC_ISSUER must be https (or http on a loopback host)"
        );
        // Without a public URL the redirect URI is built from the request's Host header:
        // fine on a developer's machine, not where a proxy or a client chooses that header.
        anyhow::ensure!(
            config.public_url.is_some() || registry_api::auth::jwt::on_loopback(&config.issuer),
            "set REGISTRY_PUBLIC_URL (the registry's address as browsers reach it) to sign in \
             through an identity service that is not on this machine"
        );
        Ok(Self {
            config,
            login_key: MacKey::random(),
            answered: std::sync::Mutex::new(Answered::default()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            discovery: RwLock::new(None),
            keys: RwLock::new(None),
        })
    }

    async fn discovery(&self) -> Result<Discovery, OidcError> {
        if let Some((found, at)) = self.discovery.read().await.as_ref() {
            if at.elapsed() < CACHE_FOR {
                return Ok(found.clone());
            }
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let found: Discovery = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| OidcError::Service(e.to_string()))?
            .json()
            .await
            .map_err(|e| OidcError::Service(e.to_string()))?;
        if found.issuer.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') {
            return Err(OidcError::Service(format!(
                "the discovery document names issuer {}",
                found.issuer
            )));
        }
        *self.discovery.write().await = Some((found.clone(), Instant::now()));
        Ok(found)
    }

    async fn key(&self, jwks_uri: &str, kid: Option<&str>) -> Result<DecodingKey, OidcError> {
        // Without a kid, only the one key of a set of one (never the first of several).
        let find = |set: &JwkSet| {
            let mut keys = set
                .keys
                .iter()
                .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid);
            let found = keys.next()?;
            if kid.is_none() && keys.next().is_some() {
                return None;
            }
            DecodingKey::from_jwk(found).ok()
        };
        if let Some((set, at)) = self.keys.read().await.as_ref() {
            if at.elapsed() < CACHE_FOR {
                if let Some(key) = find(set) {
                    return Ok(key);
                }
            }
        }
        let set: JwkSet = self
            .http
            .get(jwks_uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| OidcError::Service(e.to_string()))?
            .json()
            .await
            .map_err(|e| OidcError::Service(e.to_string()))?;
        let key = find(&set).ok_or_else(|| OidcError::Token("no key for its kid".to_owned()));
        *self.keys.write().await = Some((set, Instant::now()));
        key
    }

    /// The scopes of an access token, when it is a JWT signed by the issuer's keys, from the
    /// issuer, unexpired; `None` for an opaque token or one that fails any check.
    async fn access_token_scopes(&self, discovery: &Discovery, token: &str) -> Option<String> {
        if !registry_api::auth::jwt::looks_like_jwt(token) {
            return None;
        }
        let header = jsonwebtoken::decode_header(token).ok()?;
        if !asymmetric(header.alg) {
            return None;
        }
        let key = self
            .key(&discovery.jwks_uri, header.kid.as_deref())
            .await
            .ok()?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = 30;
        validation.set_issuer(&[&discovery.issuer]);
        // Its audience is the API it is for, not this registry: not checked, as it is read
        // only for the scopes the issuer granted in this very sign-in.
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .ok()?
            .claims;
        let values = claim_values(claims.scope.as_ref().or(claims.scp.as_ref()), true);
        (!values.is_empty()).then(|| values.join(" "))
    }

    fn redirect_uri(&self, headers: &HeaderMap) -> String {
        let base = self.config.public_url.clone().unwrap_or_else(|| {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        });
        format!("{}/oidc/callback", base.trim_end_matches('/'))
    }

    /// The principal of a finished sign-in: code redeemed, ID token verified.
    async fn finish(
        &self,
        code: &str,
        login: &PendingLogin,
        redirect_uri: &str,
    ) -> Result<SignedIn, OidcError> {
        let discovery = self.discovery().await?;
        let mut request = self.http.post(&discovery.token_endpoint).form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", self.config.client_id.as_str()),
            ("code_verifier", login.pkce_verifier.as_str()),
        ]);
        if let Some(secret) = &self.config.client_secret {
            request = request.basic_auth(&self.config.client_id, Some(secret));
        }
        let answer = request
            .send()
            .await
            .map_err(|e| OidcError::Service(e.to_string()))?;
        if !answer.status().is_success() {
            return Err(OidcError::Refused(format!(
                "token endpoint answered {}",
                answer.status()
            )));
        }
        let tokens: TokenAnswer = answer
            .json()
            .await
            .map_err(|e| OidcError::Service(e.to_string()))?;
        let header = jsonwebtoken::decode_header(&tokens.id_token)
            .map_err(|e| OidcError::Token(e.to_string()))?;
        if !asymmetric(header.alg) {
            return Err(OidcError::Token(format!("algorithm {:?}", header.alg)));
        }
        let key = self.key(&discovery.jwks_uri, header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = 30;
        validation.set_issuer(&[&discovery.issuer]);
        validation.set_audience(&[&self.config.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<IdClaims>(&tokens.id_token, &key, &validation)
            .map_err(|e| OidcError::Token(e.to_string()))?
            .claims;
        if claims.nonce.as_deref() != Some(login.nonce.as_str()) {
            return Err(OidcError::Token("nonce does not match".to_owned()));
        }
        // OpenID Connect Core §3.1.3.7: with several audiences, `azp` names this client.
        let audiences = claim_values(Some(&claims.aud), false);
        // And an `azp`, where there is one, names this client.
        let azp_ok = match claims.azp.as_deref() {
            Some(azp) => azp == self.config.client_id,
            None => audiences.len() <= 1,
        };
        if !azp_ok {
            return Err(OidcError::Token(
                "azp missing with several audiences, or naming another client".to_owned(),
            ));
        }
        // Roles come from the person's claim when one is configured; else from the scopes the
        // token endpoint says it granted, or else those of the access token when it is a JWT
        // the issuer signed. An answer that names no scope grants no role here (RFC 6749 lets
        // it mean "as asked", but asking is not being entitled).
        let from_access_token = match (&tokens.scope, &tokens.access_token) {
            (None, Some(token)) if self.config.roles_claim.is_none() => {
                self.access_token_scopes(&discovery, token).await
            }
            _ => None,
        };
        let granted: Vec<&str> = match &self.config.roles_claim {
            Some(claim) => claim_values(claims.other.get(claim), false),
            None => tokens
                .scope
                .as_ref()
                .or(from_access_token.as_ref())
                .map(|s| s.split_whitespace().collect())
                .unwrap_or_default(),
        };
        let mut roles = Roles::default();
        for (scope, given) in &self.config.scope_roles {
            if granted.contains(&scope.as_str()) {
                roles.extend(*given);
            }
        }
        let name = match claims.name.or(claims.preferred_username) {
            Some(name) => format!("{name} <{}>", claims.sub),
            None => claims.sub,
        };
        if roles.is_empty() {
            return Err(OidcError::NoRole(name));
        }
        Ok(SignedIn {
            principal: Principal { name, roles },
            lifetime: tokens.expires_in,
        })
    }
}

/// Where a sign-in through the identity service starts.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

fn login_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == LOGIN_COOKIE)
        .map(|(_, value)| value.to_owned())
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
    let (state_token, verifier, nonce) = (random(), random(), random());
    let now = registry_api::extract::now().timestamp();
    let login = PendingLogin {
        state: state_token.clone(),
        pkce_verifier: verifier.clone(),
        nonce: nonce.clone(),
        next_path: safe_next(query.next.as_deref()),
        expires_at: now + LOGIN_SECONDS,
    };
    let sealed = login
        .seal(&oidc.login_key)
        .map_err(|e| UiError::Internal(e.into()))?;
    let location = format!(
        "{}{}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}\
         &code_challenge={}&code_challenge_method=S256",
        discovery.authorization_endpoint,
        if discovery.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        },
        encode(&oidc.config.client_id),
        encode(&oidc.redirect_uri(&headers)),
        encode(&oidc.config.scopes),
        encode(&state_token),
        encode(&nonce),
        code_challenge(&verifier),
    );
    let cookie = HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={sealed}; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age={LOGIN_SECONDS}"
    ))
    .map_err(|e| UiError::Internal(e.into()))?;
    let mut response = Redirect::to(&location).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

/// The identity service's answer.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

fn refused(status: StatusCode, text: &str) -> Response {
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
    let now = registry_api::extract::now().timestamp();
    // The sign-in this browser started (its signed cookie), answered with its own state: an
    // answer carried to another browser, a forged state or an expired sign-in is refused.
    let login = match (&query.state, login_cookie(&headers)) {
        (Some(state_token), Some(cookie)) => {
            PendingLogin::open(&oidc.login_key, &cookie, state_token, now)
        }
        _ => None,
    };
    let login = login.filter(|login| {
        oidc.answered
            .lock()
            .is_ok_and(|mut answered| answered.first_answer(&login.state, login.expires_at, now))
    });
    let Some(login) = login else {
        tracing::warn!(error = %OidcError::State, "sign-in refused");
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "This answer of the identity service does not belong to a sign-in started in this \
             browser (or it was already used, or took too long). Start again.",
        ));
    };
    if let Some(error) = &query.error {
        tracing::info!(%error, description = ?query.error_description, "the identity service refused the sign-in");
        return Ok(refused(
            StatusCode::FORBIDDEN,
            "The identity service did not sign you in.",
        ));
    }
    let Some(code) = &query.code else {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "The identity service sent no code.",
        ));
    };
    let principal = match oidc
        .finish(code, &login, &oidc.redirect_uri(&headers))
        .await
    {
        Ok(signed_in) => signed_in,
        Err(OidcError::NoRole(name)) => {
            tracing::info!(actor = %name, "signed in at the identity service, but no role here");
            return Ok((
                StatusCode::FORBIDDEN,
                pages::no_role(&name, oidc.config.roles_claim.as_deref()),
            )
                .into_response());
        }
        Err(error) => {
            tracing::warn!(%error, "sign-in through the identity service failed");
            return Ok(refused(
                StatusCode::BAD_GATEWAY,
                "The sign-in could not be completed.",
            ));
        }
    };
    let SignedIn {
        principal,
        lifetime,
    } = principal;
    let session = session::start(&state, &principal, None, lifetime).await?;
    tracing::info!(actor = %principal.name, "signed in through the identity service");
    // A page of this site, not a redirect: the session cookie is SameSite=Strict, and a
    // browser does not send it on a redirect chain the identity service started.
    let mut response = pages::continue_to(&login.next_path).into_response();
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
