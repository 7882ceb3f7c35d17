//! Initial access tokens (RFC 7591 §1.2, §3): an administrator with `registration:admin`
//! creates one for a partner or a pipeline, with an expiry, a number of uses and a policy;
//! the token is shown once and stored only as a digest. Listed and revoked here.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use registry_commands::registration::{token_digest, InitialAccessToken};
use registry_commands::SecretString;
use registry_domain::client::findings::Profile;
use registry_domain::client::ValidationErrors;
use registry_domain::registration::RegistrationPolicy;
use registry_domain::values::{GrantType, Scope, TokenEndpointAuthMethod, ValueError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Authorized, RegistrationAdmin};
use crate::error::{ApiError, Problem};
use crate::extract::{now, AppJson, AppPath};
use crate::state::AppState;

/// Longest lifetime of an initial access token: a year.
const MAX_LIFETIME_SECONDS: u64 = 365 * 24 * 3600;
/// Most uses one token may be given.
const MAX_USES: u64 = 1_000_000;

/// What the clients an initial access token admits may be; an empty list allows what the
/// registry allows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// Grant types a client may have.
    #[serde(default)]
    #[schema(example = json!(["authorization_code", "refresh_token"]))]
    pub grant_types: Vec<String>,
    /// Token endpoint authentication methods a client may use.
    #[serde(default)]
    #[schema(example = json!(["private_key_jwt", "none"]))]
    pub token_endpoint_auth_methods: Vec<String>,
    /// Patterns every redirect URI must match; `*` stands for one host label or one path
    /// segment. Whatever they say, a web client's redirect URIs are `https` (a native app's
    /// may be `http` on loopback or a private-use scheme).
    #[serde(default)]
    #[schema(example = json!(["https://*.partner.example/callback"]))]
    pub redirect_uri_patterns: Vec<String>,
    /// Scopes a client may request (the default of a registration that names none).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// A prefix every client name must start with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name_prefix: Option<String>,
    /// Registered clients start disabled, until an administrator enables them.
    #[serde(default)]
    pub hold_for_approval: bool,
    /// Refuse a client with a `must` finding of this profile: `rfc9700`, `oauth2.1`, `fapi2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_findings_of: Option<String>,
}

impl PolicyBody {
    /// The policy, every entry checked.
    ///
    /// # Errors
    /// A 422 naming each bad entry (`policy.grant_types[0]`).
    pub fn policy(&self) -> Result<RegistrationPolicy, ApiError> {
        let mut errors = ValidationErrors::default();
        fn each<T>(
            errors: &mut ValidationErrors,
            field: &str,
            raw: &[String],
            parse: impl Fn(&str) -> Result<T, ValueError>,
        ) -> Vec<T> {
            if raw.len() > registry_domain::registration::MAX_PATTERNS {
                errors.add(format!("policy.{field}"), "has too many entries");
            }
            (raw.iter().enumerate())
                .filter_map(|(i, value)| {
                    parse(value)
                        .map_err(|e| errors.add(format!("policy.{field}[{i}]"), e.0))
                        .ok()
                })
                .collect()
        }
        let policy = RegistrationPolicy {
            grant_types: each(
                &mut errors,
                "grant_types",
                &self.grant_types,
                GrantType::parse,
            ),
            token_endpoint_auth_methods: each(
                &mut errors,
                "token_endpoint_auth_methods",
                &self.token_endpoint_auth_methods,
                TokenEndpointAuthMethod::parse,
            ),
            redirect_uri_patterns: self.redirect_uri_patterns.clone(),
            scopes: each(&mut errors, "scopes", &self.scopes, Scope::parse),
            client_name_prefix: self.client_name_prefix.clone(),
            hold_for_approval: self.hold_for_approval,
            refuse_findings_of: (self.refuse_findings_of.as_deref()).and_then(|name| {
                Profile::parse(name)
                    .map_err(|e| errors.add("policy.refuse_findings_of", e.0))
                    .ok()
            }),
        };
        if let Err(own) = policy.check_itself() {
            for error in own.errors() {
                errors.add(format!("policy.{}", error.field), error.message.clone());
            }
        }
        errors.into_result(policy).map_err(ApiError::from)
    }

    fn of(policy: &RegistrationPolicy) -> Self {
        let names = |values: Vec<String>| values;
        Self {
            grant_types: names(
                policy
                    .grant_types
                    .iter()
                    .map(|g| g.as_str().to_owned())
                    .collect(),
            ),
            token_endpoint_auth_methods: (policy.token_endpoint_auth_methods.iter())
                .map(|m| m.name().to_owned())
                .collect(),
            redirect_uri_patterns: policy.redirect_uri_patterns.clone(),
            scopes: policy.scopes.iter().map(ToString::to_string).collect(),
            client_name_prefix: policy.client_name_prefix.clone(),
            hold_for_approval: policy.hold_for_approval,
            refuse_findings_of: policy.refuse_findings_of.map(|p| p.name().to_owned()),
        }
    }
}

