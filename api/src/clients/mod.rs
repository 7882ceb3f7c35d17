//! `/api/v1/clients`: list, register, read, replace, rotate the secret of, and delete clients.

pub mod filters;
pub mod findings;
pub mod wire;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use registry_projections::{as_of, AsOf, ClientView, ListQuery, StoredEvent};

use registry_commands::secrets::MAX_SECRET_LEN;

use crate::auth::{Authorized, ClientsRead, ClientsWrite, Role, SecretsVerify};
use crate::error::{ApiError, Problem, ProblemFieldError};
use crate::extract::{
    etag, AppJson, AppPath, AppQuery, IfMatch, IfNoneMatch, OptionalJson, RequestContext,
};
use crate::state::AppState;
use registry_commands::CommandError;
use registry_domain::values::GracePeriod;
use registry_domain::{ClientError, ClientSettingsInput};
use wire::{
    editable_document, merge_patch, ClientListResponse, ClientRequest, ClientResponse,
    GetClientParams, ListClientsParams, RotateSecretRequest, RotateSecretResponse,
    VerifySecretRequest, VerifySecretResponse,
};

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/clients", get(list_clients).post(create_client))
        .route(
            "/clients/{client_id}",
            get(get_client)
                .put(update_client)
                .patch(patch_client)
                .delete(delete_client),
        )
        .route("/clients/{client_id}/secret", post(rotate_secret))
        .route("/clients/{client_id}/secret/verify", post(verify_secret))
        .route("/clients/{client_id}/findings", get(findings::get_findings))
        .route("/findings", get(findings::get_report))
}

