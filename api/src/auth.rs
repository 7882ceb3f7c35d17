//! Bearer-token authentication of every `/api` route.
//!
//! One principal for now, `admin`, whose token is `REGISTRY_ADMIN_TOKEN` or, when unset, one
//! generated at the first start of a store, printed once, and kept only as a SHA-256 digest.
//! (A 256-bit random token needs no slow hash: nothing can be guessed from its digest.)

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use registry_commands::{Database, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// The name recorded as the actor of changes made with the admin token.
pub const ADMIN_PRINCIPAL: &str = "admin";

/// The `registry_settings` key of the generated admin token's digest.
const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

/// Shortest accepted configured admin token.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// The authenticated caller, available to handlers as a request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Recorded as the `actor` of the events it causes.
    pub name: String,
}

/// Checks bearer tokens against the admin token's digest, in constant time.
#[derive(Clone)]
pub struct Authenticator {
    admin_token_sha256: [u8; 32],
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator(…)")
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Authenticator {
    /// Accepts exactly `token`.
    pub fn for_token(token: &str) -> Self {
        Self {
            admin_token_sha256: digest(token),
        }
    }

    /// The admin token of this store: `configured` if given; else the digest stored at the
    /// first start; else a new token, whose plaintext is returned (to print once) alongside.
    ///
    /// # Errors
    /// A configured token shorter than [`MIN_ADMIN_TOKEN_LEN`], or a database failure.
    pub async fn provision(
        database: &Database,
        configured: Option<&str>,
    ) -> anyhow::Result<(Self, Option<SecretString>)> {
        if let Some(token) = configured {
            anyhow::ensure!(
                token.chars().count() >= MIN_ADMIN_TOKEN_LEN,
                "REGISTRY_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_LEN} characters"
            );
            return Ok((Self::for_token(token), None));
        }
        let generated = SecretString::generate();
        let encoded = URL_SAFE_NO_PAD.encode(digest(generated.expose()));
        let stored_now = database
            .insert_setting_if_absent(ADMIN_TOKEN_SETTING, &encoded)
            .await?;
        if stored_now {
            return Ok((Self::for_token(generated.expose()), Some(generated)));
        }
        let stored = database
            .setting(ADMIN_TOKEN_SETTING)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the admin token digest disappeared"))?;
        let bytes = URL_SAFE_NO_PAD.decode(stored.as_bytes())?;
        let admin_token_sha256: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the stored admin token digest is corrupt"))?;
        Ok((Self { admin_token_sha256 }, None))
    }

    /// The principal a request's `Authorization: Bearer` token names.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] without a bearer token or with a wrong one.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::Unauthorized {
                token_presented: false,
            });
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(ApiError::Unauthorized {
                token_presented: false,
            });
        };
        if bool::from(digest(token).ct_eq(&self.admin_token_sha256)) {
            Ok(Principal {
                name: ADMIN_PRINCIPAL.to_owned(),
            })
        } else {
            Err(ApiError::Unauthorized {
                token_presented: true,
            })
        }
    }
}

/// Middleware: rejects the request with 401 unless it carries a valid bearer token, and hands
/// the [`Principal`] on as a request extension.
pub async fn require_bearer(
    State(authenticator): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let principal = authenticator.authenticate(request.headers())?;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(authorization) {
            headers.insert(header::AUTHORIZATION, value);
        }
        headers
    }

    #[test]
    fn the_admin_token_authenticates_as_admin() {
        let auth = Authenticator::for_token("s3cret-admin-token");
        let principal = auth.authenticate(&headers("Bearer s3cret-admin-token"));
        assert_eq!(principal.ok().map(|p| p.name), Some("admin".to_owned()));
        assert!(auth
            .authenticate(&headers("bearer s3cret-admin-token"))
            .is_ok());
    }

    #[test]
    fn wrong_missing_or_non_bearer_credentials_are_refused() {
        let auth = Authenticator::for_token("s3cret-admin-token");
        for value in [
            "Bearer wrong",
            "Basic YWRtaW46cHc=",
            "Bearer ",
            "",
            "s3cret-admin-token",
        ] {
            assert!(auth.authenticate(&headers(value)).is_err(), "{value}");
        }
    }
}