/// The body of `POST /initial-access-tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// What the token is for, who holds it (1–200 characters).
    #[schema(example = "Partner onboarding, ACME")]
    pub description: String,
    /// Seconds until it stops being accepted (60 – 31,536,000; default 86,400: a day).
    pub expires_in: Option<u64>,
    /// Registrations it admits (1 – 1,000,000; default 1). `null`: any number until it
    /// expires.
    #[schema(value_type = Option<u64>)]
    #[serde(
        default = "one_use",
        deserialize_with = "crate::clients::wire::present"
    )]
    pub max_uses: Option<Option<u64>>,
    /// What the clients it admits may be.
    #[serde(default)]
    pub policy: PolicyBody,
}

impl CreateTokenRequest {
    /// The description, lifetime, uses and policy, each checked.
    ///
    /// # Errors
    /// A 422 naming every bad field.
    fn checked(&self) -> Result<(String, u64, Option<u64>, RegistrationPolicy), ApiError> {
        let mut errors = ValidationErrors::default();
        let description = self.description.trim();
        if description.is_empty()
            || description.chars().count() > 200
            || description.chars().any(char::is_control)
        {
            errors.add(
                "description",
                "must be 1–200 characters without control characters",
            );
        }
        let lifetime = self.expires_in.unwrap_or(86_400);
        if !(60..=MAX_LIFETIME_SECONDS).contains(&lifetime) {
            errors.add(
                "expires_in",
                format!("must be 60–{MAX_LIFETIME_SECONDS} seconds"),
            );
        }
        let max_uses = self.max_uses.flatten();
        if max_uses.is_some_and(|uses| !(1..=MAX_USES).contains(&uses)) {
            errors.add(
                "max_uses",
                format!("must be 1–{MAX_USES}, or null for any number"),
            );
        }
        let policy = self.policy.policy();
        if let Err(ApiError::Validation(policy_errors)) = &policy {
            for error in policy_errors {
                errors.add(error.field.clone(), error.message.clone());
            }
        }
        errors.into_result(()).map_err(ApiError::from)?;
        Ok((description.to_owned(), lifetime, max_uses, policy?))
    }
}

#[allow(clippy::unnecessary_wraps)]
fn one_use() -> Option<Option<u64>> {
    Some(Some(1))
}

/// An initial access token, without the token (shown once, when created).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Its id: `iat-…` (not secret; the actor of the registrations it admits).
    pub token_id: String,
    /// Only in the response that created it: the token. Store it now; it is never shown
    /// again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub initial_access_token: Option<String>,
    /// What it is for.
    pub description: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// Registrations it admits (`null`: any number).
    pub max_uses: Option<i64>,
    /// Registrations it admitted.
    pub uses: i64,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Whether it admits a registration now.
    pub usable: bool,
    /// What the clients it admits may be.
    pub policy: PolicyBody,
    /// In `GET /initial-access-tokens/{token_id}` only: the clients it registered (at most
    /// 1,000, by id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registered_clients: Option<Vec<String>>,
}

fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

impl TokenResponse {
    fn of(token: &InitialAccessToken, now: i64) -> Self {
        Self {
            token_id: token.token_id.clone(),
            initial_access_token: None,
            description: token.description.clone(),
            created_by: token.created_by.clone(),
            created_at: time(token.created_at),
            expires_at: time(token.expires_at),
            max_uses: token.max_uses,
            uses: token.uses,
            revoked_at: token.revoked_at.map(time),
            usable: token.is_usable(now),
            policy: PolicyBody::of(&token.policy),
            registered_clients: None,
        }
    }
}

/// The list of initial access tokens.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenListResponse {
    /// Newest first, at most 1,000.
    pub tokens: Vec<TokenResponse>,
}

/// Create an initial access token: shown once, in this response.
#[utoipa::path(
    post, path = "/api/v1/initial-access-tokens", tag = "registration",
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "Created; the token is in this response only", body = TokenResponse),
        (status = 422, description = "Invalid fields, each named", body = Problem, content_type = "application/problem+json"),
        crate::responses::DeniedOrBadBody,
    ),
    security(("bearer" = []))
)]
pub async fn create_token(
    Authorized(caller, _): Authorized<RegistrationAdmin>,
    State(state): State<AppState>,
    AppJson(body): AppJson<CreateTokenRequest>,
) -> Result<Response, ApiError> {
    let response = create(&state, caller.name, &body).await?;
    Ok((
        StatusCode::CREATED,
        crate::registration::no_store(),
        Json(response),
    )
        .into_response())
}

