//! Authentication and authorisation of every `/api` route.
//!
//! Three ways in, all as `Authorization: Bearer <token>`:
//! - the admin token (`REGISTRY_ADMIN_TOKEN`, or one generated at the first start of a store
//!   that has no other way in, printed once, stored only as a SHA-256 digest): every role;
//! - API keys from configuration ([`api_keys`]): a name, roles and the key's digest;
//! - JWTs from the identity service ([`jwt`]): checked against its JWKS, scopes mapped to roles.
//!
//! Every route then requires one [`Role`] ([`Authorized`]): missing it is 403.

pub mod api_keys;
pub mod jwt;
pub mod roles;

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use registry_commands::{Database, SecretString};
use subtle::ConstantTimeEq;

pub use api_keys::ApiKeys;
pub use jwt::{JwtConfig, JwtVerifier};
pub use roles::{Principal, Role, Roles};

use crate::error::ApiError;

/// The name recorded as the actor of changes made with the admin token.
pub const ADMIN_PRINCIPAL: &str = "admin";

/// The `registry_settings` key of the generated admin token's digest.
const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";

/// Shortest accepted configured admin token.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

/// The token of an `Authorization: Bearer <token>` header (the scheme in any case), trimmed;
/// `None` without one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    (headers.get(header::AUTHORIZATION))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// Checks bearer tokens.
pub struct Authenticator {
    admin_token_sha256: Option<[u8; 32]>,
    api_keys: ApiKeys,
    jwt: Option<JwtVerifier>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator(…)")
    }
}

impl Authenticator {
    /// Accepts exactly `token` as the admin token, and nothing else.
    pub fn for_token(token: &str) -> Self {
        Self {
            admin_token_sha256: Some(api_keys::digest(token)),
            api_keys: ApiKeys::default(),
            jwt: None,
        }
    }

    /// The ways in of this service. The admin token is `configured` if given; else, when
    /// neither API keys nor JWTs are configured, the digest stored at the first start, or a
    /// new token whose plaintext is returned (to print once) alongside.
    ///
    /// # Errors
    /// A configured token shorter than [`MIN_ADMIN_TOKEN_LEN`], or a database failure.
    pub async fn provision(
        database: &Database,
        configured: Option<&str>,
        api_keys: ApiKeys,
        jwt: Option<JwtVerifier>,
    ) -> anyhow::Result<(Self, Option<SecretString>)> {
        let mut authenticator = Self {
            admin_token_sha256: None,
            api_keys,
            jwt,
        };
        if let Some(token) = configured {
            anyhow::ensure!(
                token.chars().count() >= MIN_ADMIN_TOKEN_LEN,
                "REGISTRY_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_LEN} characters"
            );
            authenticator.admin_token_sha256 = Some(api_keys::digest(token));
            return Ok((authenticator, None));
        }
        if !authenticator.api_keys.is_empty() || authenticator.jwt.is_some() {
            return Ok((authenticator, None));
        }
        let generated = SecretString::generate();
        let encoded = URL_SAFE_NO_PAD.encode(api_keys::digest(generated.expose()));
        if database
            .insert_setting_if_absent(ADMIN_TOKEN_SETTING, &encoded)
            .await?
        {
            authenticator.admin_token_sha256 = Some(api_keys::digest(generated.expose()));
            return Ok((authenticator, Some(generated)));
        }
        let stored = database
            .setting(ADMIN_TOKEN_SETTING)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the admin token digest disappeared"))?;
        let bytes = URL_SAFE_NO_PAD.decode(stored.as_bytes())?;
        authenticator.admin_token_sha256 = Some(
            bytes
                .try_into()
                .map_err(|_| anyhow::anyhow!("the stored admin token digest is corrupt"))?,
        );
        Ok((authenticator, None))
    }

