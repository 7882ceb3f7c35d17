//! A plan as a readable diff: each step with its sign and every field before → after, in
//! colour on a terminal that wants it (`NO_COLOR` respected).

use std::io::IsTerminal as _;

use registry_commands::documents::{ApplyResult, Plan, StepAction};

/// Colours, when printing to a terminal that wants them.
pub(super) struct Paint(pub(super) bool);

impl Paint {
    pub(super) fn stdout() -> Self {
        Self(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
    }

    pub(super) fn colour(&self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\u{1b}[{code}m{text}\u{1b}[0m")
        } else {
            text.to_owned()
        }
    }
}

/// The plan as a readable diff.
pub fn render_plan(plan: &Plan, colour: bool) -> String {
    let paint = Paint(colour);
    let mut out = String::new();
    for step in &plan.steps {
        let (sign, code, verb) = match step.action {
            StepAction::Create => ("+", "32", "create"),
            StepAction::Update => ("~", "33", "update"),
            StepAction::Delete => ("-", "31", "delete"),
            StepAction::Unchanged => continue,
        };
        let version = if step.planned_version > 0 {
            format!(" (version {})", step.planned_version)
        } else {
            String::new()
        };
        out.push_str(&paint.colour(code, &format!("{sign} {verb} {}", step.client_id)));
        out.push_str(&version);
        out.push('\n');
        for change in &step.changes {
            let line = match step.action {
                StepAction::Create => format!("    + {}: {}", change.field, change.after),
                _ => format!(
                    "    ~ {}: {} → {}",
                    change.field, change.before, change.after
                ),
            };
            out.push_str(&paint.colour(code, &line));
            out.push('\n');
        }
        if let Some(name) = step
            .desired
            .as_ref()
            .and_then(|d| d.client_secret_env.as_ref())
            .filter(|_| step.action == StepAction::Create)
        {
            out.push_str(&format!("    secret from ${name}\n"));
        }
    }
    let s = plan.summary;
    out.push_str(&format!(
        "\n{} to create, {} to update, {} to delete, {} unchanged{}.\n",
        s.create,
        s.update,
        s.delete,
        s.unchanged,
        if plan.prune { "" } else { " (no prune)" }
    ));
    out
}

/// What an apply did: each step that ran, each that did not and why, and the secrets it
/// generated (shown only now).
pub(super) fn render_result(result: &ApplyResult, paint: &Paint) -> String {
    let mut out = String::new();
    for done in &result.applied {
        let line = format!(
            "{:?} {}: now version {}",
            done.action, done.client_id, done.version
        )
        .to_lowercase();
        out.push_str(&paint.colour("32", &line));
        out.push('\n');
    }
    for skipped in result.conflicts.iter().chain(&result.failed) {
        let line = format!(
            "not applied: {} ({:?} planned at version {}): {}",
            skipped.client_id, skipped.action, skipped.planned_version, skipped.detail
        );
        out.push_str(&paint.colour("31", &line));
        out.push('\n');
    }
    for secret in &result.secrets {
        out.push_str(&format!(
            "secret of {} (shown only now; store it in the client's secret store): {}\n",
            secret.client_id, secret.client_secret
        ));
    }
    out
}
