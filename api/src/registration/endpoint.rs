//! `POST /register` (RFC 7591 §3) and `GET`/`PUT`/`DELETE /register/{client_id}` (RFC 7592).

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use registry_commands::registration::{token_digest, RegistrationAccessToken};
use registry_commands::{CommandContext, CommandError, Executed, SecretString};
use registry_domain::registration::RegistrationPolicy;
use registry_domain::ClientError;
use registry_projections::ClientView;
use subtle::ConstantTimeEq;

use super::error::RegistrationError;
use super::metadata::{check, ClientMetadata, Kept, RegistrationResponse};
use super::{no_store, Registration, MAX_METADATA_BYTES};
use crate::error::ApiError;
use crate::extract::now;
use crate::state::AppState;

/// The caller's address, when the server knows it.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddress(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(Self(peer.map(|ConnectInfo(address)| address.ip())))
    }
}

fn configured(state: &AppState) -> Result<&Registration, RegistrationError> {
    (state.registration.as_deref()).ok_or(RegistrationError::Api(ApiError::RouteNotFound))
}

fn bearer(headers: &HeaderMap) -> Result<&str, RegistrationError> {
    (crate::auth::bearer_token(headers))
        .filter(|token| token.len() <= 512)
        .ok_or(RegistrationError::InvalidToken)
}

fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, RegistrationError> {
    body.map_err(|_| RegistrationError::TooLarge(MAX_METADATA_BYTES))
}

/// The client configuration endpoint of `client_id`.
fn client_uri(registration: &Registration, headers: &HeaderMap, client_id: &str) -> String {
    let base = registration.public_url.clone().unwrap_or_else(|| {
        let host = (headers.get(header::HOST))
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            });
        // Over http only on loopback: a registry behind TLS sets REGISTRY_PUBLIC_URL.
        host.map_or_else(String::new, |host| {
            let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
            let loopback = matches!(name, "127.0.0.1" | "localhost" | "[::1]");
            format!("{}://{host}", if loopback { "http" } else { "https" })
        })
    });
    format!("{}/register/{client_id}", base.trim_end_matches('/'))
}

fn context(actor: String, reason: &str, headers: &HeaderMap) -> CommandContext {
    CommandContext {
        actor,
        request_id: (headers.get("x-request-id"))
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        reason: Some(reason.to_owned()),
        at: now(),
    }
}

/// When the current secret's lifetime ends (seconds since the epoch), if it has an end.
fn secret_ends(view: &ClientView) -> Option<i64> {
    (view.current_secret())
        .and_then(|s| s.valid_until)
        .map(|end| end.timestamp())
}

/// The answer for a client a command just wrote, with what it issued.
fn answer(
    executed: &Executed,
    uri: String,
    token: Option<String>,
) -> Result<RegistrationResponse, RegistrationError> {
    let view = AppState::client_after_write(executed)?;
    let mut response = RegistrationResponse::new(
        &view.client_id,
        &view.settings,
        (view.created_at.timestamp(), secret_ends(&view)),
        uri,
    );
    response.client_secret = (executed.secret.as_ref())
        .and_then(|s| s.generated.as_ref())
        .map(|secret| secret.expose().to_owned());
    response.registration_access_token = token;
    Ok(response)
}

