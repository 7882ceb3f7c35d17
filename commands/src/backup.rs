//! Backup and restore of the embedded (SQLite) store while it runs.
//!
//! A backup is `VACUUM INTO`: SQLite copies the whole database as one read transaction sees
//! it, so the copy is consistent (every committed event up to one point, and the read models
//! as they were then) while writers go on; a file copy of a WAL database is not. A restore
//! copies a checked backup into a store that does not exist yet or holds no event, never over
//! a store with history. PostgreSQL has `pg_dump` and `pg_restore` for this (see the README).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::SqlitePool;

use crate::database::Database;

/// What a store (or a backup) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreSummary {
    /// Events stored.
    pub events: i64,
    /// Clients registered and not deleted.
    pub clients: i64,
    /// The feed position of the latest event (every event up to it is in the store).
    pub position: i64,
}

impl std::fmt::Display for StoreSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} events, {} clients, feed position {}",
            self.events, self.clients, self.position
        )
    }
}

async fn summary(pool: &SqlitePool) -> anyhow::Result<StoreSummary> {
    let (events, position): (i64, i64) =
        sqlx::query_as("select count(*), coalesce(max(global_position), 0) from events")
            .fetch_one(pool)
            .await?;
    // Live clients per the events themselves (the read models may lag their checkpoint).
    let (clients,): (i64,) = sqlx::query_as(
        "select count(*) from (select aggregate_type, aggregate_id, max(sequence) as last \
         from events group by aggregate_type, aggregate_id) as latest join events e \
         on e.aggregate_type = latest.aggregate_type and e.aggregate_id = latest.aggregate_id \
         and e.sequence = latest.last where e.aggregate_type = 'Client' \
         and e.event_type <> 'ClientDeleted'",
    )
    .fetch_one(pool)
    .await?;
    Ok(StoreSummary {
        events,
        clients,
        position,
    })
}

/// Opens a SQLite file read-only (never created).
async fn open_read_only(path: &Path) -> anyhow::Result<SqlitePool> {
    anyhow::ensure!(path.exists(), "{} does not exist", path.display());
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false);
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

/// Checks that `pool` is a sound registry store: SQLite's integrity check passes and it has
/// the event table.
async fn check(pool: &SqlitePool, what: &str) -> anyhow::Result<()> {
    let (verdict,): (String,) = sqlx::query_as("pragma integrity_check")
        .fetch_one(pool)
        .await
        .with_context(|| format!("{what} is not a SQLite database"))?;
    anyhow::ensure!(verdict == "ok", "{what} is damaged: {verdict}");
    let (tables,): (i64,) = sqlx::query_as(
        "select count(*) from sqlite_master where type = 'table' and name = 'events'",
    )
    .fetch_one(pool)
    .await?;
    anyhow::ensure!(
        tables == 1,
        "{what} is not a client-registry store (no events table)"
    );
    Ok(())
}