/// Creates a token for `created_by` (the API's and the screens' one way to do it): the answer
/// holds its plaintext, the only time it is shown.
///
/// # Errors
/// A 422 naming every bad field; database failures.
pub async fn create(
    state: &AppState,
    created_by: String,
    body: &CreateTokenRequest,
) -> Result<TokenResponse, ApiError> {
    let (description, lifetime, max_uses, policy) = body.checked()?;
    let now = now().timestamp();
    let secret = SecretString::generate();
    let plaintext = format!("iat_{}", secret.expose());
    let token = InitialAccessToken {
        token_id: format!("iat-{}", &SecretString::generate().expose()[..16]),
        description,
        created_by,
        created_at: now,
        expires_at: now.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX)),
        max_uses: max_uses.and_then(|uses| i64::try_from(uses).ok()),
        uses: 0,
        revoked_at: None,
        policy,
    };
    let database = state.database.clone();
    let digest = token_digest(&plaintext);
    let stored = token.clone();
    // Stored whether or not the caller is still there to read the answer.
    tokio::spawn(async move { database.create_initial_access_token(&stored, &digest).await })
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    let mut response = TokenResponse::of(&token, now);
    response.initial_access_token = Some(plaintext);
    Ok(response)
}

/// Every token, newest first (at most 1,000), as the API and the screens list them.
///
/// # Errors
/// Database failures.
pub async fn list(state: &AppState) -> Result<Vec<TokenResponse>, ApiError> {
    let now = now().timestamp();
    let tokens = state.database.initial_access_tokens(1000).await?;
    Ok(tokens.iter().map(|t| TokenResponse::of(t, now)).collect())
}

/// One token with the clients it registered; `None` when there is no such token.
///
/// # Errors
/// Database failures.
pub async fn detail(state: &AppState, token_id: &str) -> Result<Option<TokenResponse>, ApiError> {
    let Some(token) = state.database.initial_access_token(token_id).await? else {
        return Ok(None);
    };
    let mut response = TokenResponse::of(&token, now().timestamp());
    response.registered_clients = Some(
        state
            .database
            .clients_registered_with(token_id, 1000)
            .await?,
    );
    Ok(Some(response))
}

/// Revokes a token (whether or not the caller waits); false when there is no such token.
///
/// # Errors
/// Database failures.
pub async fn revoke(state: &AppState, token_id: &str) -> Result<bool, ApiError> {
    if state
        .database
        .initial_access_token(token_id)
        .await?
        .is_none()
    {
        return Ok(false);
    }
    let (database, token_id) = (state.database.clone(), token_id.to_owned());
    let at = now().timestamp();
    tokio::spawn(async move { database.revoke_initial_access_token(&token_id, at).await })
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    Ok(true)
}

/// List the initial access tokens (never the tokens themselves).
#[utoipa::path(
    get, path = "/api/v1/initial-access-tokens", tag = "registration",
    responses(
        (status = 200, description = "Newest first", body = TokenListResponse),
        crate::responses::DeniedOrBadQuery,
    ),
    security(("bearer" = []))
)]
pub async fn list_tokens(
    _caller: Authorized<RegistrationAdmin>,
    State(state): State<AppState>,
) -> Result<Json<TokenListResponse>, ApiError> {
    Ok(Json(TokenListResponse {
        tokens: list(&state).await?,
    }))
}

/// Read an initial access token, with the clients it registered.
#[utoipa::path(
    get, path = "/api/v1/initial-access-tokens/{token_id}", tag = "registration",
    params(("token_id" = String, Path, description = "The token's id")),
    responses(
        (status = 200, description = "The token", body = TokenResponse),
        (status = 404, description = "No such token", body = Problem, content_type = "application/problem+json"),
        crate::responses::DeniedOrBadQuery,
    ),
    security(("bearer" = []))
)]
pub async fn get_token(
    _caller: Authorized<RegistrationAdmin>,
    State(state): State<AppState>,
    AppPath(token_id): AppPath<String>,
) -> Result<Json<TokenResponse>, ApiError> {
    let token = detail(&state, &token_id).await?;
    Ok(Json(token.ok_or(ApiError::RouteNotFound)?))
}

/// Revoke an initial access token: it admits no more registrations. The clients it
/// registered stay (delete them, or let the pruner do it).
#[utoipa::path(
    delete, path = "/api/v1/initial-access-tokens/{token_id}", tag = "registration",
    params(("token_id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked (or revoked before)"),
        (status = 404, description = "No such token", body = Problem, content_type = "application/problem+json"),
        crate::responses::DeniedOrBadQuery,
    ),
    security(("bearer" = []))
)]
pub async fn revoke_token(
    _caller: Authorized<RegistrationAdmin>,
    State(state): State<AppState>,
    AppPath(token_id): AppPath<String>,
) -> Result<StatusCode, ApiError> {
    if revoke(&state, &token_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::RouteNotFound)
    }
}
