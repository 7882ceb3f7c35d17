//! Apply a plan `make_plan` returned, unchanged (its signature is checked): what was reviewed
//! is what runs. Each step runs with its planned version as `If-Match`, so a client changed
//! after planning is reported as a conflict, never overwritten, and the other steps still run;
//! a step whose client is already as it wants (an apply run again) writes nothing. Every event
//! carries the actor and the reason given. The caller runs `run` in a task of its own, so a
//! caller that disconnects does not stop an apply half-way.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use registry_domain::client::ValidationErrors;
use registry_domain::{ClientError, ClientSettings};
use subtle::ConstantTimeEq;

use super::plan::{
    signature, AppliedStep, ApplyRequest, ApplyResult, CurrentClients, IssuedSecret, PlanStep,
    SkippedStep, StepAction,
};
use crate::mac::MacKey;
use crate::{ClientCommands, CommandContext, CommandError, Executed, SecretString};

/// Checks an apply request before anything runs: the plan is this registry's (signed with
/// `key`), unchanged, made less than `lifetime` before `now`, and the secrets are for clients
/// it creates as confidential ones.
///
/// # Errors
/// Every reason it cannot run, by field (`plan`, `secrets.<client id>`).
pub fn check(
    request: &ApplyRequest,
    key: &MacKey,
    lifetime: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let expected = signature(&request.plan, key);
    if !bool::from(expected.as_bytes().ct_eq(request.plan.signature.as_bytes())) {
        errors.add(
            "plan",
            "was not made by this registry, or was changed after planning: plan again",
        );
        return Err(errors);
    }
    // A plan is reviewed and applied in one pipeline run; an old one is refused.
    if now - request.plan.planned_at > lifetime {
        errors.add(
            "plan",
            format!(
                "was made more than {} minutes ago (REGISTRY_PLAN_LIFETIME_MINUTES): plan again",
                lifetime.num_minutes()
            ),
        );
        return Err(errors);
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
                    .is_some_and(|d| d.settings_input().uses_secret(None))
        })
        .map(|step| step.client_id.as_str())
        .collect();
    for (client_id, secret) in &request.secrets {
        let field = format!("secrets.{client_id}");
        if !confidential_creations.contains(client_id.as_str()) {
            errors.add(
                field,
                "the plan does not create this client as a confidential one",
            );
        } else if SecretString::parse(secret.clone()).is_err() {
            errors.add(field, "must be 16–256 characters");
        }
    }
    errors.into_result(())
}

/// Runs the steps of a checked plan; `clock` stamps each step's events when it runs.
pub async fn run(
    commands: &ClientCommands,
    store: &dyn CurrentClients,
    mut ctx: CommandContext,
    request: ApplyRequest,
    clock: fn() -> DateTime<Utc>,
) -> ApplyResult {
    let mut result = ApplyResult {
        complete: true,
        applied: Vec::new(),
        conflicts: Vec::new(),
        failed: Vec::new(),
        secrets: Vec::new(),
    };
    let mut secrets = request.secrets;
    for step in request.plan.steps {
        if step.action == StepAction::Unchanged {
            continue;
        }
        ctx.at = clock();
        let secret = secrets.remove(&step.client_id);
        let done = run_step(commands, &ctx, &step, secret).await;
        if let Err(error) = &done {
            if is_conflict(error) {
                if let Some(version) = already_done(store, &step).await {
                    result.applied.push(AppliedStep {
                        client_id: step.client_id.clone(),
                        action: step.action,
                        version,
                        already: true,
                    });
                    continue;
                }
            }
        }
        record(&mut result, &step, done);
    }
    result
}

/// Runs one step with its planned version.
async fn run_step(
    commands: &ClientCommands,
    ctx: &CommandContext,
    step: &PlanStep,
    secret: Option<String>,
) -> Result<Executed, CommandError> {
    let expected = Some(step.planned_version);
    match (step.action, &step.desired) {
        (StepAction::Create, Some(desired)) => {
            commands
                .register_at(
                    ctx,
                    &step.client_id,
                    desired.settings_input(),
                    secret,
                    expected,
                )
                .await
        }
        (StepAction::Update, Some(desired)) => {
            commands
                .update(ctx, &step.client_id, desired.settings_input(), expected)
                .await
        }
        (StepAction::Delete, _) => commands.delete(ctx, &step.client_id, expected).await,
        _ => Err(CommandError::Infrastructure(anyhow::anyhow!(
            "a create or update step without the client it wants"
        ))),
    }
}

/// A refusal that may mean someone (an earlier run of this apply) got there first.
fn is_conflict(error: &CommandError) -> bool {
    matches!(
        error,
        CommandError::Rejected(
            ClientError::VersionMismatch { .. }
                | ClientError::AlreadyExists
                | ClientError::NotFound,
        ) | CommandError::Conflict
    )
}

/// Whether the store already holds what `step` wants: the client as desired, or gone for a
/// delete. Its version, when it exists.
async fn already_done(store: &dyn CurrentClients, step: &PlanStep) -> Option<u64> {
    let current = store.fresh(&step.client_id).await.ok()?;
    match (step.action, current, &step.desired) {
        (StepAction::Delete, None, _) => Some(0),
        (StepAction::Create | StepAction::Update, Some(current), Some(desired)) => {
            let mut wanted = desired.clone();
            wanted.client_secret_env = None;
            let settings = ClientSettings::validate(&wanted.settings_input()).ok()?;
            (current.settings.as_ref() == Some(&settings)).then_some(current.version)
        }
        _ => None,
    }
}

/// Adds what a step did (or why it did not run) to `result`.
fn record(result: &mut ApplyResult, step: &PlanStep, done: Result<Executed, CommandError>) {
    let skipped = |detail: String| SkippedStep {
        client_id: step.client_id.clone(),
        action: step.action,
        planned_version: step.planned_version,
        detail,
    };
    let conflict = match done {
        Ok(executed) => {
            if let Some(plaintext) = executed.secret.as_ref().and_then(|s| s.generated.as_ref()) {
                result.secrets.push(IssuedSecret {
                    client_id: step.client_id.clone(),
                    client_secret: plaintext.expose().to_owned(),
                });
            }
            result.applied.push(AppliedStep {
                client_id: step.client_id.clone(),
                action: step.action,
                version: executed.version,
                already: false,
            });
            return;
        }
        Err(CommandError::Rejected(ClientError::VersionMismatch { actual, .. })) => {
            format!("changed since planning: now at version {actual}")
        }
        Err(CommandError::Rejected(ClientError::AlreadyExists)) => {
            "registered since planning".to_owned()
        }
        Err(CommandError::Rejected(ClientError::NotFound)) => "deleted since planning".to_owned(),
        Err(CommandError::Conflict) => "changed concurrently while applying".to_owned(),
        Err(error) => {
            tracing::warn!(client_id = %step.client_id, error = ?error, "apply: a step failed");
            result.complete = false;
            result.failed.push(skipped(error.to_string()));
            return;
        }
    };
    result.complete = false;
    result.conflicts.push(skipped(conflict));
}
