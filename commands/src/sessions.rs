//! Storage of the admin screens' sessions (`ui_sessions`): shared by every process on the
//! database, keyed by a SHA-256 digest of the session id (the id itself is only in the
//! browser's cookie). Times are Unix seconds, given by the caller.

use registry_sql::{Engine, Record, Statement};

use crate::database::Database;

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// Its CSRF token.
    pub csrf_token: String,
    /// Who signed in (the actor of their changes).
    pub actor: String,
    /// Their roles, comma-separated role names.
    pub roles: String,
    /// When it was last used.
    pub last_seen_at: i64,
    /// When it ends unless used before.
    pub expires_at: i64,
    /// When it ends whatever happens.
    pub absolute_expires_at: i64,
    /// SHA-256 (hex) of the token it was begun with; `None` for the identity service.
    pub credential_sha256: Option<String>,
}

/// A session to store.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// SHA-256 of the session id, hex.
    pub id_sha256: &'a str,
    /// Its CSRF token.
    pub csrf_token: &'a str,
    /// Who signed in.
    pub actor: &'a str,
    /// Their roles.
    pub roles: &'a str,
    /// Now.
    pub now: i64,
    /// When it ends unless used.
    pub expires_at: i64,
    /// When it ends at the latest.
    pub absolute_expires_at: i64,
    /// SHA-256 (hex) of the token it is begun with; `None` for the identity service.
    pub credential_sha256: Option<&'a str>,
}

const INSERT: &str = "insert into ui_sessions (id_sha256, csrf_token, actor, roles, created_at, \
     last_seen_at, expires_at, absolute_expires_at, credential_sha256) \
     values ($1, $2, $3, $4, $5, $5, $6, $7, $8)";

const SELECT: &str = "select csrf_token, actor, roles, last_seen_at, expires_at, \
     absolute_expires_at, credential_sha256 from ui_sessions where id_sha256 = $1 and expires_at > $2 \
     and absolute_expires_at > $2";

const TOUCH: &str = "update ui_sessions set last_seen_at = $2, expires_at = \
     case when $3 < absolute_expires_at then $3 else absolute_expires_at end \
     where id_sha256 = $1";

const DELETE: &str = "delete from ui_sessions where id_sha256 = $1";

const PURGE: &str = "delete from ui_sessions where expires_at <= $1 or absolute_expires_at <= $1";

impl Record for SessionRow {
    fn read<DB: Engine>(row: &DB::Row) -> Result<Self, sqlx::Error> {
        Ok(Self {
            csrf_token: DB::get(row, "csrf_token")?,
            actor: DB::get(row, "actor")?,
            roles: DB::get(row, "roles")?,
            last_seen_at: DB::get(row, "last_seen_at")?,
            expires_at: DB::get(row, "expires_at")?,
            absolute_expires_at: DB::get(row, "absolute_expires_at")?,
            credential_sha256: DB::get(row, "credential_sha256")?,
        })
    }
}

impl Database {
    /// Stores a new session.
    ///
    /// # Errors
    /// The database error.
    pub async fn create_session(&self, session: &NewSession<'_>) -> Result<(), sqlx::Error> {
        let insert = Statement::new(INSERT)
            .bind(session.id_sha256)
            .bind(session.csrf_token)
            .bind(session.actor)
            .bind(session.roles)
            .bind(session.now)
            .bind(session.expires_at)
            .bind(session.absolute_expires_at)
            .bind(session.credential_sha256.map(str::to_owned));
        self.execute(insert).await.map(drop)
    }

    /// The live session with this id digest at `now`.
    ///
    /// # Errors
    /// The database error.
    pub async fn find_session(
        &self,
        id_sha256: &str,
        now: i64,
    ) -> Result<Option<SessionRow>, sqlx::Error> {
        self.record(Statement::new(SELECT).bind(id_sha256).bind(now))
            .await
    }

    /// Records a use of the session at `now`: it now ends at `expires_at` unless used again
    /// (never later than its absolute end).
    ///
    /// # Errors
    /// The database error.
    pub async fn touch_session(
        &self,
        id_sha256: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), sqlx::Error> {
        let touch = Statement::new(TOUCH)
            .bind(id_sha256)
            .bind(now)
            .bind(expires_at);
        self.execute(touch).await.map(drop)
    }

    /// Ends a session.
    ///
    /// # Errors
    /// The database error.
    pub async fn delete_session(&self, id_sha256: &str) -> Result<(), sqlx::Error> {
        self.execute(Statement::new(DELETE).bind(id_sha256))
            .await
            .map(drop)
    }

    /// Removes every session that has ended by `now`.
    ///
    /// # Errors
    /// The database error.
    pub async fn purge_sessions(&self, now: i64) -> Result<u64, sqlx::Error> {
        self.execute(Statement::new(PURGE).bind(now)).await
    }
}
