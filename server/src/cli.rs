//! The `client-registry` command line: `serve` (the default), `migrate`, `projections …`,
//! `api-key`. The binary's `main` only calls [`run`]; so does the test suite's copy of it,
//! which its process-level fault tests start and kill.

use crate::{connect, read_store, Application, Config};
use clap::{Parser, Subcommand};
use registry_api::auth::api_keys::generate as generate_api_key;
use registry_api::auth::Roles;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "client-registry", version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Migrate, register the default clients once, and serve the HTTP API (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Work on the read models.
    #[command(subcommand)]
    Projections(ProjectionsCommand),
    /// Copy the running SQLite store into a new file (consistent while writers write), and
    /// say what it holds. For PostgreSQL use pg_dump.
    Backup {
        /// The file to write (must not exist).
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Restore a backup as the SQLite store of REGISTRY_DATABASE_URL, which must not exist or
    /// hold no event. Stop the service first.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: std::path::PathBuf,
    },
    /// Clients as code against a running registry: export, plan, apply.
    #[command(subcommand)]
    Clients(crate::clients_cli::ClientsCommand),
    /// The sealed log, offline.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Make an API key: prints the key (once) and the line to add to REGISTRY_API_KEYS.
    ApiKey {
        /// The key's name, recorded as the actor of its changes.
        #[arg(long)]
        name: String,
        /// Its roles, comma-separated: clients:read, clients:write, audit:read,
        /// secrets:verify, or admin for all.
        #[arg(long)]
        roles: String,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check an exported log (GET /api/v1/events/export.jsonl) against a signed tree head,
    /// offline: every leaf and the root recomputed, the signature checked, an earlier head
    /// checked to be a prefix. Exit 0 when it verifies, 1 otherwise (the first position
    /// that differs is printed).
    Verify {
        /// The exported log (JSON Lines).
        #[arg(long)]
        log: std::path::PathBuf,
        /// The tree head to check it against (GET /api/v1/audit/tree-heads).
        #[arg(long)]
        tree_head: std::path::PathBuf,
        /// The registry's public key (PEM, or the JSON of GET /api/v1/audit/key).
        #[arg(long)]
        public_key: std::path::PathBuf,
        /// A tree head saved earlier: checked to be a prefix of this log.
        #[arg(long)]
        previous_tree_head: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// Replay every event into fresh read-model tables while the service keeps running, then
    /// swap them in.
    Rebuild,
    /// Print the projector's checkpoint, the feed head, the lag and the parked events.
    Status,
    /// Try the parked events again (after an upgrade that can read them).
    Retry,
}

/// [`run`], with a failure printed as one line (its causes joined) and exit code 1.
pub async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("client-registry: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Parses the command line and runs the command (logging to stderr per `REGISTRY_LOG`).
///
/// # Errors
/// Whatever the command fails with.
pub async fn run() -> anyhow::Result<ExitCode> {
    registry_api::logging::init(registry_api::logging::LogFormat::from_env()?);
    // A usage error exits 1, not clap's 2: `clients plan` exits 2 for "changes pending".
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return Ok(if error.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::ApiKey { name, roles } => api_key(&name, &roles),
        Command::Serve => Application::build(&config)
            .await?
            .run_until_stopped()
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::Backup { to } => backup(&config, &to).await,
        Command::Restore { from } => {
            let store = registry_commands::backup::sqlite_path(&config.database_url)?;
            let summary = registry_commands::backup::restore(&from, &store).await?;
            println!(
                "restored {summary} from {} into {}",
                from.display(),
                store.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Clients(command) => crate::clients_cli::run(command).await,
        Command::Audit(AuditCommand::Verify {
            log,
            tree_head,
            public_key,
            previous_tree_head,
        }) => {
            let clean = registry_projections::seal::offline_verify::run(
                &log,
                &tree_head,
                &public_key,
                previous_tree_head.as_deref(),
            )?;
            Ok(if clean {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Migrate => {
            connect(&config).await?.migrate().await?;
            tracing::info!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Projections(command) => projections(&config, command).await,
    }
}

/// `api-key NAME --roles …`: a new key, and the line to configure it with.
fn api_key(name: &str, roles: &str) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        !name.is_empty() && !name.contains(char::is_whitespace),
        "the name must be one word"
    );
    let roles = Roles::parse(roles).map_err(anyhow::Error::msg)?;
    anyhow::ensure!(!roles.is_empty(), "give at least one role");
    let (key, line) = generate_api_key(name, roles);
    println!("API key (shown only now; store it in the caller's secret store):\n\n    {key}\n");
    println!("Add this line to REGISTRY_API_KEYS (or REGISTRY_API_KEYS_FILE):\n\n    {line}");
    Ok(ExitCode::SUCCESS)
}

/// `backup --to FILE`: a consistent copy of the store.
async fn backup(config: &Config, to: &std::path::Path) -> anyhow::Result<ExitCode> {
    if config.database_url.starts_with("sqlite:") {
        let store = registry_commands::backup::sqlite_path(&config.database_url)?;
        anyhow::ensure!(store.exists(), "there is no store at {}", store.display());
    }
    let database = connect(config).await?;
    let summary = registry_commands::backup::backup(&database, to).await?;
    database.close().await;
    println!("backed up {summary} to {}", to.display());
    Ok(ExitCode::SUCCESS)
}

/// `projections rebuild|status|retry`.
async fn projections(config: &Config, command: ProjectionsCommand) -> anyhow::Result<ExitCode> {
    let database = connect(config).await?;
    database.migrate().await?;
    let reads = read_store(&database);
    match command {
        ProjectionsCommand::Rebuild => {
            let started = std::time::Instant::now();
            let events = reads.rebuild().await?;
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "rebuilt the read models from {events} events in {seconds:.2} s ({:.0} events/s)",
                events as f64 / seconds.max(1e-9)
            );
        }
        ProjectionsCommand::Status => {
            let status = reads.projector_status().await?;
            println!(
                "checkpoint {} head {} lag {} positions, {} parked events",
                status.checkpoint, status.head, status.lag, status.parked
            );
            for parked in reads.parked().await? {
                println!(
                    "parked: position {} client {} sequence {} {} (tried {}x): {}",
                    parked.position,
                    parked.client_id,
                    parked.sequence,
                    parked.event_type,
                    parked.attempts,
                    parked.error
                );
            }
        }
        ProjectionsCommand::Retry => {
            let report = reads.retry_parked().await?;
            println!(
                "{} parked events now projected, {} still parked",
                report.resolved, report.still_parked
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