/// Register a client (RFC 7591 §3.1), admitted by an initial access token
/// (`Authorization: Bearer`) and checked against its policy.
#[utoipa::path(
    post, path = "/register", tag = "registration",
    request_body = ClientMetadata,
    responses(
        (status = 201, description = "Registered; the secret and the registration access token are in this response only", body = RegistrationResponse),
        (status = 400, description = "invalid_redirect_uri, invalid_client_metadata or invalid_software_statement", body = super::error::RegistrationErrorBody),
        (status = 401, description = "No, an unknown, expired, used-up or revoked initial access token", body = super::error::RegistrationErrorBody),
        (status = 413, description = "Metadata larger than 64 KiB", body = super::error::RegistrationErrorBody),
        (status = 429, description = "Too many registrations; Retry-After", body = super::error::RegistrationErrorBody),
        (status = 404, description = "Dynamic registration is off (REGISTRY_DYNAMIC_REGISTRATION)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn register(
    State(state): State<AppState>,
    PeerAddress(address): PeerAddress,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, RegistrationError> {
    let registration = configured(&state)?;
    let limiter = &registration.limiter;
    limiter
        .admit_address(address)
        .map_err(RegistrationError::RateLimited)?;
    let digest = token_digest(bearer(&headers)?);
    let at = now();
    let token = (state.database)
        .usable_initial_access_token(&digest, at.timestamp())
        .await?
        .ok_or(RegistrationError::InvalidToken)?;
    // Only callers with a token count against everyone's limit.
    limiter
        .admit_total()
        .map_err(RegistrationError::RateLimited)?;
    let metadata = ClientMetadata::parse(&body(raw)?)?;
    let input = metadata.settings(&token.policy, Kept::new(&token.policy))?;
    check(&input, &token.policy, at)?;
    let client_id = SecretString::generate().expose()[..24].to_owned();
    let access_token = format!("rat_{}", SecretString::generate().expose());
    let ctx = context(
        format!("initial-access-token:{}", token.token_id),
        "dynamic client registration (RFC 7591)",
        &headers,
    );
    let (database, commands) = (state.database.clone(), state.commands.clone());
    let (id, rat_digest) = (client_id.clone(), token_digest(&access_token));
    // One task: the use, the token and the event happen together or not, whether or not the
    // caller waits for the answer.
    let executed = tokio::spawn(async move {
        let used = database.use_initial_access_token(&digest, at.timestamp());
        let used = used.await?.ok_or(RegistrationError::InvalidToken)?;
        let times = (at.timestamp(), ctx.at.timestamp_micros());
        (database.put_registration_access_token(&id, &rat_digest, &used.token_id, times)).await?;
        match commands.register(&ctx, &id, input, None).await {
            Ok(executed) => Ok(executed),
            Err(error) => {
                // Not the caller's doing (it was checked): the use is given back.
                let _ = database.delete_registration_access_token(&id).await;
                let _ = database
                    .give_back_initial_access_token_use(&used.token_id)
                    .await;
                Err(RegistrationError::from(error))
            }
        }
    })
    .await
    .map_err(|e| RegistrationError::Api(ApiError::Internal(e.into())))??;
    let uri = client_uri(registration, &headers, &client_id);
    let response = answer(&executed, uri.clone(), Some(access_token))?;
    let mut response = (StatusCode::CREATED, no_store(), Json(response)).into_response();
    if let Ok(location) = HeaderValue::from_str(&uri) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The client a registration access token is for, with its token record.
async fn authenticated(
    state: &AppState,
    client_id: &str,
    headers: &HeaderMap,
) -> Result<(RegistrationAccessToken, ClientView), RegistrationError> {
    configured(state)?;
    let presented = token_digest(bearer(headers)?);
    let stored = (state.database.registration_access_token(client_id).await?)
        .ok_or(RegistrationError::InvalidToken)?;
    if !bool::from(presented.as_bytes().ct_eq(stored.sha256.as_bytes())) {
        return Err(RegistrationError::InvalidToken);
    }
    let current = state.commands.load_client(client_id).await?;
    // Deleted (by anyone), or deleted and registered again under the same id: not the
    // registration this token was issued for. The token goes (RFC 7592 §3).
    let same = registry_commands::registration::same_registration(
        current.registered_at,
        stored.registered_at,
    );
    let view = ClientView::from_write_model(&current).filter(|_| same);
    let Some(view) = view else {
        state
            .database
            .delete_registration_access_token(client_id)
            .await?;
        return Err(RegistrationError::InvalidToken);
    };
    Ok((stored, view))
}

/// Read the client's registration (RFC 7592 §2.1).
#[utoipa::path(
    get, path = "/register/{client_id}", tag = "registration",
    params(("client_id" = String, Path, description = "The registered client")),
    responses(
        (status = 200, description = "The registration (no secret, no new token)", body = RegistrationResponse),
        (status = 401, description = "No or a wrong registration access token, or the client is gone", body = super::error::RegistrationErrorBody),
        (status = 404, description = "Dynamic registration is off (REGISTRY_DYNAMIC_REGISTRATION)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn read_registration(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, RegistrationError> {
    let (_, view) = authenticated(&state, &client_id, &headers).await?;
    let uri = client_uri(configured(&state)?, &headers, &client_id);
    let response = RegistrationResponse::new(
        &client_id,
        &view.settings,
        (view.created_at.timestamp(), secret_ends(&view)),
        uri,
    );
    Ok((no_store(), Json(response)).into_response())
}

/// Replace the client's registration (RFC 7592 §2.2): the whole metadata, checked against the
/// policy of the token that registered it. A new registration access token is issued; the one
/// used stops working.
#[utoipa::path(
    put, path = "/register/{client_id}", tag = "registration",
    params(("client_id" = String, Path, description = "The registered client")),
    request_body = ClientMetadata,
    responses(
        (status = 200, description = "Replaced; the new registration access token (and a new secret, if one was issued) are in this response only", body = RegistrationResponse),
        (status = 400, description = "invalid_redirect_uri or invalid_client_metadata", body = super::error::RegistrationErrorBody),
        (status = 401, description = "No or a wrong registration access token", body = super::error::RegistrationErrorBody),
        (status = 409, description = "Changed concurrently; read it and retry", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Dynamic registration is off (REGISTRY_DYNAMIC_REGISTRATION)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn replace_registration(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Response, RegistrationError> {
    let (stored, view) = authenticated(&state, &client_id, &headers).await?;
    let metadata = ClientMetadata::parse(&body(raw)?)?;
    if metadata
        .client_id
        .as_deref()
        .is_some_and(|id| id != client_id)
    {
        return Err(RegistrationError::Metadata(
            "client_id: must be the id of the client being replaced".to_owned(),
        ));
    }
    let policy = (state
        .database
        .initial_access_token(&stored.token_id)
        .await?)
        .map_or_else(RegistrationPolicy::default, |token| token.policy);
    let at = now();
    let input = metadata.settings(&policy, Kept::of(&view.settings, &policy))?;
    check(&input, &policy, at)?;
    let access_token = format!("rat_{}", SecretString::generate().expose());
    let ctx = context(
        format!("registration:{client_id}"),
        "client configuration endpoint (RFC 7592)",
        &headers,
    );
    let replacing = Replacing {
        client_id: client_id.clone(),
        current: stored.sha256,
        new: token_digest(&access_token),
        version: view.version,
    };
    let executed = tokio::spawn(replacing.run(state.clone(), ctx, input))
        .await
        .map_err(|e| RegistrationError::Api(ApiError::Internal(e.into())))??;
    let uri = client_uri(configured(&state)?, &headers, &client_id);
    let response = answer(&executed, uri, Some(access_token))?;
    Ok((no_store(), Json(response)).into_response())
}

/// A replacement through RFC 7592: the new access token takes the place of the one presented
/// (of two replacements with one token, one wins), then the update; an update that fails
/// gives the presented token back.
struct Replacing {
    client_id: String,
    current: String,
    new: String,
    version: u64,
}

impl Replacing {
    async fn run(
        self,
        state: AppState,
        ctx: CommandContext,
        input: registry_domain::ClientSettingsInput,
    ) -> Result<Executed, RegistrationError> {
        let Self {
            client_id,
            current,
            new,
            version,
        } = self;
        let at = ctx.at.timestamp();
        let database = &state.database;
        if !(database.replace_registration_access_token(&client_id, &current, &new, at)).await? {
            return Err(RegistrationError::InvalidToken);
        }
        match state
            .commands
            .update(&ctx, &client_id, input, Some(version))
            .await
        {
            Ok(executed) => Ok(executed),
            Err(error) => {
                let restore =
                    database.replace_registration_access_token(&client_id, &new, &current, at);
                let _ = restore.await;
                Err(match error {
                    CommandError::Rejected(ClientError::VersionMismatch { .. }) => {
                        RegistrationError::Api(ApiError::ConcurrentModification)
                    }
                    other => other.into(),
                })
            }
        }
    }
}

/// Delete the client (RFC 7592 §2.3): recorded in its history as the client's own doing; its
/// registration access token stops working.
#[utoipa::path(
    delete, path = "/register/{client_id}", tag = "registration",
    params(("client_id" = String, Path, description = "The registered client")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or a wrong registration access token", body = super::error::RegistrationErrorBody),
        (status = 404, description = "Dynamic registration is off (REGISTRY_DYNAMIC_REGISTRATION)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_registration(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, RegistrationError> {
    let (_, view) = authenticated(&state, &client_id, &headers).await?;
    let ctx = context(
        format!("registration:{client_id}"),
        "client configuration endpoint (RFC 7592)",
        &headers,
    );
    let (database, commands) = (state.database.clone(), state.commands.clone());
    tokio::spawn(async move {
        commands
            .delete(&ctx, &client_id, Some(view.version))
            .await?;
        database
            .delete_registration_access_token(&client_id)
            .await?;
        Ok::<_, RegistrationError>(())
    })
    .await
    .map_err(|e| RegistrationError::Api(ApiError::Internal(e.into())))??;
    Ok(StatusCode::NO_CONTENT)
}
