//! Plan and apply a clients document over HTTP: `POST /clients/plan` reads the body and asks
//! `registry_commands::documents` for the signed plan; `POST /clients/apply` checks the plan
//! and runs it in a task of its own (a caller that disconnects does not stop an apply
//! half-way). The rules are in `commands/src/documents/`.

use axum::extract::State;
use axum::http::header;
use axum::Json;
use registry_commands::documents::{
    self, apply as applying, ApplyRequest, ApplyResult, DocumentFormat, Plan,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Authorized, ClientsRead, ClientsWrite};
use crate::error::ApiError;
use crate::extract::{AppJson, AppQuery, RequestContext, DOCUMENT_LIMIT, PLAN_LIMIT};
use crate::state::AppState;

/// Query of `/clients/plan`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PlanParams {
    /// Also delete the live clients the document does not name (never its `unmanaged` ones).
    pub prune: Option<bool>,
}

/// Plan a clients document: what applying it would do, changing nothing.
#[utoipa::path(
    post, path = "/api/v1/clients/plan", tag = "documents",
    params(PlanParams),
    request_body(description = "A clients document, YAML (application/yaml) or JSON (application/json)",
        content(
            (registry_commands::documents::ClientsDocument = "application/yaml"),
            (registry_commands::documents::ClientsDocument = "application/json"),
        )),
    responses(
        (status = 200, description = "The plan, signed: give it to /clients/apply unchanged", body = Plan),
        (status = 413, description = "The document is larger than 16 MiB", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither YAML nor JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every problem of the document, each with its path (clients[3].redirect_uris[1])", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = crate::error::Problem, content_type = "application/problem+json"),
        crate::responses::DeniedOrBadQuery,
    ),
    security(("bearer" = []))
)]
pub async fn plan(
    _caller: Authorized<ClientsRead>,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<PlanParams>,
    request: axum::extract::Request,
) -> Result<Json<Plan>, ApiError> {
    let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
    let body = crate::extract::read_body(request, &state, DOCUMENT_LIMIT).await?;
    let content_type = content_type.as_ref().and_then(|v| v.to_str().ok());
    let format =
        DocumentFormat::of_content_type(content_type).ok_or(ApiError::UnsupportedMediaType)?;
    let checked = documents::parse_off_runtime(body.to_vec(), format)
        .await
        .map_err(ApiError::Internal)??;
    let key = documents::signing_key(&state.database)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    let store = super::ReadModelClients::of(&state);
    let plan = documents::make_plan(
        &store,
        &key,
        checked,
        params.prune.unwrap_or(false),
        crate::extract::now(),
    );
    Ok(Json(plan.await.map_err(ApiError::Unavailable)?))
}

/// Apply a plan `/clients/plan` returned: each step with its planned version as `If-Match`.
#[utoipa::path(
    post, path = "/api/v1/clients/apply", tag = "documents",
    request_body = ApplyRequest,
    params(("X-Change-Reason" = Option<String>, Header, description = "Why: recorded with every event (the body's reason wins)")),
    responses(
        (status = 200, description = "What was done; conflicts and failures are listed and were not applied", body = ApplyResult),
        (status = 400, description = "Malformed JSON or X-Change-Reason header", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The plan is larger than 64 MiB", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a plan of this registry, changed after planning, or a secret for a client it does not create", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = crate::error::Problem, content_type = "application/problem+json"),
        crate::responses::Denied,
    ),
    security(("bearer" = []))
)]
pub async fn apply(
    _caller: Authorized<ClientsWrite>,
    State(state): State<AppState>,
    RequestContext(mut ctx): RequestContext,
    AppJson(request): AppJson<ApplyRequest, PLAN_LIMIT>,
) -> Result<Json<ApplyResult>, ApiError> {
    let key = documents::signing_key(&state.database)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))?;
    applying::check(&request, &key, state.plan_lifetime, crate::extract::now())?;
    if let Some(reason) = &request.reason {
        ctx.reason = Some(crate::extract::parse_reason_text(reason, "reason")?);
    }
    // Every event of an apply says where it came from, even when no reason was given.
    let signature: String = request.plan.signature.chars().take(12).collect();
    ctx.reason
        .get_or_insert_with(|| format!("clients-as-code apply of plan {signature}"));
    // In a task of its own: a caller that goes away does not stop the apply half-way.
    let store = super::ReadModelClients::of(&state);
    let running = tokio::spawn(async move {
        applying::run(&state.commands, &store, ctx, request, crate::extract::now).await
    });
    Ok(Json(
        running.await.map_err(|e| ApiError::Internal(e.into()))?,
    ))
}
