//! Storage of dynamic client registration (RFC 7591, RFC 7592): the initial access tokens an
//! administrator creates (`initial_access_tokens`) and the registration access token of each
//! client registered with one (`registration_access_tokens`). Only SHA-256 digests (hex) of
//! the tokens are stored; the tokens themselves are shown once. Times are Unix seconds, given
//! by the caller. Shared by every process on the database: a use is counted by one atomic
//! update, so two processes never let a token be used more often than it may.

use registry_domain::registration::RegistrationPolicy;
use registry_sql::{Engine, Record, Statement};

use crate::database::Database;

/// The SHA-256 of a token, hex: what is stored and looked up.
pub fn token_digest(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// The SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether a registration access token issued for the registration at `token_for` (Unix
/// microseconds) manages the client registered at `registered_at`: the same registration, not
/// one made since under the same id.
pub fn same_registration(
    registered_at: Option<chrono::DateTime<chrono::Utc>>,
    token_for: i64,
) -> bool {
    registered_at.map(|at| at.timestamp_micros()) == Some(token_for)
}

/// An initial access token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitialAccessToken {
    /// Its id (not secret).
    pub token_id: String,
    /// What it is for.
    pub description: String,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: i64,
    /// When it stops being accepted.
    pub expires_at: i64,
    /// How many registrations it admits (`None`: any number until it expires).
    pub max_uses: Option<i64>,
    /// How many it admitted.
    pub uses: i64,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// What the clients it admits may be.
    pub policy: RegistrationPolicy,
}

impl InitialAccessToken {
    /// Whether it admits a registration at `now`.
    pub fn is_usable(&self, now: i64) -> bool {
        self.revoked_at.is_none()
            && self.expires_at > now
            && self.max_uses.is_none_or(|max| self.uses < max)
    }
}

impl Record for InitialAccessToken {
    fn read<DB: Engine>(row: &DB::Row) -> Result<Self, sqlx::Error> {
        let policy: String = DB::get(row, "policy")?;
        Ok(Self {
            token_id: DB::get(row, "token_id")?,
            description: DB::get(row, "description")?,
            created_by: DB::get(row, "created_by")?,
            created_at: DB::get(row, "created_at")?,
            expires_at: DB::get(row, "expires_at")?,
            max_uses: DB::get(row, "max_uses")?,
            uses: DB::get(row, "uses")?,
            revoked_at: DB::get(row, "revoked_at")?,
            policy: serde_json::from_str(&policy).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        })
    }
}

/// The registration access token of a client, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationAccessToken {
    /// SHA-256 of the token, hex.
    pub sha256: String,
    /// The initial access token that registered the client.
    pub token_id: String,
    /// When the registration it manages happened (Unix microseconds of its event).
    pub registered_at: i64,
}

impl Record for RegistrationAccessToken {
    fn read<DB: Engine>(row: &DB::Row) -> Result<Self, sqlx::Error> {
        Ok(Self {
            sha256: DB::get(row, "sha256")?,
            token_id: DB::get(row, "token_id")?,
            registered_at: DB::get(row, "registered_at")?,
        })
    }
}

/// A row of [`Database::unused_registrations`].
struct Unused(String, i64);

impl Record for Unused {
    fn read<DB: Engine>(row: &DB::Row) -> Result<Self, sqlx::Error> {
        Ok(Self(
            DB::get(row, "client_id")?,
            DB::get(row, "registered_at")?,
        ))
    }
}

const COLUMNS: &str = "token_id, description, created_by, created_at, expires_at, max_uses, \
                       uses, revoked_at, policy";

