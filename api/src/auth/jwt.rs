//! JWT bearer tokens from the identity service, checked against its JWKS.
//!
//! Only asymmetric algorithms are accepted (RS*, PS*, ES256/384, EdDSA): `alg: none` and
//! HS* are refused before any key is looked at, so a token "signed" with a public key used as
//! an HMAC secret never verifies. The key is chosen by `kid`; an unknown `kid` triggers one
//! JWKS reload (at most every [`MIN_RELOAD_INTERVAL`]), so a key rotation at the identity
//! service is picked up without a restart. `iss`, `aud`, `exp` and `nbf` are checked with a
//! small leeway; scopes (`scope` or `scp`) map to roles.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use super::roles::{Principal, Roles};

/// How long a JWKS is still used when the identity service cannot be reached for a new one:
/// an outage of its JWKS endpoint must not refuse every token at once, and keys it removed
/// are gone from here within this long at the latest.
pub const JWKS_STALE_LIMIT: Duration = Duration::from_secs(24 * 3600);
/// The first wait after a failed background fetch; it doubles up to [`JWKS_MAX_BACKOFF`].
const JWKS_FIRST_BACKOFF: Duration = Duration::from_secs(5);
const JWKS_MAX_BACKOFF: Duration = Duration::from_secs(300);
/// The shortest time between two JWKS reloads caused by unknown `kid`s.
pub const MIN_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Where the signing keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// A JWKS document on disk (re-read on reload).
    File(PathBuf),
    /// The identity service's JWKS endpoint (`https`, or `http` on loopback).
    Url(String),
}

/// How tokens are checked.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// Required `iss`.
    pub issuer: String,
    /// Required `aud` (one of the token's audiences).
    pub audience: String,
    /// The keys.
    pub source: JwksSource,
    /// Scope → roles.
    pub scope_roles: Vec<(String, Roles)>,
    /// Clock leeway for `exp` and `nbf`, in seconds.
    pub leeway: u64,
    /// The shortest time between two reloads caused by unknown `kid`s.
    pub min_reload_interval: Duration,
    /// How long a fetched JWKS is fresh; past it, it keeps serving (up to [`JWKS_STALE_LIMIT`])
    /// while a background fetch replaces it.
    pub cache_for: Duration,
}

/// Parses `scope=role,role scope=role …`.
///
/// # Errors
/// A message naming the malformed entry or unknown role.
pub fn parse_scope_roles(config: &str) -> Result<Vec<(String, Roles)>, String> {
    config
        .split_whitespace()
        .map(|entry| {
            let (scope, roles) = entry
                .split_once('=')
                .ok_or_else(|| format!("scope mapping {entry:?}: expected scope=role,role"))?;
            Ok((scope.to_owned(), Roles::parse(roles)?))
        })
        .collect()
}

/// Why a token was refused (logged at debug level; the caller only learns "invalid token").
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// Not a JWT, or an unreadable header.
    #[error("malformed token")]
    Malformed,
    /// `none`, HS* or another algorithm we do not accept.
    #[error("algorithm {0:?} is not accepted")]
    Algorithm(Algorithm),
    /// No key with this `kid`, even after a reload.
    #[error("no signing key {0:?}")]
    UnknownKey(Option<String>),
    /// The key does not fit the algorithm, or is symmetric.
    #[error("the key does not fit the token's algorithm")]
    KeyMismatch,
    /// Signature, issuer, audience, expiry or not-before.
    #[error("token rejected: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    /// The JWKS cannot be loaded.
    #[error("signing keys unavailable: {0}")]
    Keys(String),
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Vec<String>>,
}

struct Cached {
    keys: JwkSet,
    fetched: Instant,
}

/// When the next background fetch may run, and how long to wait after another failure.
#[derive(Debug)]
struct Backoff {
    running: bool,
    not_before: Option<Instant>,
    wait: Duration,
}

