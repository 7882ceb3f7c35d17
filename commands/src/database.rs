//! The database behind the registry, chosen once at start-up from its URL.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use registry_sql::{Column, First, Record, Statement};
use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, SqlitePool};

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

/// PostgreSQL session settings of every connection of the service.
///
/// - `lock_timeout`: no statement waits longer than this for a lock (a row, the feed barrier,
///   a client's projection lock); it fails with SQLSTATE 55P03 instead, answered 503, so one
///   stuck transaction cannot queue every writer behind it for ever.
/// - `idle_in_transaction_session_timeout`: PostgreSQL ends a session that sits inside a
///   transaction doing nothing for this long. The service never does (its transactions run in
///   tasks of their own, see `ClientCommands`); this bounds the damage of a bug or a stuck
///   client of the same database holding the feed barrier.
pub const POSTGRES_SESSION_SETTINGS: [(&str, &str); 2] = [
    ("lock_timeout", "5s"),
    ("idle_in_transaction_session_timeout", "15s"),
];

/// Whether a connection coming back to the pool may be handed out again: not if it is still
/// inside a transaction. sqlx leaves one open when a future is dropped at the wrong moment
/// (SQLite: a custom `BEGIN` acknowledged but not yet wrapped in a `Transaction`); handing such
/// a connection to the next caller would run its statements inside a stale transaction that
/// holds SQLite's write lock. Closing it rolls the transaction back.
///
/// A dropped `Transaction` only *queues* its rollback on SQLite's connection thread, so the
/// queue is flushed (a ping, answered after every command sent before it) before the depth is
/// read. PostgreSQL counts a queued rollback at once; there the depth is read directly (a
/// `BEGIN` interrupted before the server answered is not counted at all, which is why every
/// transaction of the service starts in a task of its own).
fn sqlite_release(
    connection: &mut sqlx::SqliteConnection,
    _: PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(async move {
        connection.ping().await?;
        Ok(still_usable(connection.is_in_transaction()))
    })
}

/// [`sqlite_release`] for PostgreSQL.
fn postgres_release(
    connection: &mut sqlx::PgConnection,
    _: PoolConnectionMetadata,
) -> Pin<Box<dyn Future<Output = Result<bool, sqlx::Error>> + Send + '_>> {
    Box::pin(std::future::ready(Ok(still_usable(
        connection.is_in_transaction(),
    ))))
}

fn still_usable(in_transaction: bool) -> bool {
    if in_transaction {
        tracing::warn!("a connection came back to the pool inside a transaction; closing it");
    }
    !in_transaction
}