impl Database {
    /// Stores a new initial access token under the digest of its plaintext.
    ///
    /// # Errors
    /// The database error.
    pub async fn create_initial_access_token(
        &self,
        token: &InitialAccessToken,
        sha256: &str,
    ) -> Result<(), sqlx::Error> {
        let sql = format!(
            "insert into initial_access_tokens ({COLUMNS}, sha256) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        let policy =
            serde_json::to_string(&token.policy).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let insert = Statement::new(sql)
            .bind(&token.token_id)
            .bind(&token.description)
            .bind(&token.created_by)
            .bind(token.created_at)
            .bind(token.expires_at)
            .bind(token.max_uses)
            .bind(token.uses)
            .bind(token.revoked_at)
            .bind(policy)
            .bind(sha256);
        self.execute(insert).await.map(drop)
    }

    /// Every initial access token, newest first (at most `limit`).
    ///
    /// # Errors
    /// The database error.
    pub async fn initial_access_tokens(
        &self,
        limit: i64,
    ) -> Result<Vec<InitialAccessToken>, sqlx::Error> {
        let sql = format!(
            "select {COLUMNS} from initial_access_tokens order by created_at desc, token_id limit $1"
        );
        self.records(Statement::new(sql).bind(limit)).await
    }

    /// One initial access token by id.
    ///
    /// # Errors
    /// The database error.
    pub async fn initial_access_token(
        &self,
        token_id: &str,
    ) -> Result<Option<InitialAccessToken>, sqlx::Error> {
        let sql = format!("select {COLUMNS} from initial_access_tokens where token_id = $1");
        self.record(Statement::new(sql).bind(token_id)).await
    }

    /// The initial access token with this digest, when it admits a registration at `now`.
    ///
    /// # Errors
    /// The database error.
    pub async fn usable_initial_access_token(
        &self,
        sha256: &str,
        now: i64,
    ) -> Result<Option<InitialAccessToken>, sqlx::Error> {
        let sql = format!("select {COLUMNS} from initial_access_tokens where sha256 = $1");
        let found: Option<InitialAccessToken> =
            self.record(Statement::new(sql).bind(sha256)).await?;
        Ok(found.filter(|token| token.is_usable(now)))
    }

    /// Counts one use of the token with this digest, if it still admits one at `now` (one
    /// atomic update: of two processes using its last use, one gets it).
    ///
    /// # Errors
    /// The database error.
    pub async fn use_initial_access_token(
        &self,
        sha256: &str,
        now: i64,
    ) -> Result<Option<InitialAccessToken>, sqlx::Error> {
        let sql = format!(
            "update initial_access_tokens set uses = uses + 1 \
             where sha256 = $1 and revoked_at is null and expires_at > $2 \
             and (max_uses is null or uses < max_uses) returning {COLUMNS}"
        );
        self.record(Statement::new(sql).bind(sha256).bind(now))
            .await
    }

    /// Gives back a use of a token (a registration it admitted failed for a reason of the
    /// registry's, not the caller's).
    ///
    /// # Errors
    /// The database error.
    pub async fn give_back_initial_access_token_use(
        &self,
        token_id: &str,
    ) -> Result<(), sqlx::Error> {
        const SQL: &str =
            "update initial_access_tokens set uses = uses - 1 where token_id = $1 and uses > 0";
        self.execute(Statement::new(SQL).bind(token_id))
            .await
            .map(drop)
    }

    /// Revokes a token; false when there is none with this id or it was revoked before.
    ///
    /// # Errors
    /// The database error.
    pub async fn revoke_initial_access_token(
        &self,
        token_id: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        const SQL: &str = "update initial_access_tokens set revoked_at = $2 \
                           where token_id = $1 and revoked_at is null";
        Ok(self
            .execute(Statement::new(SQL).bind(token_id).bind(now))
            .await?
            == 1)
    }

    /// Stores (or replaces) the registration access token of `client_id`, for its
    /// registration at `registered_at` (Unix microseconds).
    ///
    /// # Errors
    /// The database error.
    pub async fn put_registration_access_token(
        &self,
        client_id: &str,
        sha256: &str,
        token_id: &str,
        (now, registered_at): (i64, i64),
    ) -> Result<(), sqlx::Error> {
        const SQL: &str = "insert into registration_access_tokens (client_id, sha256, token_id, \
                           issued_at, registered_at) values ($1, $2, $3, $4, $5) \
                           on conflict (client_id) do update set sha256 = excluded.sha256, \
                           token_id = excluded.token_id, issued_at = excluded.issued_at, \
                           registered_at = excluded.registered_at";
        let put = Statement::new(SQL)
            .bind(client_id)
            .bind(sha256)
            .bind(token_id)
            .bind(now)
            .bind(registered_at);
        self.execute(put).await.map(drop)
    }

    /// Replaces the registration access token of `client_id` only if it is still `current`
    /// (of two updates with the same token, one gets the new one); false otherwise.
    ///
    /// # Errors
    /// The database error.
    pub async fn replace_registration_access_token(
        &self,
        client_id: &str,
        current: &str,
        new: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        const SQL: &str = "update registration_access_tokens set sha256 = $3, issued_at = $4 \
                           where client_id = $1 and sha256 = $2";
        let replace = Statement::new(SQL)
            .bind(client_id)
            .bind(current)
            .bind(new)
            .bind(now);
        Ok(self.execute(replace).await? == 1)
    }

    /// The registration access token of `client_id`.
    ///
    /// # Errors
    /// The database error.
    pub async fn registration_access_token(
        &self,
        client_id: &str,
    ) -> Result<Option<RegistrationAccessToken>, sqlx::Error> {
        const SQL: &str = "select sha256, token_id, registered_at from registration_access_tokens \
                           where client_id = $1";
        self.record(Statement::new(SQL).bind(client_id)).await
    }

    /// Forgets the registration access token of `client_id` (the client was deleted).
    ///
    /// # Errors
    /// The database error.
    pub async fn delete_registration_access_token(
        &self,
        client_id: &str,
    ) -> Result<(), sqlx::Error> {
        const SQL: &str = "delete from registration_access_tokens where client_id = $1";
        self.execute(Statement::new(SQL).bind(client_id))
            .await
            .map(drop)
    }

    /// The ids of the clients registered with an initial access token (at most `limit`).
    ///
    /// # Errors
    /// The database error.
    pub async fn clients_registered_with(
        &self,
        token_id: &str,
        limit: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        const SQL: &str = "select client_id from registration_access_tokens where token_id = $1 \
                           order by client_id limit $2";
        let rows: Vec<registry_sql::First<String>> = self
            .records(Statement::new(SQL).bind(token_id).bind(limit))
            .await?;
        Ok(rows.into_iter().map(|registry_sql::First(id)| id).collect())
    }

    /// Clients registered dynamically (or last replaced through RFC 7592) before `before` and
    /// not authenticated since then, by id after `after` (a page of at most `limit`), each
    /// with the time of the registration its token manages.
    ///
    /// # Errors
    /// The database error.
    pub async fn unused_registrations(
        &self,
        before: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, i64)>, sqlx::Error> {
        const SQL: &str = "select r.client_id, r.registered_at from registration_access_tokens r \
                           left join client_last_authenticated l on l.client_id = r.client_id \
                           where r.issued_at < $1 and (l.at is null or l.at < $1) \
                           and r.client_id > $2 order by r.client_id limit $3";
        let rows: Vec<Unused> = self
            .records(Statement::new(SQL).bind(before).bind(after).bind(limit))
            .await?;
        Ok(rows.into_iter().map(|Unused(id, at)| (id, at)).collect())
    }

    /// The clients registered dynamically (with the initial access token `token_id`, or with
    /// any), at most `limit`.
    ///
    /// # Errors
    /// The database error.
    pub async fn dynamically_registered(
        &self,
        token_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        let statement = match token_id {
            Some(token_id) => return self.clients_registered_with(token_id, limit).await,
            None => Statement::new(
                "select client_id from registration_access_tokens order by client_id limit $1",
            )
            .bind(limit),
        };
        let rows: Vec<registry_sql::First<String>> = self.records(statement).await?;
        Ok(rows.into_iter().map(|registry_sql::First(id)| id).collect())
    }
}