    /// The principal a request's `Authorization: Bearer` token names.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] without a bearer token or with one that is not valid.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let Some(token) = bearer_token(headers) else {
            return Err(ApiError::Unauthorized {
                token_presented: false,
            });
        };
        self.authenticate_token(token).await
    }

    /// The principal of a configured token — the admin token or an API key, never a JWT — by
    /// the token's SHA-256: what a session begun with that token may still do, or `None` once
    /// the token is no longer configured.
    pub fn principal_for_digest(&self, token_sha256: &[u8; 32]) -> Option<Principal> {
        if let Some(admin) = &self.admin_token_sha256 {
            if bool::from(token_sha256.ct_eq(admin)) {
                return Some(Principal {
                    name: ADMIN_PRINCIPAL.to_owned(),
                    roles: Roles::all(),
                });
            }
        }
        self.api_keys.find_digest(token_sha256).cloned()
    }

    /// The principal of a token (the admin token, an API key or a JWT).
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] for a token that is none of these.
    pub async fn authenticate_token(&self, token: &str) -> Result<Principal, ApiError> {
        let invalid = ApiError::Unauthorized {
            token_presented: true,
        };
        if let Some(admin) = &self.admin_token_sha256 {
            if bool::from(api_keys::digest(token).ct_eq(admin)) {
                return Ok(Principal {
                    name: ADMIN_PRINCIPAL.to_owned(),
                    roles: Roles::all(),
                });
            }
        }
        if let Some(principal) = self.api_keys.find(token) {
            return Ok(principal.clone());
        }
        match &self.jwt {
            Some(verifier) if jwt::looks_like_jwt(token) => {
                verifier.verify(token).await.map_err(|reason| {
                    // The reason, never the token.
                    tracing::debug!(%reason, "bearer token refused");
                    invalid
                })
            }
            _ => Err(invalid),
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
    let principal = authenticator.authenticate(request.headers()).await?;
    crate::logging::name_actor(request.extensions(), &principal.name);
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// A role a route requires, as a type.
pub trait RequiredRole {
    /// The role.
    const ROLE: Role;
}

macro_rules! role_marker {
    ($name:ident, $role:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $name;

        impl RequiredRole for $name {
            const ROLE: Role = $role;
        }
    };
}

role_marker!(ClientsRead, Role::ClientsRead, "Requires `clients:read`.");
role_marker!(
    ClientsWrite,
    Role::ClientsWrite,
    "Requires `clients:write`."
);
role_marker!(AuditRead, Role::AuditRead, "Requires `audit:read`.");
role_marker!(
    SecretsVerify,
    Role::SecretsVerify,
    "Requires `secrets:verify`."
);
role_marker!(
    RegistrationAdmin,
    Role::RegistrationAdmin,
    "Requires `registration:admin`."
);

/// The caller, authorised for `R`. First in a handler's arguments, so a caller without the
/// role gets 403 before the body is read.
#[derive(Debug)]
pub struct Authorized<R>(pub Principal, pub PhantomData<R>);

impl<S: Send + Sync, R: RequiredRole> FromRequestParts<S> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let principal = Principal::of(parts)?;
        principal.require(R::ROLE)?;
        Ok(Self(principal, PhantomData))
    }
}

impl Principal {
    /// The principal the authentication middleware attached to the request.
    ///
    /// # Errors
    /// [`ApiError::Unauthorized`] on a route outside the authenticated router.
    pub fn of(parts: &Parts) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Self>()
            .cloned()
            .ok_or(ApiError::Unauthorized {
                token_presented: false,
            })
    }

    /// `Ok` when the principal holds `role`.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] naming the missing role.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.roles.contains(role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(role))
        }
    }
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

    #[tokio::test]
    async fn the_admin_token_authenticates_as_admin_with_every_role() {
        let auth = Authenticator::for_token("s3cret-admin-token");
        let principal = auth
            .authenticate(&headers("Bearer s3cret-admin-token"))
            .await;
        assert_eq!(
            principal.ok(),
            Some(Principal {
                name: "admin".to_owned(),
                roles: Roles::all()
            })
        );
        assert!(auth
            .authenticate(&headers("bearer s3cret-admin-token"))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn wrong_missing_or_non_bearer_credentials_are_refused() {
        let auth = Authenticator::for_token("s3cret-admin-token");
        for value in [
            "Bearer wrong",
            "Basic YWRtaW46cHc=",
            "Bearer ",
            "",
            "s3cret-admin-token",
        ] {
            assert!(auth.authenticate(&headers(value)).await.is_err(), "{value}");
        }
    }
}
