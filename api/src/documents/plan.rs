//! Plan and apply a clients document.
//!
//! `POST /clients/plan` compares a document with the store and returns, changing nothing, the
//! exact plan: each client to create, to update (every field before → after, as the history
//! shows them), unchanged, or — only when asked to prune — to delete (never an `unmanaged`
//! one), each with the version it was planned against. The plan is signed by this registry
//! (HMAC-SHA256 with a key of the store).
//!
//! `POST /clients/apply` runs a plan `/plan` returned, unchanged (the signature is checked):
//! what was reviewed is what runs. Each step runs with its planned version as `If-Match`, so a
//! client changed after planning is reported as a conflict, never overwritten, and the other
//! steps still run. Every event carries the actor and the reason given. The steps run in a
//! task of their own: a caller that disconnects does not stop an apply half-way.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use registry_commands::mac::MacKey;
use registry_commands::{CommandContext, CommandError, SecretString};
use registry_domain::{ClientError, ClientSettings};
use registry_projections::ClientView;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Authorized, ClientsRead, ClientsWrite};
use crate::error::{ApiError, ProblemFieldError};
use crate::extract::{AppJson, AppQuery, RequestContext, DOCUMENT_LIMIT, PLAN_LIMIT};
use crate::state::AppState;
use registry_commands::documents::{self, CheckedDocument, DocumentClient, DocumentFormat};

/// The store setting that holds the key plans are signed with.
const SIGNING_KEY_SETTING: &str = "plan_signing_key";

/// The current shape of a plan.
const PLAN_VERSION: u32 = 1;

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepAction {
    /// Register the client.
    Create,
    /// Change its settings.
    Update,
    /// Nothing: it is as the document says.
    Unchanged,
    /// Delete it (prune only).
    Delete,
}

/// One field a step changes, before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlannedChange {
    /// The field, as the API names it.
    pub field: String,
    /// Its value now (`null` when unset or for a new client): a string, boolean, list or
    /// null.
    pub before: serde_json::Value,
    /// Its value after the step.
    pub after: serde_json::Value,
}

/// One client's step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanStep {
    /// The client.
    pub client_id: String,
    /// What the step does.
    pub action: StepAction,
    /// The version the step was planned against (0: the client must not exist); applied with
    /// it as `If-Match`.
    pub planned_version: u64,
    /// The fields it changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<PlannedChange>,
    /// The client as the document wants it (create and update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<DocumentClient>,
}

/// How many steps of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanSummary {
    /// Clients to register.
    pub create: u64,
    /// Clients to change.
    pub update: u64,
    /// Clients to delete.
    pub delete: u64,
    /// Clients as the document says already.
    pub unchanged: u64,
}

/// A plan: what applying a document would do, signed by the registry that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The shape of this plan (1).
    pub plan_version: u32,
    /// When it was made.
    pub planned_at: DateTime<Utc>,
    /// Whether clients the document does not name are deleted.
    pub prune: bool,
    /// Whether applying it changes anything.
    pub has_changes: bool,
    /// Steps by kind.
    pub summary: PlanSummary,
    /// The steps, in the order they run: creates and updates in document order, then deletes.
    pub steps: Vec<PlanStep>,
    /// The document's unmanaged clients (never touched).
    #[serde(default)]
    pub unmanaged: Vec<String>,
    /// HMAC-SHA256 (base64url) of the rest, by this registry: apply runs only a plan it made,
    /// unchanged.
    pub signature: String,
}

/// Query of `/clients/plan`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PlanParams {
    /// Also delete the live clients the document does not name (never its `unmanaged` ones).
    pub prune: Option<bool>,
}

/// The body of `/clients/apply`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    /// A plan `/clients/plan` returned, unchanged.
    pub plan: Plan,
    /// Why (e.g. the commit that changed the document): recorded with every event. The
    /// `X-Change-Reason` header does the same.
    #[serde(default)]
    pub reason: Option<String>,
    /// Secrets of the confidential clients the plan creates, by client id (resolved where the
    /// document is applied, e.g. from `client_secret_env`). A client to create without one
    /// gets a generated secret, returned once.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
}

/// A step that ran.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppliedStep {
    /// The client.
    pub client_id: String,
    /// What was done.
    pub action: StepAction,
    /// Its version afterwards.
    pub version: u64,
    /// The client was already as the step wants it (an apply run again, or the same change
    /// made by someone else): nothing was written.
    #[serde(default)]
    pub already: bool,
}

/// A step that did not run, and why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SkippedStep {
    /// The client.
    pub client_id: String,
    /// What the step would have done.
    pub action: StepAction,
    /// The version it was planned against.
    pub planned_version: u64,
    /// What happened instead.
    pub detail: String,
}