/// Makes a file written by SQLite durable and private: its data and its directory entry on
/// disk (`VACUUM INTO` does not sync), readable by its owner only (it holds secret hashes).
fn seal(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    std::fs::File::open(path)?.sync_all()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The lock a serving process holds (shared) on its SQLite store, and a restore (exclusive):
/// a restore never replaces a store under a running service.
pub fn store_lock_path(store: &Path) -> PathBuf {
    let mut path = store.as_os_str().to_owned();
    path.push(".serve-lock");
    PathBuf::from(path)
}

/// Takes the serving process's shared lock on the SQLite store at `store` (kept while the
/// returned file lives).
///
/// # Errors
/// A restore holds the store, or the lock file cannot be made.
pub fn lock_for_serving(store: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = store.parent() {
        crate::files::create_private_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(store_lock_path(store))?;
    match file.try_lock_shared() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            anyhow::bail!(
                "{} is being restored; start the service after the restore",
                store.display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Copies the running store `database` into a new file `to` (which must not exist), and says
/// what the copy holds.
///
/// # Errors
/// A PostgreSQL store (use `pg_dump`), an existing `to`, or a database failure.
pub async fn backup(database: &Database, to: &Path) -> anyhow::Result<StoreSummary> {
    let Database::Sqlite(pool) = database else {
        anyhow::bail!(
            "backup copies the embedded SQLite store; for PostgreSQL use pg_dump (see the README)"
        );
    };
    anyhow::ensure!(
        !to.exists(),
        "{} exists already: a backup never overwrites a file",
        to.display()
    );
    let target = to
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("the backup path must be UTF-8"))?;
    // Made empty and private first: `VACUUM INTO` fills an empty file, and the copy is never
    // readable by others, not even for the moment before `seal`.
    anyhow::ensure!(
        crate::files::create_private_file(to)?,
        "{} exists already: a backup never overwrites a file",
        to.display()
    );
    // One read transaction: every event committed before it, none after.
    sqlx::query("vacuum into ?")
        .bind(target)
        .execute(pool)
        .await
        .with_context(|| format!("writing the backup to {}", to.display()))?;
    seal(to)?;
    let copy = open_read_only(to).await?;
    check(&copy, "the backup").await?;
    let summary = summary(&copy).await;
    copy.close().await;
    summary
}

/// The SQLite file of a `sqlite:` database URL.
///
/// # Errors
/// A URL of another kind.
pub fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    use std::str::FromStr as _;
    anyhow::ensure!(
        url.starts_with("sqlite:"),
        "restore writes an embedded SQLite store; for PostgreSQL use pg_restore (see the README)"
    );
    Ok(SqliteConnectOptions::from_str(url)?
        .get_filename()
        .to_path_buf())
}

/// Restores the backup `from` as the store at `to` (the `REGISTRY_DATABASE_URL` file), which
/// must not exist or hold no event, and must not be served meanwhile (its lock is taken); says
/// what it holds. The copy is written beside the store and renamed into place.
///
/// # Errors
/// A damaged or foreign backup, a store that has events or is being served, or a file-system
/// failure.
pub async fn restore(from: &Path, to: &Path) -> anyhow::Result<StoreSummary> {
    let backup = open_read_only(from).await?;
    check(&backup, "the backup").await?;
    let expected = summary(&backup).await?;
    if let Some(dir) = to.parent() {
        crate::files::create_private_dir_all(dir)?;
    }
    let lock = lock_unserved(to)?;
    refuse_unless_empty(to).await?;
    // Written beside the store, checked, then renamed into place: the store is either the old
    // empty one or the whole restored one, never a part.
    let partial = PathBuf::from(format!("{}.restoring", to.display()));
    if partial.exists() {
        std::fs::remove_file(&partial)?;
    }
    crate::files::create_private_file(&partial)?;
    let target = partial
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("the store path must be UTF-8"))?;
    sqlx::query("vacuum into ?")
        .bind(target)
        .execute(&backup)
        .await
        .with_context(|| format!("writing {}", partial.display()))?;
    backup.close().await;
    seal(&partial)?;
    move_into_place(&partial, to)?;
    drop(lock);
    let restored = open_read_only(to).await?;
    check(&restored, "the restored store").await?;
    let got = summary(&restored).await?;
    restored.close().await;
    anyhow::ensure!(
        got == expected,
        "the restored store holds {got}, the backup {expected}"
    );
    Ok(got)
}

/// The store's serving lock, taken: no service runs on `to` while it is held.
fn lock_unserved(to: &Path) -> anyhow::Result<std::fs::File> {
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(store_lock_path(to))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "a service is running on {}: stop it before restoring",
            to.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Refuses a store at `to` that holds events (or is not a store of ours).
async fn refuse_unless_empty(to: &Path) -> anyhow::Result<()> {
    if !to.exists() {
        return Ok(());
    }
    let existing = open_read_only(to).await?;
    let events: anyhow::Result<(i64,)> = sqlx::query_as("select count(*) from events")
        .fetch_one(&existing)
        .await
        .map_err(anyhow::Error::from);
    existing.close().await;
    match events {
        Ok((0,)) => Ok(()),
        Ok((n,)) => anyhow::bail!(
            "{} holds {n} events: restore only into a new or empty store",
            to.display()
        ),
        Err(_) => anyhow::bail!(
            "{} exists and is not an empty client-registry store: restore only into a new \
             or empty store",
            to.display()
        ),
    }
}

/// Renames the restored copy over the (empty) store, its WAL files gone first.
fn move_into_place(partial: &Path, to: &Path) -> anyhow::Result<()> {
    for suffix in ["-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", to.display()));
        if file.exists() {
            std::fs::remove_file(&file)
                .with_context(|| format!("removing {} of the empty store", file.display()))?;
        }
    }
    std::fs::rename(partial, to)
        .with_context(|| format!("moving the restored store to {}", to.display()))?;
    seal(to)
}
