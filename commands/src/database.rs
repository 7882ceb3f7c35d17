//! The database behind the registry, chosen once at start-up from its URL.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

/// The default database: an embedded SQLite file, no server needed.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/registry.db";

/// A connection pool to the event store and read models. Built once from the database URL;
/// the rest of the service receives the pieces built from it and never asks which it is.
#[derive(Debug, Clone)]
pub enum Database {
    /// PostgreSQL (`postgres://…`): for production and for several processes.
    Postgres(PgPool),
    /// An embedded SQLite file (`sqlite://…`): the default.
    Sqlite(SqlitePool),
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Most connections in the pool.
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl Database {
    /// Connects to `url` (`postgres://…`, `postgresql://…` or `sqlite://…`). For SQLite the
    /// file and its directory are created if missing; the file runs in WAL mode with full
    /// synchronous commits, so an acknowledged event survives a power loss.
    ///
    /// # Errors
    /// When the URL has another scheme or the database cannot be reached.
    pub async fn connect(url: &str, options: &PoolOptions) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect(url)
                .await
                .context("connecting to PostgreSQL")?;
            Ok(Self::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)
                .context("parsing the SQLite database URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10));
            if let Some(dir) = connect.get_filename().parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating the directory {}", dir.display()))?;
                }
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.min(8))
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect)
                .await
                .context("opening the SQLite database")?;
            Ok(Self::Sqlite(pool))
        } else {
            anyhow::bail!("unsupported database URL: use postgres://… or sqlite://…")
        }
    }

    /// Applies the migrations in `migrations/postgres` or `migrations/sqlite` that are not
    /// applied yet. Safe to run from several processes at once (sqlx takes a lock).
    ///
    /// # Errors
    /// When a migration fails or an applied migration was edited.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Self::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await,
            Self::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await,
        }
        .context("running database migrations")
    }

    /// Whether the database answers a trivial query.
    ///
    /// # Errors
    /// The database error.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Postgres(pool) => sqlx::query("select 1").execute(pool).await.map(drop),
            Self::Sqlite(pool) => sqlx::query("select 1").execute(pool).await.map(drop),
        }
    }

    /// A value from `registry_settings`.
    ///
    /// # Errors
    /// The database error.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        const SQL: &str = "select value from registry_settings where key = $1";
        match self {
            Self::Postgres(pool) => sqlx::query_scalar(SQL).bind(key).fetch_optional(pool).await,
            Self::Sqlite(pool) => sqlx::query_scalar(SQL).bind(key).fetch_optional(pool).await,
        }
    }

    /// Stores `value` under `key` unless the key is already set; true when it was stored.
    ///
    /// # Errors
    /// The database error.
    pub async fn insert_setting_if_absent(
        &self,
        key: &str,
        value: &str,
    ) -> Result<bool, sqlx::Error> {
        const SQL: &str = "insert into registry_settings (key, value) values ($1, $2) \
                           on conflict (key) do nothing";
        let result = match self {
            Self::Postgres(pool) => sqlx::query(SQL)
                .bind(key)
                .bind(value)
                .execute(pool)
                .await?
                .rows_affected(),
            Self::Sqlite(pool) => sqlx::query(SQL)
                .bind(key)
                .bind(value)
                .execute(pool)
                .await?
                .rows_affected(),
        };
        Ok(result == 1)
    }

    /// A lock that writers of this process take in turn, where the database needs one:
    /// SQLite admits one writer at a time, and a writer that finds the lock taken sleeps in
    /// its busy handler (1, 2, 5, 10 … ms), so 16 concurrent writers spend most of their time
    /// asleep; queueing them in-process first keeps the file busy instead. PostgreSQL: none.
    pub fn writer_gate(&self) -> Option<std::sync::Arc<tokio::sync::Mutex<()>>> {
        match self {
            Self::Postgres(_) => None,
            Self::Sqlite(_) => Some(std::sync::Arc::new(tokio::sync::Mutex::new(()))),
        }
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Self::Postgres(pool) => pool.close().await,
            Self::Sqlite(pool) => pool.close().await,
        }
    }
}

/// A pool for the read models on the same SQLite file, with `synchronous = NORMAL`:
/// read-model commits do not wait for an fsync (SQLite has no group commit, so each fsync
/// costs a whole commit slot). Safe for the same reason as PostgreSQL's relaxed read-model
/// commits: the WAL is one file written in order, and every event commit (`FULL`) syncs all
/// frames before it, so a read-model commit lost in a power cut is never followed by a durable
/// event or checkpoint, and the projector redoes it.
pub fn relaxed_sqlite_pool(pool: &SqlitePool) -> SqlitePool {
    let options = (*pool.connect_options())
        .clone()
        .synchronous(SqliteSynchronous::Normal);
    SqlitePoolOptions::new()
        .max_connections(pool.options().get_max_connections())
        .acquire_timeout(pool.options().get_acquire_timeout())
        .connect_lazy_with(options)
}
