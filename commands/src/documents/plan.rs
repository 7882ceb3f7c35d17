//! Plan a clients document against the store: each client to create, to update (every field
//! before → after, as the history shows them), unchanged, or — only when asked to prune — to
//! delete (never an `unmanaged` one), each with the version it was planned against. Nothing is
//! changed. The plan is signed by this registry (HMAC-SHA256 with a key of the store), so that
//! what was reviewed is what `apply` runs.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use registry_domain::client::changes::settings_changes;
use registry_domain::ClientSettings;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::format::DocumentClient;
use super::read::CheckedDocument;
use crate::mac::MacKey;

/// The store setting that holds the key plans are signed with.
const SIGNING_KEY_SETTING: &str = "plan_signing_key";

/// The current shape of a plan.
const PLAN_VERSION: u32 = 1;

/// A client as the store holds it now.
#[derive(Debug, Clone)]
pub struct Current {
    /// The client.
    pub client_id: String,
    /// Its stream's version (a deleted client's too).
    pub version: u64,
    /// Its settings; `None` when deleted.
    pub settings: Option<ClientSettings>,
}

/// What planning and applying need to know of the store now (a read model answers).
#[async_trait]
pub trait CurrentClients: Send + Sync {
    /// Each of `ids` the store has ever known.
    ///
    /// # Errors
    /// The store cannot be read.
    async fn clients(&self, ids: &[String]) -> anyhow::Result<Vec<Current>>;

    /// The id of every live client.
    ///
    /// # Errors
    /// The store cannot be read.
    async fn live_ids(&self) -> anyhow::Result<Vec<String>>;

    /// `id` as it is now, read after catching up with commits of other processes; `None`
    /// when it does not exist or is deleted.
    ///
    /// # Errors
    /// The store cannot be read.
    async fn fresh(&self, id: &str) -> anyhow::Result<Option<Current>>;
}

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
///
/// # Errors
/// The database failed.
pub async fn signing_key(database: &crate::Database) -> Result<MacKey, sqlx::Error> {
    database.shared_secret(SIGNING_KEY_SETTING).await
}

/// The signature of `plan` (its signature field left out). A plan always serialises; were it
/// not to, the signature of nothing never matches one made by `make_plan` (it fails closed).
pub(super) fn signature(plan: &Plan, key: &MacKey) -> String {
    let unsigned = Plan {
        signature: String::new(),
        ..plan.clone()
    };
    let bytes = serde_json::to_vec(&unsigned).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(key.sign(&bytes))
}

fn changes(before: Option<&ClientSettings>, after: &ClientSettings) -> Vec<PlannedChange> {
    settings_changes(before, after)
        .into_iter()
        .map(|c| PlannedChange {
            field: c.field,
            before: c.before,
            after: c.after,
        })
        .collect()
}

/// The step of one document client against what the store has now.
fn step(
    client: &DocumentClient,
    settings: &ClientSettings,
    current: Option<&Current>,
    summary: &mut PlanSummary,
) -> PlanStep {
    let (action, planned_version, changes, desired) = match current {
        // Never registered, or deleted: a deleted client's stream has a version too, and its
        // create runs only on that version, so a plan replayed later cannot bring back a
        // client registered and deleted again since.
        None | Some(Current { settings: None, .. }) => {
            summary.create += 1;
            let version = current.map_or(0, |c| c.version);
            (
                StepAction::Create,
                version,
                changes(None, settings),
                Some(client.clone()),
            )
        }
        Some(Current {
            version,
            settings: Some(now),
            ..
        }) if now == settings => {
            summary.unchanged += 1;
            (StepAction::Unchanged, *version, Vec::new(), None)
        }
        Some(Current {
            version,
            settings: Some(now),
            ..
        }) => {
            summary.update += 1;
            (
                StepAction::Update,
                *version,
                changes(Some(now), settings),
                Some(client.clone()),
            )
        }
    };
    PlanStep {
        client_id: client.client_id.clone(),
        action,
        planned_version,
        changes,
        desired,
    }
}

/// The delete steps of a prune: every live client the document neither names nor keeps.
async fn prune_steps(
    store: &dyn CurrentClients,
    checked: &CheckedDocument,
    summary: &mut PlanSummary,
) -> anyhow::Result<Vec<PlanStep>> {
    let named: HashSet<&String> = checked
        .document
        .clients
        .iter()
        .map(|c| &c.client_id)
        .collect();
    let keep: HashSet<&String> = checked.document.unmanaged.iter().collect();
    let doomed: Vec<String> = store
        .live_ids()
        .await?
        .into_iter()
        .filter(|id| !named.contains(id) && !keep.contains(id))
        // A metadata document's client is the document's, not the file's: never pruned.
        .filter(|id| !registry_domain::values::ClientId::names_document(id))
        .collect();
    let mut live: Vec<Current> = store
        .clients(&doomed)
        .await?
        .into_iter()
        .filter(|c| c.settings.is_some())
        .collect();
    live.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    summary.delete += live.len() as u64;
    Ok(live
        .into_iter()
        .map(|c| PlanStep {
            client_id: c.client_id,
            action: StepAction::Delete,
            planned_version: c.version,
            changes: Vec::new(),
            desired: None,
        })
        .collect())
}

/// The plan of `checked` against `store` now, made at `now` and signed with `key`.
///
/// # Errors
/// The store cannot be read.
pub async fn make_plan(
    store: &dyn CurrentClients,
    key: &MacKey,
    checked: CheckedDocument,
    prune: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<Plan> {
    let ids: Vec<String> = checked
        .document
        .clients
        .iter()
        .map(|c| c.client_id.clone())
        .collect();
    let current: HashMap<String, Current> = store
        .clients(&ids)
        .await?
        .into_iter()
        .map(|c| (c.client_id.clone(), c))
        .collect();
    let mut summary = PlanSummary::default();
    let mut steps: Vec<PlanStep> = checked
        .document
        .clients
        .iter()
        .zip(&checked.settings)
        .map(|(client, settings)| {
            step(
                client,
                settings,
                current.get(&client.client_id),
                &mut summary,
            )
        })
        .collect();
    if prune {
        steps.extend(prune_steps(store, &checked, &mut summary).await?);
    }
    let mut plan = Plan {
        plan_version: PLAN_VERSION,
        planned_at: now,
        prune,
        has_changes: summary.create + summary.update + summary.delete > 0,
        summary,
        steps,
        unmanaged: checked.document.unmanaged,
        signature: String::new(),
    };
    plan.signature = signature(&plan, key);
    Ok(plan)
}