fn with_etag(status: StatusCode, version: u64, body: impl IntoResponse) -> Response {
    let mut response = (status, body).into_response();
    if let Ok(value) = HeaderValue::from_str(&etag(version)) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// List and search clients.
#[utoipa::path(
    get, path = "/api/v1/clients", tag = "clients",
    params(ListClientsParams),
    responses(
        (status = 200, description = "A page of clients", body = ClientListResponse),
        crate::responses::ListRefusals,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn list_clients(
    _caller: Authorized<ClientsRead>,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<ListClientsParams>,
) -> Result<Json<ClientListResponse>, ApiError> {
    let query = ListQuery::parse(
        params.search.as_deref(),
        params.enabled,
        params.sort.as_deref(),
        params.limit,
        params.cursor.as_deref(),
    )
    .map_err(ApiError::invalid_query)?;
    let mut query = query;
    query.only = filters::only(&state, &params)
        .await?
        .map(std::sync::Arc::new);
    let page = if state.search.is_ready() {
        state.search.search(&query)
    } else {
        state.reads.list(&query).await?
    };
    Ok(Json(page.into()))
}

/// Register a client. A confidential client without `client_secret` gets a generated secret,
/// returned once as `client_secret`.
#[utoipa::path(
    post, path = "/api/v1/clients", tag = "clients",
    request_body = ClientRequest,
    params(crate::responses::ChangeReason),
    responses(
        (status = 201, description = "Registered", body = ClientResponse,
         headers(("Location" = String, description = "URL of the client"), ("ETag" = String, description = "Version")),
         links(
            ("GetClient" = (operation_id = "get_client", parameters(("client_id" = "$response.body#/client_id")))),
            ("UpdateClient" = (operation_id = "update_client", parameters(("client_id" = "$response.body#/client_id")))),
            ("PatchClient" = (operation_id = "patch_client", parameters(("client_id" = "$response.body#/client_id")))),
            ("RotateSecret" = (operation_id = "rotate_secret", parameters(("client_id" = "$response.body#/client_id")))),
            ("VerifySecret" = (operation_id = "verify_secret", parameters(("client_id" = "$response.body#/client_id")))),
            ("ClientHistory" = (operation_id = "client_history", parameters(("client_id" = "$response.body#/client_id")))),
            ("DeleteClient" = (operation_id = "delete_client", parameters(("client_id" = "$response.body#/client_id")))),
         )),
        (status = 409, description = "client_id already registered", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, all listed", body = Problem, content_type = "application/problem+json"),
        crate::responses::DeniedOrBadBody,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn create_client(
    _caller: Authorized<ClientsWrite>,
    State(state): State<AppState>,
    RequestContext(ctx): RequestContext,
    AppJson(body): AppJson<ClientRequest>,
) -> Result<Response, ApiError> {
    let client_id = body.client_id.clone().unwrap_or_default();
    let executed = state
        .commands
        .register(&ctx, &client_id, body.settings(), body.client_secret)
        .await?;
    let view = AppState::client_after_write(&executed)?;
    let body = ClientResponse::new(view, executed.secret.as_ref());
    let mut response = with_etag(StatusCode::CREATED, body.version, Json(&body));
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/clients/{client_id}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// Read a client — as it is, or as it was at a version or a time (computed by replaying its
/// events).
#[utoipa::path(
    get, path = "/api/v1/clients/{client_id}", tag = "clients",
    params(
        crate::responses::ClientPath,
        GetClientParams,
        ("If-None-Match" = Option<String>, Header, description = "ETag of a cached copy"),
    ),
    responses(
        (status = 200, description = "The client", body = ClientResponse,
         headers(("ETag" = String, description = "Version"))),
        (status = 304, description = "Not modified since the given ETag"),
        (status = 404, description = "Unknown, deleted, or not registered yet at that point", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Deleted at that point (as_of queries)", body = Problem, content_type = "application/problem+json"),
        crate::responses::DeniedOrBadQuery,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(client_id = %client_id))]
pub async fn get_client(
    Authorized(caller, _): Authorized<ClientsRead>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
    AppQuery(params): AppQuery<GetClientParams>,
    cached: IfNoneMatch,
) -> Result<Response, ApiError> {
    if params.as_of_version.is_some() || params.as_of.is_some() {
        caller.require(Role::AuditRead)?;
    }
    let now = params.as_of_version.is_none() && params.as_of.is_none();
    let (view, fresh_for) = if now && is_document_url(&client_id) {
        match document_client(&state, &client_id).await {
            Ok(resolved) => resolved,
            Err(refused) => return Ok(refused),
        }
    } else {
        (client_at(&state, &client_id, &params).await?, None)
    };
    let mut response = if cached.matches(view.version) {
        with_etag(StatusCode::NOT_MODIFIED, view.version, ())
    } else {
        let version = view.version;
        with_etag(
            StatusCode::OK,
            version,
            Json(ClientResponse::new(view, None)),
        )
    };
    if let Some(fresh_for) = fresh_for {
        cache_for(&mut response, fresh_for);
    }
    Ok(response)
}

/// A client whose id is a document URL, as the resolver finds it, and how long the identity
/// service may use the answer; or the refusal (a 404 saying why, cacheable for the minimum
/// freshness, so that a provider does not ask again at once).
async fn document_client(
    state: &AppState,
    client_id: &str,
) -> Result<(ClientView, Option<std::time::Duration>), Response> {
    let Some(documents) = &state.documents else {
        let off = "client ID metadata documents are off (REGISTRY_CLIENT_ID_DOCUMENTS)";
        return Err(ApiError::DocumentRefused(off.to_owned()).into_response());
    };
    let stores = crate::client_documents::routes::stores(state);
    match documents.resolve(&stores, client_id, false).await {
        Ok(resolved) => Ok((resolved.view, Some(resolved.fresh_for))),
        Err(error @ ApiError::DocumentRefused(_)) => {
            let mut response = error.into_response();
            cache_for(&mut response, documents.settings().min_fresh);
            Err(response)
        }
        Err(error) => Err(error.into_response()),
    }
}

/// `Cache-Control: private, max-age=…`: how long the identity service may use the answer.
fn cache_for(response: &mut Response, fresh_for: std::time::Duration) {
    let value = format!("private, max-age={}", fresh_for.as_secs());
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
}

fn is_document_url(client_id: &str) -> bool {
    registry_domain::values::ClientId::names_document(client_id)
}

/// The client now, or as it was at the version or time `params` names.
async fn client_at(
    state: &AppState,
    client_id: &str,
    params: &GetClientParams,
) -> Result<ClientView, ApiError> {
    match (params.as_of_version, params.as_of) {
        (None, None) => (state.reads.client(client_id).await?).ok_or(ApiError::ClientNotFound),
        (Some(_), Some(_)) => Err(ApiError::InvalidQuery(vec![ProblemFieldError {
            field: "as_of".to_owned(),
            message: "give as_of or as_of_version, not both".to_owned(),
        }])),
        (Some(version), None) => client_as_of(state, client_id, |e| e.sequence <= version).await,
        (None, Some(time)) => {
            client_as_of(state, client_id, |e| e.metadata.recorded_at <= time).await
        }
    }
}

/// The client replayed over the prefix of its stream that `include` accepts.
async fn client_as_of(
    state: &AppState,
    client_id: &str,
    include: impl Fn(&StoredEvent) -> bool,
) -> Result<ClientView, ApiError> {
    let events = state.reads.client_events(client_id).await?;
    match as_of(&events, include).map_err(|e| ApiError::Internal(e.into()))? {
        AsOf::Live(record) => Ok(record.view),
        AsOf::NotRegistered => Err(ApiError::ClientNotFound),
        AsOf::Deleted {
            version,
            deleted_at,
        } => Err(ApiError::ClientDeleted(format!(
            "the client was deleted then (version {version}, deleted at {})",
            deleted_at.to_rfc3339()
        ))),
    }
}

/// Replace every editable setting of a client. `client_id` cannot change; secrets change
/// through rotation. A client made confidential without a secret gets a generated one,
/// returned once as `client_secret`.
#[utoipa::path(
    put, path = "/api/v1/clients/{client_id}", tag = "clients",
    request_body = ClientRequest,
    params(crate::responses::ClientWrite),
    responses(
        (status = 200, description = "Updated (or unchanged)", body = ClientResponse,
         headers(("ETag" = String, description = "Version"))),
        (status = 422, description = "Invalid fields, all listed", body = Problem, content_type = "application/problem+json"),
        crate::responses::ClientWriteRefusals,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(client_id = %client_id))]
pub async fn update_client(
    _caller: Authorized<ClientsWrite>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
    IfMatch(expected_version): IfMatch,
    RequestContext(ctx): RequestContext,
    AppJson(body): AppJson<ClientRequest>,
) -> Result<Response, ApiError> {
    let settings = replacement(&client_id, &body)?;
    let executed = state
        .commands
        .update(&ctx, &client_id, settings, expected_version)
        .await?;
    let view = AppState::client_after_write(&executed)?;
    let body = ClientResponse::new(view, executed.secret.as_ref());
    Ok(with_etag(StatusCode::OK, body.version, Json(&body)))
}

/// The settings a `PUT` body (or a merged `PATCH` document) replaces the client's with:
/// `client_id` cannot change, secrets change through rotation, and every editable field must
/// be there (all missing ones are named at once).
fn replacement(client_id: &str, body: &ClientRequest) -> Result<ClientSettingsInput, ApiError> {
    let mut errors = Vec::new();
    if body.client_id.as_ref().is_some_and(|id| id != client_id) {
        errors.push(ProblemFieldError {
            field: "client_id".to_owned(),
            message: format!("cannot be changed: this client is {client_id}"),
        });
    }
    if body.client_secret.is_some() {
        errors.push(ProblemFieldError {
            field: "client_secret".to_owned(),
            message: format!("is set through POST /api/v1/clients/{client_id}/secret"),
        });
    }
    for field in body.missing_for_replace() {
        errors.push(ProblemFieldError {
            field: field.to_owned(),
            message: "is required: PUT replaces every editable field (PATCH changes some)"
                .to_owned(),
        });
    }
    if errors.is_empty() {
        Ok(body.settings())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Change some settings of a client: a JSON Merge Patch (RFC 7396) of its editable fields,
/// e.g. `{"enabled": false}` or `{"client_uri": null}`. Validated, versioned and recorded
/// like `PUT`. Without `If-Match`, the patch applies to the version it was merged with: a
/// concurrent change is a 409, never silently overwritten.
#[utoipa::path(
    patch, path = "/api/v1/clients/{client_id}", tag = "clients",
    request_body(content = ClientRequest, content_type = "application/merge-patch+json",
        description = "The fields to change; null removes an optional one (client_uri)"),
    params(crate::responses::ClientWrite),
    responses(
        (status = 200, description = "Updated (or unchanged)", body = ClientResponse,
         headers(("ETag" = String, description = "Version"))),
        (status = 422, description = "Invalid fields, all listed", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Hashing queue full (Retry-After) or database unavailable", body = Problem, content_type = "application/problem+json"),
        crate::responses::ClientWriteRefusals,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(client_id = %client_id))]
pub async fn patch_client(
    _caller: Authorized<ClientsWrite>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
    IfMatch(expected_version): IfMatch,
    RequestContext(ctx): RequestContext,
    AppJson(patch): AppJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let (body, merged_with) = patched(&state, &client_id, &patch).await?;
    let settings = replacement(&client_id, &body)?;
    let version = Some(expected_version.unwrap_or(merged_with));
    let executed = (state.commands.update(&ctx, &client_id, settings, version))
        .await
        .map_err(|error| match error {
            // The version the patch was merged with is gone: another write came first.
            CommandError::Rejected(ClientError::VersionMismatch { .. })
                if expected_version.is_none() =>
            {
                ApiError::ConcurrentModification
            }
            other => other.into(),
        })?;
    let view = AppState::client_after_write(&executed)?;
    let body = ClientResponse::new(view, executed.secret.as_ref());
    Ok(with_etag(StatusCode::OK, body.version, Json(&body)))
}

/// The client's editable fields with `patch` merged in (RFC 7396), as a `PUT` body, and the
/// version they were read at.
async fn patched(
    state: &AppState,
    client_id: &str,
    patch: &serde_json::Value,
) -> Result<(ClientRequest, u64), ApiError> {
    let current = state.commands.load_client(client_id).await?;
    let view = ClientView::from_write_model(&current).ok_or(ApiError::ClientNotFound)?;
    let merged_with = view.version;
    let derived = view.settings.token_endpoint_auth_method.is_none();
    let mut document = editable_document(&ClientResponse::new(view, None))
        .map_err(|e| ApiError::Internal(e.into()))?;
    if let (true, Some(fields)) = (derived, document.as_object_mut()) {
        // A method the client never named follows its confidentiality: not made explicit
        // by a patch that does not name it.
        fields.remove("token_endpoint_auth_method");
    }
    merge_patch(&mut document, patch);
    if let Some(fields) = document.as_object_mut() {
        // The one optional field: removed by the patch means none.
        fields
            .entry("client_uri")
            .or_insert(serde_json::Value::Null);
        // The keys are by value or by reference: a patch that gives one drops the other.
        for (given, other) in [("jwks", "jwks_uri"), ("jwks_uri", "jwks")] {
            let gives = patch.get(given).is_some_and(|v| !v.is_null());
            if gives && patch.get(other).is_none() {
                fields.insert(other.to_owned(), serde_json::Value::Null);
            }
        }
        // Removed by the patch: the default again (left out of the body would keep it).
        if patch.get("token_endpoint_auth_method") == Some(&serde_json::Value::Null) {
            fields.insert(
                "token_endpoint_auth_method".to_owned(),
                serde_json::Value::Null,
            );
        }
    }
    let body = crate::extract::parse_json(document.to_string().as_bytes())?;
    Ok((body, merged_with))
}

/// Give a confidential client a new secret. The previous secret stops working at once, or
/// after `previous_secret_valid_for` seconds.
#[utoipa::path(
    post, path = "/api/v1/clients/{client_id}/secret", tag = "clients",
    request_body(content = Option<RotateSecretRequest>, description = "May be empty"),
    params(crate::responses::ClientWrite),
    responses(
        (status = 200, description = "Rotated", body = RotateSecretResponse,
         headers(("ETag" = String, description = "Version"))),
        (status = 422, description = "Public client, a client that signs with its keys (private_key_jwt), or an unacceptable secret", body = Problem, content_type = "application/problem+json"),
        crate::responses::ClientWriteRefusals,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(client_id = %client_id))]
pub async fn rotate_secret(
    _caller: Authorized<ClientsWrite>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
    IfMatch(expected_version): IfMatch,
    RequestContext(ctx): RequestContext,
    OptionalJson(body): OptionalJson<RotateSecretRequest>,
) -> Result<Response, ApiError> {
    let grace = GracePeriod::from_seconds(body.previous_secret_valid_for.unwrap_or(0))
        .map_err(|e| ApiError::invalid_field("previous_secret_valid_for", e.0))?;
    let executed = (state.commands)
        .rotate_secret(
            &ctx,
            &client_id,
            body.client_secret,
            grace.until(ctx.at),
            expected_version,
        )
        .await?;
    let response = RotateSecretResponse::of(executed)?;
    Ok(with_etag(StatusCode::OK, response.version, Json(response)))
}

/// Delete a client: applications using its id can no longer authenticate. Its history stays;
/// the id may be registered again.
#[utoipa::path(
    delete, path = "/api/v1/clients/{client_id}", tag = "clients",
    params(crate::responses::ClientWrite),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed header", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown or already deleted", body = Problem, content_type = "application/problem+json"),
        crate::responses::Denied,
        crate::responses::Conflicts,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(client_id = %client_id))]
pub async fn delete_client(
    _caller: Authorized<ClientsWrite>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
    IfMatch(expected_version): IfMatch,
    RequestContext(ctx): RequestContext,
) -> Result<StatusCode, ApiError> {
    state
        .commands
        .delete(&ctx, &client_id, expected_version)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Check a client secret, for the identity service's token endpoint. An unknown, deleted,
/// disabled or public client gets the same `{"valid": false}` as a wrong secret, after the
/// same argon2 work; a delete, a disable or a rotation counts at once.
#[utoipa::path(
    post, path = "/api/v1/clients/{client_id}/secret/verify", tag = "clients",
    request_body = VerifySecretRequest,
    params(crate::responses::ClientPath),
    responses(
        (status = 200, description = "Whether the secret is valid", body = VerifySecretResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks secrets:verify", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No client_secret in the body, or one longer than any secret", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every hashing thread is busy and the queue is full (Retry-After)", body = Problem, content_type = "application/problem+json"),
        crate::responses::Unauthenticated,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(client_id = %client_id))]
pub async fn verify_secret(
    _caller: Authorized<SecretsVerify>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
    AppJson(body): AppJson<VerifySecretRequest>,
) -> Result<Json<VerifySecretResponse>, ApiError> {
    // Bounded here, not only in the OpenAPI document: argon2 over a 256 KiB body would cost
    // a hashing thread for nothing (no secret is longer than this).
    if body.client_secret.chars().count() > MAX_SECRET_LEN {
        return Err(ApiError::invalid_field(
            "client_secret",
            format!("must be at most {MAX_SECRET_LEN} characters"),
        ));
    }
    let verification = (state.commands)
        .verify_secret(&client_id, body.client_secret, crate::extract::now())
        .await?;
    Ok(Json(VerifySecretResponse::from(verification)))
}