/// The main connection pool at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open (in use or idle).
    pub size: u32,
    /// Connections idle.
    pub idle: usize,
    /// The most connections the pool opens.
    pub max: u32,
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
            let connect = PgConnectOptions::from_str(url)
                .context("parsing the PostgreSQL database URL")?
                .options(POSTGRES_SESSION_SETTINGS);
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .after_release(postgres_release)
                .connect_with(connect)
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
            // The store holds secret hashes: a new one is the owner's only (0600, in a 0700
            // folder if one is made), before SQLite opens it; its -wal and -shm take the
            // store's mode.
            let file = connect.get_filename();
            if !url.contains(":memory:") && !file.as_os_str().is_empty() {
                crate::files::create_private_file(file)
                    .with_context(|| format!("creating the store {}", file.display()))?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.min(8))
                .acquire_timeout(options.acquire_timeout)
                .after_release(sqlite_release)
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
    ///
    /// On PostgreSQL the migrations run on a connection of their own without the service's
    /// lock and idle timeouts: sqlx waits for its migration lock while another process
    /// migrates, and a migration may take long (an index on a large table).
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Self::Postgres(pool) => {
                let options = (*pool.connect_options()).clone().options([
                    ("lock_timeout", "0"),
                    ("idle_in_transaction_session_timeout", "0"),
                ]);
                let mut connection = sqlx::PgConnection::connect_with(&options)
                    .await
                    .context("connecting to PostgreSQL to migrate")?;
                let migrated = sqlx::migrate!("../migrations/postgres")
                    .run(&mut connection)
                    .await;
                let _ = connection.close().await;
                migrated
            }
            Self::Sqlite(pool) => sqlx::migrate!("../migrations/sqlite").run(pool).await,
        }
        .context("running database migrations")
    }

    /// `postgres` or `sqlite`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// The main connection pool now: connections open, idle, and the most allowed.
    pub fn pool_stats(&self) -> PoolStats {
        let (size, idle, max) = match self {
            Self::Postgres(pool) => (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            ),
            Self::Sqlite(pool) => (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            ),
        };
        PoolStats { size, idle, max }
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// The database error.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        self.execute(Statement::new("select 1")).await.map(drop)
    }

    /// Runs `statement` on the pool; answers how many rows it changed. With [`Self::records`],
    /// the one place the write side's own tables (settings, sessions,
    /// snapshots) ask which database they are on.
    ///
    /// # Errors
    /// The database error.
    pub async fn execute(&self, statement: Statement) -> Result<u64, sqlx::Error> {
        match self {
            Self::Postgres(pool) => statement.execute(pool).await,
            Self::Sqlite(pool) => statement.execute(pool).await,
        }
    }

    /// Every row `statement` answers, read as `R`.
    ///
    /// # Errors
    /// The database error, or a column of another type.
    pub async fn records<R: Record + Send + 'static>(
        &self,
        statement: Statement,
    ) -> Result<Vec<R>, sqlx::Error> {
        match self {
            Self::Postgres(pool) => statement.records(pool).await,
            Self::Sqlite(pool) => statement.records(pool).await,
        }
    }

    /// The first row `statement` answers, read as `R` (`None`: no row).
    ///
    /// # Errors
    /// The database error, or a column of another type.
    pub async fn record<R: Record + Send + 'static>(
        &self,
        statement: Statement,
    ) -> Result<Option<R>, sqlx::Error> {
        Ok(self.records(statement).await?.into_iter().next())
    }

    /// The first column of the first row `statement` answers (`None`: no row).
    ///
    /// # Errors
    /// The database error, or a column of another type.
    pub async fn scalar<T: Column + Send + 'static>(
        &self,
        statement: Statement,
    ) -> Result<Option<T>, sqlx::Error> {
        let first = self.record::<First<T>>(statement).await?;
        Ok(first.map(|First(value)| value))
    }

    /// The secret kept under `key` in the store, made (256 random bits) the first time it is
    /// asked for: one value for every process of the store (two asking at once get the same).
    ///
    /// # Errors
    /// A database failure.
    pub async fn shared_secret(&self, key: &str) -> Result<crate::mac::MacKey, sqlx::Error> {
        let fresh = crate::secrets::SecretString::generate();
        self.insert_setting_if_absent(key, fresh.expose()).await?;
        let stored = self.setting(key).await?.ok_or(sqlx::Error::RowNotFound)?;
        Ok(crate::mac::MacKey::new(stored.as_bytes()))
    }

    /// A value from `registry_settings`.
    ///
    /// # Errors
    /// The database error.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        const SQL: &str = "select value from registry_settings where key = $1";
        self.scalar(Statement::new(SQL).bind(key)).await
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
        let stored = self.execute(Statement::new(SQL).bind(key).bind(value));
        Ok(stored.await? == 1)
    }

    /// Stores `value` under `key`, replacing what was there.
    ///
    /// # Errors
    /// The database error.
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), sqlx::Error> {
        const SQL: &str = "insert into registry_settings (key, value) values ($1, $2) \
                           on conflict (key) do update set value = excluded.value";
        let stored = self.execute(Statement::new(SQL).bind(key).bind(value));
        stored.await.map(drop)
    }

    /// Whether any event was ever stored.
    ///
    /// # Errors
    /// The database error.
    pub async fn has_events(&self) -> Result<bool, sqlx::Error> {
        const SQL: &str = "select exists (select 1 from events)";
        Ok(self.scalar(Statement::new(SQL)).await?.unwrap_or(false))
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
        .after_release(sqlite_release)
        .connect_lazy_with(options)
}