/// Checks JWTs. Cheap to share; the JWKS is cached, refetched in the background when it is
/// older than `cache_for` (served meanwhile, up to [`JWKS_STALE_LIMIT`]), with backoff after
/// failures, and once more on an unknown `kid`.
pub struct JwtVerifier {
    config: JwtConfig,
    cache: Arc<RwLock<Option<Cached>>>,
    last_reload: Mutex<Option<Instant>>,
    backoff: Arc<std::sync::Mutex<Backoff>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.config.issuer)
            .finish()
    }
}

/// Whether a JWKS URL may be used: `https`, or `http` on a loopback host.
pub fn jwks_url_allowed(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    match parsed.scheme() {
        "https" => parsed.host().is_some(),
        "http" => on_loopback(url),
        _ => false,
    }
}

/// Whether the host of `url` is this machine (`localhost` or a loopback address), compared
/// as a parsed host: a prefix test let `http://localhost.evil.net/` through.
pub fn on_loopback(url: &str) -> bool {
    match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl JwtVerifier {
    /// A verifier for `config`. The JWKS is loaded on first use.
    ///
    /// # Errors
    /// A JWKS URL that is neither https nor loopback http, or an HTTP client that cannot be
    /// built.
    pub fn new(config: JwtConfig) -> anyhow::Result<Self> {
        if let JwksSource::Url(url) = &config.source {
            anyhow::ensure!(
                jwks_url_allowed(url),
                "REGISTRY_JWT_JWKS_URL must be https (or http on a loopback host)"
            );
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self {
            config,
            cache: Arc::new(RwLock::new(None)),
            last_reload: Mutex::new(None),
            backoff: Arc::new(std::sync::Mutex::new(Backoff {
                running: false,
                not_before: None,
                wait: JWKS_FIRST_BACKOFF,
            })),
            http,
        })
    }

    async fn fetch(&self) -> Result<JwkSet, JwtError> {
        fetch(&self.http, &self.config.source).await
    }

    /// Starts a background fetch of the JWKS unless one runs or a failure's backoff lasts.
    fn refresh_in_background(&self) {
        {
            let Ok(mut backoff) = self.backoff.lock() else {
                return;
            };
            if backoff.running || backoff.not_before.is_some_and(|t| Instant::now() < t) {
                return;
            }
            backoff.running = true;
        }
        let (http, source) = (self.http.clone(), self.config.source.clone());
        let (cache, backoff) = (self.cache.clone(), self.backoff.clone());
        tokio::spawn(async move {
            let fetched = fetch(&http, &source).await;
            let ok = fetched.is_ok();
            match fetched {
                Ok(keys) => {
                    *cache.write().await = Some(Cached {
                        keys,
                        fetched: Instant::now(),
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "the identity service's JWKS could not be fetched; the keys held keep serving");
                }
            }
            if let Ok(mut backoff) = backoff.lock() {
                backoff.running = false;
                if ok {
                    backoff.not_before = None;
                    backoff.wait = JWKS_FIRST_BACKOFF;
                } else {
                    backoff.not_before = Some(Instant::now() + backoff.wait);
                    backoff.wait = (backoff.wait * 2).min(JWKS_MAX_BACKOFF);
                }
            }
        });
    }
}

/// The JWKS from its source.
async fn fetch(http: &reqwest::Client, source: &JwksSource) -> Result<JwkSet, JwtError> {
    {
        let keys: JwkSet = match source {
            JwksSource::File(path) => {
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| JwtError::Keys(format!("{}: {e}", path.display())))?;
                serde_json::from_str(&text).map_err(|e| JwtError::Keys(e.to_string()))?
            }
            JwksSource::Url(url) => http
                .get(url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| JwtError::Keys(e.to_string()))?
                .json()
                .await
                .map_err(|e| JwtError::Keys(e.to_string()))?,
        };
        Ok(keys)
    }
}

impl JwtVerifier {
    /// Reloads the JWKS unless one was loaded less than `min_interval` ago.
    async fn reload(&self, min_interval: Duration) -> Result<(), JwtError> {
        let asked = Instant::now();
        let mut last = self.last_reload.lock().await;
        if last.is_some_and(|at| at.elapsed() < min_interval) {
            return Ok(());
        }
        // Another caller reloaded while this one waited for the lock: theirs will do (callers
        // do not fetch one after another).
        if last.is_some_and(|at| at >= asked) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let keys = self.fetch().await?;
        *self.cache.write().await = Some(Cached {
            keys,
            fetched: Instant::now(),
        });
        Ok(())
    }

    async fn find_key(&self, kid: Option<&str>) -> Option<Jwk> {
        let cache = self.cache.read().await;
        let keys = &cache.as_ref()?.keys.keys;
        match kid {
            Some(kid) => keys
                .iter()
                .find(|k| k.common.key_id.as_deref() == Some(kid))
                .cloned(),
            // Without a kid, only an unambiguous set will do.
            None if keys.len() == 1 => keys.first().cloned(),
            None => None,
        }
    }

    async fn key_for(&self, kid: Option<&str>) -> Result<Jwk, JwtError> {
        let age = self
            .cache
            .read()
            .await
            .as_ref()
            .map(|c| c.fetched.elapsed());
        match age {
            // None yet, or too old to trust: fetched now, and the request waits for it.
            None => self.reload(Duration::ZERO).await?,
            Some(age) if age > JWKS_STALE_LIMIT => self.reload(Duration::ZERO).await?,
            // Old: served while a fetch in the background replaces it.
            Some(age) if age > self.config.cache_for => self.refresh_in_background(),
            Some(_) => {}
        }
        if let Some(key) = self.find_key(kid).await {
            return Ok(key);
        }
        // An unknown kid: the identity service may have rotated its keys.
        self.reload(self.config.min_reload_interval).await?;
        self.find_key(kid)
            .await
            .ok_or_else(|| JwtError::UnknownKey(kid.map(str::to_owned)))
    }

    /// The principal a token names.
    ///
    /// # Errors
    /// [`JwtError`] saying why the token is refused.
    pub async fn verify(&self, token: &str) -> Result<Principal, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if !ALLOWED.contains(&header.alg) {
            return Err(JwtError::Algorithm(header.alg));
        }
        let jwk = self.key_for(header.kid.as_deref()).await?;
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            return Err(JwtError::KeyMismatch);
        }
        if let Some(key_alg) = jwk.common.key_algorithm {
            if key_alg.to_string() != format!("{:?}", header.alg) {
                return Err(JwtError::KeyMismatch);
            }
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| JwtError::KeyMismatch)?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.config.leeway;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)?;
        let claims = data.claims;
        let scopes: Vec<String> = claims
            .scope
            .iter()
            .flat_map(|s| s.split_whitespace().map(str::to_owned))
            .chain(claims.scp.into_iter().flatten())
            .collect();
        let mut roles = Roles::default();
        for (scope, granted) in &self.config.scope_roles {
            if scopes.contains(scope) {
                roles.extend(*granted);
            }
        }
        Ok(Principal {
            name: claims.sub,
            roles,
        })
    }
}

/// Whether `token` looks like a JWT (three base64url segments).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '='))
}

#[cfg(test)]
mod url_tests {
    use super::jwks_url_allowed;

    #[test]
    fn jwks_url_must_be_https_or_http_on_a_loopback_host() {
        for allowed in [
            "https://id.example.com/.well-known/jwks.json",
            "http://localhost:5001/jwks",
            "http://LOCALHOST/jwks",
            "http://127.0.0.1:8080/jwks",
            "http://127.0.0.2/jwks",
            "http://[::1]:5001/jwks",
        ] {
            assert!(jwks_url_allowed(allowed), "{allowed}");
        }
        for refused in [
            "http://localhost.evil.net/jwks",
            "http://127.0.0.1.evil.net/jwks",
            "http://localhost@evil.net/jwks",
            "http://evil.net/?http://localhost",
            "http://[::1].evil.net/",
            "http://10.0.0.1/jwks",
            "ftp://localhost/jwks",
            "file:///etc/jwks.json",
            "not a url",
        ] {
            assert!(!jwks_url_allowed(refused), "{refused}");
        }
    }
}