/// A secret an applied step created (shown once).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IssuedSecret {
    /// The client.
    pub client_id: String,
    /// The plaintext: shown only here.
    pub client_secret: String,
}

/// What an apply did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApplyResult {
    /// Whether every step with a change ran.
    pub complete: bool,
    /// The steps that ran.
    pub applied: Vec<AppliedStep>,
    /// Steps whose client changed after planning (re-plan to see how): not run.
    pub conflicts: Vec<SkippedStep>,
    /// Steps that failed for another reason (e.g. the service was busy): not run.
    pub failed: Vec<SkippedStep>,
    /// Secrets generated for the clients created or made confidential.
    pub secrets: Vec<IssuedSecret>,
}

/// The key plans are signed with (kept in the store, made at the first plan).
async fn signing_key(state: &AppState) -> Result<MacKey, ApiError> {
    state
        .database
        .shared_secret(SIGNING_KEY_SETTING)
        .await
        .map_err(|e| ApiError::Unavailable(e.into()))
}

/// The signature of `plan` (its signature field left out).
fn signature(plan: &Plan, key: &MacKey) -> Result<String, ApiError> {
    let unsigned = Plan {
        signature: String::new(),
        ..plan.clone()
    };
    let bytes = serde_json::to_vec(&unsigned).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(URL_SAFE_NO_PAD.encode(key.sign(&bytes)))
}

/// The document of a request body, in the format its `Content-Type` names.
fn read_document(
    headers: &HeaderMap,
    body: &[u8],
    cancelled: &AtomicBool,
) -> Result<CheckedDocument, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format =
        DocumentFormat::of_content_type(content_type).ok_or(ApiError::UnsupportedMediaType)?;
    documents::parse_unless(body, format, cancelled).map_err(ApiError::from)
}

/// Set when dropped: the request's future went away (a timeout, a disconnect), so the thread
/// reading its document stops at its next value instead of reading on for nobody.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The live ids of the store (for prune): from the search index, or the list.
async fn live_ids(state: &AppState) -> Result<Vec<String>, ApiError> {
    if state.search.is_ready() {
        return Ok(state.search.client_ids());
    }
    let (sink, mut chunks) = tokio::sync::mpsc::channel(2);
    let reads = state.reads.clone();
    let reading = tokio::spawn(async move {
        reads
            .export_list(&registry_projections::ListQuery::default(), sink)
            .await
    });
    let mut ids = Vec::new();
    while let Some(chunk) = chunks.recv().await {
        if let registry_projections::export::Chunk::Rows(rows) = chunk {
            ids.extend(rows.into_iter().map(|row| row.client_id));
        }
    }
    reading.await.map_err(|e| ApiError::Internal(e.into()))??;
    Ok(ids)
}

fn changes(before: Option<&ClientSettings>, after: &ClientSettings) -> Vec<PlannedChange> {
    registry_projections::history::settings_changes(before, after)
        .into_iter()
        .map(|c| PlannedChange {
            field: c.field,
            before: c.before,
            after: c.after,
        })
        .collect()
}

