//! Configuration from flags and `REGISTRY_*` environment variables.

use clap::{ArgAction, Args};
use registry_commands::DEFAULT_DATABASE_URL;

/// How the service runs. Every flag has a `REGISTRY_*` environment variable.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// `sqlite://path/to/file.db` (created if missing) or `postgres://user@host/db`.
    #[arg(long, env = "REGISTRY_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Address and port to listen on.
    #[arg(long, env = "REGISTRY_LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: String,

    /// The admin bearer token (at least 16 characters). Unset: one is generated at the first
    /// start of a store and printed once.
    #[arg(long, env = "REGISTRY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Most database connections.
    #[arg(long, env = "REGISTRY_DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub max_connections: u32,

    /// Register the admin guide's default clients the first time a store is set up.
    #[arg(long, env = "REGISTRY_SEED_DEFAULT_CLIENTS", default_value_t = true, action = ArgAction::Set)]
    pub seed_default_clients: bool,

    /// Most argon2id hashes computed at once (default: the number of CPUs).
    #[arg(long, env = "REGISTRY_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,
}

impl Config {
    /// The configuration with every default, on `database_url`.
    pub fn with_database(database_url: &str) -> Self {
        Self {
            database_url: database_url.to_owned(),
            listen_addr: "127.0.0.1:0".to_owned(),
            admin_token: None,
            max_connections: 16,
            seed_default_clients: true,
            hash_concurrency: None,
        }
    }

    /// The argon2 concurrency: configured, else one per CPU.
    pub fn hash_concurrency(&self) -> usize {
        self.hash_concurrency.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
        })
    }
}
