//! The background task that prunes unused dynamic registrations
//! ([`registry_commands::pruner`]): a pass at start and then every interval, stopped between
//! passes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use registry_api::supervisor::Supervisor;
use registry_commands::pruner::prune_unused_registrations;
use registry_commands::{ClientCommands, Database};
use registry_projections::stop::StopSignal;

/// The longest wait without a sign of life.
const TICK: Duration = Duration::from_secs(5);

/// When and what to prune.
#[derive(Debug, Clone, Copy)]
pub struct Pruning {
    /// Days a dynamically registered client may go unused.
    pub days: u32,
    /// Time between passes.
    pub every: Duration,
}

/// Starts the pruner under `supervisor` (its steps: passes done).
pub fn start(
    supervisor: &Supervisor,
    pruning: Pruning,
    commands: Arc<ClientCommands>,
    database: Database,
    stop: &Arc<StopSignal>,
) -> tokio::task::JoinHandle<()> {
    let passes = Arc::new(AtomicU64::new(0));
    let counted = passes.clone();
    let stop = stop.clone();
    supervisor.supervise(
        "registration_pruner",
        move || counted.load(Ordering::Relaxed),
        move || {
            let (commands, database, passes) = (commands.clone(), database.clone(), passes.clone());
            let mut stop = stop.watch();
            async move {
                // The supervisor wants a sign of life every few seconds: each client looked
                // at, and each tick of the wait between passes.
                let step = || {
                    passes.fetch_add(1, Ordering::Relaxed);
                };
                loop {
                    let now = registry_api::extract::now();
                    let pass = prune_unused_registrations(&commands, &database, now, pruning.days, &step);
                    match pass.await {
                        Ok(pruned) if pruned.deleted > 0 => {
                            tracing::info!(deleted = pruned.deleted, kept_unseen = pruned.unseen, "pruned unused dynamic registrations");
                        }
                        Ok(_) => {}
                        Err(error) => tracing::warn!(%error, "pruning dynamic registrations failed; next pass later"),
                    }
                    let mut waited = Duration::ZERO;
                    while waited < pruning.every {
                        let tick = TICK.min(pruning.every - waited);
                        if stop.pause(tick).await {
                            return;
                        }
                        waited += tick;
                        step();
                    }
                }
            }
        },
    )
}
