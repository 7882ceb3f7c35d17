//! `client-registry`: the registry of OAuth 2.0 / OpenID Connect clients.

use clap::{Parser, Subcommand};
use registry_api::{connect, Application, Config};
use tracing_subscriber::EnvFilter;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("REGISTRY_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            Application::build(&cli.config)
                .await?
                .run_until_stopped()
                .await
        }
        Command::Migrate => {
            let database = connect(&cli.config).await?;
            database.migrate().await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}
