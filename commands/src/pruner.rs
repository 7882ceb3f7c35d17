//! The pruner of dynamic registrations: clients registered through `POST /register` that no
//! one has used for a configured number of days are deleted, each as a `ClientDeleted` event
//! whose actor is `registration-pruner` and whose reason says why, so the history tells it.
//!
//! "Used" is what the registry sees: a secret verified (`client_last_authenticated`). A public
//! or `private_key_jwt` client authenticates at the identity service without the registry, so
//! such clients are never pruned here (counted as `unseen`).

use chrono::{DateTime, Duration, Utc};
use registry_domain::ClientError;

use crate::database::Database;
use crate::error::CommandError;
use crate::service::{ClientCommands, CommandContext};

/// The actor of the pruner's deletions.
pub const PRUNER: &str = "registration-pruner";

/// What a pruning pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Clients deleted.
    pub deleted: usize,
    /// Unused by the registry's measure, but public or key clients: kept.
    pub unseen: usize,
}

/// Deletes every dynamically registered client that uses a secret, was registered (or
/// replaced) more than `days` days before `now`, and has not been authenticated since.
/// Another process pruning at the same time is harmless: a client it deleted first is skipped.
/// `step` is called for every client looked at (a supervisor's sign of life).
///
/// # Errors
/// A database or event store failure (what was deleted before it stays deleted).
pub async fn prune_unused_registrations(
    commands: &ClientCommands,
    database: &Database,
    now: DateTime<Utc>,
    days: u32,
    step: &(dyn Fn() + Sync),
) -> Result<Pruned, CommandError> {
    let before = (now - Duration::days(i64::from(days))).timestamp();
    let ctx = CommandContext {
        actor: PRUNER.to_owned(),
        request_id: String::new(),
        reason: Some(format!(
            "registered dynamically and not authenticated for {days} days"
        )),
        at: now,
    };
    let mut pruned = Pruned::default();
    let mut after = String::new();
    loop {
        let page = (database.unused_registrations(before, &after, 500))
            .await
            .map_err(|e| CommandError::Infrastructure(e.into()))?;
        let Some((last, _)) = page.last() else {
            return Ok(pruned);
        };
        after.clone_from(last);
        for (client_id, registered_at) in page {
            step();
            let loaded = commands.load_client(&client_id).await?;
            let version = loaded.client.version();
            // The token manages this registration, not one made since under the same id: a
            // row of another registration (or of a deleted client) only goes.
            let ours = loaded.client.live().filter(|_| {
                crate::registration::same_registration(loaded.registered_at, registered_at)
            });
            if let Some(state) = ours {
                if !state.settings.uses_secret() {
                    pruned.unseen += 1;
                    continue;
                }
                match commands.delete(&ctx, &client_id, Some(version)).await {
                    Ok(_) => pruned.deleted += 1,
                    // Deleted or changed meanwhile (another process, an administrator).
                    Err(CommandError::Rejected(
                        ClientError::NotFound | ClientError::VersionMismatch { .. },
                    ))
                    | Err(CommandError::Conflict) => continue,
                    Err(other) => return Err(other),
                }
            }
            (database.delete_registration_access_token(&client_id))
                .await
                .map_err(|e| CommandError::Infrastructure(e.into()))?;
        }
    }
}