/// The plan of `checked` against the store now.
///
/// # Errors
/// The store cannot be read.
pub async fn make_plan(
    state: &AppState,
    checked: CheckedDocument,
    prune: bool,
) -> Result<Plan, ApiError> {
    let ids: Vec<String> = checked
        .document
        .clients
        .iter()
        .map(|c| c.client_id.clone())
        .collect();
    let mut current: HashMap<String, ClientView> = HashMap::new();
    // A deleted client's stream has a version too: its create runs only on that version, so
    // a plan replayed later cannot bring back a client registered and deleted again since.
    let mut deleted: HashMap<String, u64> = HashMap::new();
    for record in state.reads.clients(&ids).await? {
        if record.deleted {
            deleted.insert(record.view.client_id.clone(), record.view.version);
        } else {
            current.insert(record.view.client_id.clone(), record.view);
        }
    }
    let mut steps = Vec::with_capacity(ids.len());
    let mut summary = PlanSummary::default();
    for (client, settings) in checked.document.clients.iter().zip(&checked.settings) {
        let step = match current.get(&client.client_id) {
            None => {
                summary.create += 1;
                PlanStep {
                    client_id: client.client_id.clone(),
                    action: StepAction::Create,
                    planned_version: deleted.get(&client.client_id).copied().unwrap_or(0),
                    changes: changes(None, settings),
                    desired: Some(client.clone()),
                }
            }
            Some(view) if view.settings == *settings => {
                summary.unchanged += 1;
                PlanStep {
                    client_id: client.client_id.clone(),
                    action: StepAction::Unchanged,
                    planned_version: view.version,
                    changes: Vec::new(),
                    desired: None,
                }
            }
            Some(view) => {
                summary.update += 1;
                PlanStep {
                    client_id: client.client_id.clone(),
                    action: StepAction::Update,
                    planned_version: view.version,
                    changes: changes(Some(&view.settings), settings),
                    desired: Some(client.clone()),
                }
            }
        };
        steps.push(step);
    }
    if prune {
        let named: HashSet<&String> = ids.iter().collect();
        let keep: HashSet<&String> = checked.document.unmanaged.iter().collect();
        let doomed: Vec<String> = live_ids(state)
            .await?
            .into_iter()
            .filter(|id| !named.contains(id) && !keep.contains(id))
            .collect();
        let mut views: Vec<ClientView> = state
            .reads
            .clients(&doomed)
            .await?
            .into_iter()
            .filter(|record| !record.deleted)
            .map(|record| record.view)
            .collect();
        views.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        for view in views {
            summary.delete += 1;
            steps.push(PlanStep {
                client_id: view.client_id,
                action: StepAction::Delete,
                planned_version: view.version,
                changes: Vec::new(),
                desired: None,
            });
        }
    }
    let mut plan = Plan {
        plan_version: PLAN_VERSION,
        planned_at: crate::extract::now(),
        prune,
        has_changes: summary.create + summary.update + summary.delete > 0,
        summary,
        steps,
        unmanaged: checked.document.unmanaged,
        signature: String::new(),
    };
    plan.signature = signature(&plan, &signing_key(state).await?)?;
    Ok(plan)
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
        (status = 400, description = "Malformed or unknown query parameter", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong bearer token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the role this route needs", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The document is larger than 16 MiB", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither YAML nor JSON", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every problem of the document, each with its path (clients[3].redirect_uris[1])", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn plan(
    _caller: Authorized<ClientsRead>,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<PlanParams>,
    request: axum::extract::Request,
) -> Result<Json<Plan>, ApiError> {
    let headers = request.headers().clone();
    let body = crate::extract::read_body(request, &state, DOCUMENT_LIMIT).await?;
    // Reading and checking a large document is CPU work: off the runtime's threads, two at a
    // time, so that probes and other requests still answer.
    static READERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let _permit = READERS
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let cancelled = cancel.0.clone();
    let checked = tokio::task::spawn_blocking(move || read_document(&headers, &body, &cancelled))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    Ok(Json(
        make_plan(&state, checked, params.prune.unwrap_or(false)).await?,
    ))
}

/// Checks an apply request before anything runs: the plan is this registry's and unchanged,
/// the secrets are for clients it creates.
async fn check(state: &AppState, request: &ApplyRequest) -> Result<(), ApiError> {
    let expected = signature(&request.plan, &signing_key(state).await?)?;
    if !bool::from(expected.as_bytes().ct_eq(request.plan.signature.as_bytes())) {
        return Err(ApiError::invalid_field(
            "plan",
            "was not made by this registry, or was changed after planning: plan again",
        ));
    }
    // A plan is reviewed and applied in one pipeline run; an old one is refused.
    let age = crate::extract::now() - request.plan.planned_at;
    if age > state.plan_lifetime {
        return Err(ApiError::invalid_field(
            "plan",
            format!(
                "was made more than {} minutes ago (REGISTRY_PLAN_LIFETIME_MINUTES): plan again",
                state.plan_lifetime.num_minutes()
            ),
        ));
    }
    let confidential_creations: HashSet<&str> = request
        .plan
        .steps
        .iter()
        .filter(|step| {
            step.action == StepAction::Create
                && step
                    .desired
                    .as_ref()
                    .is_some_and(|d| d.require_client_secret)
        })
        .map(|step| step.client_id.as_str())
        .collect();
    let mut errors = Vec::new();
    for (client_id, secret) in &request.secrets {
        let creates_confidential = confidential_creations.contains(client_id.as_str());
        if !creates_confidential {
            errors.push(ProblemFieldError {
                field: format!("secrets.{client_id}"),
                message: "the plan does not create this client as a confidential one".to_owned(),
            });
        } else if SecretString::parse(secret.clone()).is_err() {
            errors.push(ProblemFieldError {
                field: format!("secrets.{client_id}"),
                message: "must be 16–256 characters".to_owned(),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Whether the store already holds what `step` wants: the client as desired, or gone for a
/// delete. Its version, when it exists.
async fn already_done(state: &AppState, step: &PlanStep) -> Option<u64> {
    // The read model of this process may trail a commit of another by a moment: catch up.
    let _ = state.reads.catch_up(&step.client_id).await;
    let current = state.reads.client(&step.client_id).await.ok()?;
    match (step.action, current, &step.desired) {
        (StepAction::Delete, None, _) => Some(0),
        (StepAction::Create | StepAction::Update, Some(view), Some(desired)) => {
            let mut wanted = desired.clone();
            wanted.client_secret_env = None;
            let settings = ClientSettings::validate(&wanted.settings_input()).ok()?;
            (settings == view.settings).then_some(view.version)
        }
        _ => None,
    }
}

/// Runs the steps of a checked plan.
async fn run(state: AppState, mut ctx: CommandContext, request: ApplyRequest) -> ApplyResult {
    let mut result = ApplyResult {
        complete: true,
        applied: Vec::new(),
        conflicts: Vec::new(),
        failed: Vec::new(),
        secrets: Vec::new(),
    };
    let mut secrets = request.secrets;
    for step in request.plan.steps {
        // Each event is stamped when its step runs, not when the apply began.
        ctx.at = crate::extract::now();
        let done = match (&step.action, &step.desired) {
            (StepAction::Unchanged, _) => continue,
            (StepAction::Create, Some(desired)) => {
                state
                    .commands
                    .register_at(
                        &ctx,
                        &step.client_id,
                        desired.settings_input(),
                        secrets.remove(&step.client_id),
                        Some(step.planned_version),
                    )
                    .await
            }
            (StepAction::Update, Some(desired)) => {
                state
                    .commands
                    .update(
                        &ctx,
                        &step.client_id,
                        desired.settings_input(),
                        Some(step.planned_version),
                    )
                    .await
            }
            (StepAction::Delete, _) => {
                state
                    .commands
                    .delete(&ctx, &step.client_id, Some(step.planned_version))
                    .await
            }
            (_, None) => Err(CommandError::Infrastructure(anyhow::anyhow!(
                "a create or update step without the client it wants"
            ))),
        };
        let skipped = |detail: String| SkippedStep {
            client_id: step.client_id.clone(),
            action: step.action,
            planned_version: step.planned_version,
            detail,
        };
        let done = match done {
            Err(
                CommandError::Rejected(
                    ClientError::VersionMismatch { .. }
                    | ClientError::AlreadyExists
                    | ClientError::NotFound,
                )
                | CommandError::Conflict,
            ) if step.action != StepAction::Unchanged => match already_done(&state, &step).await {
                Some(version) => {
                    result.applied.push(AppliedStep {
                        client_id: step.client_id.clone(),
                        action: step.action,
                        version,
                        already: true,
                    });
                    continue;
                }
                None => done,
            },
            other => other,
        };
        match done {
            Ok(executed) => {
                if let Some(secret) = &executed.secret {
                    if let Some(plaintext) = &secret.generated {
                        result.secrets.push(IssuedSecret {
                            client_id: step.client_id.clone(),
                            client_secret: plaintext.expose().to_owned(),
                        });
                    }
                }
                result.applied.push(AppliedStep {
                    client_id: step.client_id.clone(),
                    action: step.action,
                    version: executed.version,
                    already: false,
                });
            }
            Err(CommandError::Rejected(ClientError::VersionMismatch { actual, .. })) => {
                result.complete = false;
                result.conflicts.push(skipped(format!(
                    "changed since planning: now at version {actual}"
                )));
            }
            Err(CommandError::Rejected(ClientError::AlreadyExists)) => {
                result.complete = false;
                result
                    .conflicts
                    .push(skipped("registered since planning".to_owned()));
            }
            Err(CommandError::Rejected(ClientError::NotFound)) => {
                result.complete = false;
                result
                    .conflicts
                    .push(skipped("deleted since planning".to_owned()));
            }
            Err(CommandError::Conflict) => {
                result.complete = false;
                result
                    .conflicts
                    .push(skipped("changed concurrently while applying".to_owned()));
            }
            Err(error) => {
                tracing::warn!(
                    client_id = %step.client_id,
                    error = ?error,
                    "apply: a step failed"
                );
                result.complete = false;
                result.failed.push(skipped(error.to_string()));
            }
        }
    }
    result
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
        (status = 401, description = "No or wrong bearer token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks the role this route needs", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a plan of this registry, changed after planning, or a secret for a client it does not create", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The database is unavailable", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn apply(
    _caller: Authorized<ClientsWrite>,
    State(state): State<AppState>,
    RequestContext(mut ctx): RequestContext,
    AppJson(request): AppJson<ApplyRequest, PLAN_LIMIT>,
) -> Result<Json<ApplyResult>, ApiError> {
    check(&state, &request).await?;
    if let Some(reason) = &request.reason {
        ctx.reason = Some(crate::extract::parse_reason_text(reason, "reason")?);
    }
    if ctx.reason.is_none() {
        // Every event of an apply says where it came from, even when no reason was given.
        let signature: String = request.plan.signature.chars().take(12).collect();
        ctx.reason = Some(format!("clients-as-code apply of plan {signature}"));
    }
    // In a task of its own: a caller that goes away does not stop the apply half-way.
    let result = tokio::spawn(run(state, ctx, request))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(result))
}
