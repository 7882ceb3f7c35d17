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

use crate::form::encode;
use crate::sign_in::safe_next;
use crate::ScreensState;
use crate::{pages, session, UiError};
use registry_api::auth::{Principal, Roles};

mod pending;
mod routes;

pub use pending::*;
pub use routes::*;

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

pub use crate::sign_in::MAX_NEXT;

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
        let found: Discovery = self.get_json(&url).await?;
        if found.issuer.trim_end_matches('/') != self.config.issuer.trim_end_matches('/') {
            return Err(OidcError::Service(format!(
                "the discovery document names issuer {}",
                found.issuer
            )));
        }
        *self.discovery.write().await = Some((found.clone(), Instant::now()));
        Ok(found)
    }

    /// The JSON document at `url` (a failure, an error status or another shape: the identity
    /// service's fault).
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let answer = self.http.get(url).send().await;
        let service = |e: reqwest::Error| OidcError::Service(e.to_string());
        let answer = answer
            .and_then(reqwest::Response::error_for_status)
            .map_err(service)?;
        answer.json().await.map_err(service)
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
        let set: JwkSet = self.get_json(jwks_uri).await?;
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
        let tokens = self.redeem(&discovery, code, login, redirect_uri).await?;
        let claims = self.id_claims(&discovery, &tokens, login).await?;
        let granted = self.granted(&discovery, &tokens, &claims).await;
        let mut roles = Roles::default();
        for (scope, given) in &self.config.scope_roles {
            if granted.iter().any(|g| g == scope) {
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

    /// The token endpoint's answer for `code` (with the PKCE verifier, and the client's
    /// secret when it has one).
    async fn redeem(
        &self,
        discovery: &Discovery,
        code: &str,
        login: &PendingLogin,
        redirect_uri: &str,
    ) -> Result<TokenAnswer, OidcError> {
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
        let answer = (request.send())
            .await
            .map_err(|e| OidcError::Service(e.to_string()))?;
        if !answer.status().is_success() {
            return Err(OidcError::Refused(format!(
                "token endpoint answered {}",
                answer.status()
            )));
        }
        answer
            .json()
            .await
            .map_err(|e| OidcError::Service(e.to_string()))
    }

    /// The ID token's claims, verified: signature by the issuer's key (asymmetric only),
    /// issuer, audience, times, nonce, and `azp` (OpenID Connect Core §3.1.3.7).
    async fn id_claims(
        &self,
        discovery: &Discovery,
        tokens: &TokenAnswer,
        login: &PendingLogin,
    ) -> Result<IdClaims, OidcError> {
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
        // With several audiences, `azp` names this client; and an `azp`, where there is one,
        // names this client.
        let audiences = claim_values(Some(&claims.aud), false);
        let azp_ok = match claims.azp.as_deref() {
            Some(azp) => azp == self.config.client_id,
            None => audiences.len() <= 1,
        };
        if !azp_ok {
            return Err(OidcError::Token(
                "azp missing with several audiences, or naming another client".to_owned(),
            ));
        }
        Ok(claims)
    }

    /// What the person was granted: the configured claim of the ID token; else the scopes
    /// the token endpoint says it granted, or else those of the access token when it is a
    /// JWT the issuer signed. An answer that names no scope grants nothing here (RFC 6749
    /// lets it mean "as asked", but asking is not being entitled).
    async fn granted(
        &self,
        discovery: &Discovery,
        tokens: &TokenAnswer,
        claims: &IdClaims,
    ) -> Vec<String> {
        if let Some(claim) = &self.config.roles_claim {
            return claim_values(claims.other.get(claim), false)
                .into_iter()
                .map(str::to_owned)
                .collect();
        }
        let scopes = match (&tokens.scope, &tokens.access_token) {
            (Some(scope), _) => Some(scope.clone()),
            (None, Some(token)) => self.access_token_scopes(discovery, token).await,
            (None, None) => None,
        };
        scopes
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    }
}
