//! What the registry keeps of each client ID metadata document URL beside the client's events
//! (`client_id_documents`): the digest of the version the client was built from, until when
//! it is fresh, an administrator's pin (with the changed version held meanwhile) or block, and
//! why the last fetch was refused. Shared by every process on the database; times are Unix
//! seconds given by the caller.

use registry_sql::{Engine, Record, Statement};

use crate::database::Database;

/// A document URL's row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DocumentState {
    /// The document URL (the client's id).
    pub url: String,
    /// SHA-256 (hex) of the version the client was last built from.
    pub sha256: Option<String>,
    /// When that version was fetched (or found unchanged) last.
    pub fetched_at: Option<i64>,
    /// Until when the last answer (a version or a refusal) stands without a fetch.
    pub fresh_until: i64,
    /// Who pinned the document, and when.
    pub pinned: Option<(String, i64)>,
    /// The changed version held while pinned: its digest, body and when it was fetched.
    pub held: Option<(String, String, i64)>,
    /// Who blocked the URL, and when.
    pub blocked: Option<(String, i64)>,
    /// Why the last fetch was refused, and when.
    pub last_error: Option<(String, i64)>,
    /// Whether that refusal was a passing trouble of the document's server.
    pub last_error_transient: bool,
}

fn pair<A, B>(a: Option<A>, b: Option<B>) -> Option<(A, B)> {
    a.zip(b)
}

impl Record for DocumentState {
    fn read<DB: Engine>(row: &DB::Row) -> Result<Self, sqlx::Error> {
        let held_sha256: Option<String> = DB::get(row, "held_sha256")?;
        let held_body: Option<String> = DB::get(row, "held_body")?;
        let held_at: Option<i64> = DB::get(row, "held_at")?;
        Ok(Self {
            url: DB::get(row, "url")?,
            sha256: DB::get(row, "sha256")?,
            fetched_at: DB::get(row, "fetched_at")?,
            fresh_until: DB::get(row, "fresh_until")?,
            pinned: pair(DB::get(row, "pinned_by")?, DB::get(row, "pinned_at")?),
            held: pair(held_sha256, held_body)
                .zip(held_at)
                .map(|((sha, body), at)| (sha, body, at)),
            blocked: pair(DB::get(row, "blocked_by")?, DB::get(row, "blocked_at")?),
            last_error: pair(DB::get(row, "last_error")?, DB::get(row, "last_error_at")?),
            last_error_transient: DB::get::<i64>(row, "last_error_transient")? != 0,
        })
    }
}

const COLUMNS: &str = "url, sha256, fetched_at, fresh_until, pinned_by, pinned_at, held_sha256, \
                       held_body, held_at, blocked_by, blocked_at, last_error, last_error_at, \
                       last_error_transient";

impl Database {
    /// The row of `url`, if the registry ever fetched it or an administrator acted on it.
    ///
    /// # Errors
    /// The database error.
    pub async fn document_state(&self, url: &str) -> Result<Option<DocumentState>, sqlx::Error> {
        let sql = format!("select {COLUMNS} from client_id_documents where url = $1");
        self.record(Statement::new(sql).bind(url)).await
    }

    /// Every document URL's row, by URL (at most `limit`).
    ///
    /// # Errors
    /// The database error.
    pub async fn document_states(&self, limit: i64) -> Result<Vec<DocumentState>, sqlx::Error> {
        let sql = format!("select {COLUMNS} from client_id_documents order by url limit $1");
        self.records(Statement::new(sql).bind(limit)).await
    }

    /// The client was built from (or found unchanged at) version `sha256`, fetched at `at`;
    /// it stands until `fresh_until`. Clears the last refusal, and a held version that the
    /// document no longer is.
    ///
    /// # Errors
    /// The database error.
    pub async fn record_document_version(
        &self,
        url: &str,
        sha256: &str,
        (at, fresh_until): (i64, i64),
    ) -> Result<(), sqlx::Error> {
        const SQL: &str = "insert into client_id_documents (url, sha256, fetched_at, fresh_until) \
                           values ($1, $2, $3, $4) on conflict (url) do update set \
                           sha256 = excluded.sha256, fetched_at = excluded.fetched_at, \
                           fresh_until = excluded.fresh_until, last_error = null, \
                           last_error_at = null, held_sha256 = null, held_body = null, \
                           held_at = null";
        let put = Statement::new(SQL)
            .bind(url)
            .bind(sha256)
            .bind(at)
            .bind(fresh_until);
        self.execute(put).await.map(drop)
    }

    /// A pinned document changed: `body` (digest `sha256`) is held for approval; the pinned
    /// version stays fresh until `fresh_until`.
    ///
    /// # Errors
    /// The database error.
    pub async fn hold_document_version(
        &self,
        url: &str,
        (sha256, body): (&str, &str),
        (at, fresh_until): (i64, i64),
    ) -> Result<(), sqlx::Error> {
        const SQL: &str = "update client_id_documents set held_sha256 = $2, held_body = $3, \
                           held_at = $4, fetched_at = $4, fresh_until = $5, last_error = null, \
                           last_error_at = null where url = $1";
        let hold = Statement::new(SQL)
            .bind(url)
            .bind(sha256)
            .bind(body)
            .bind(at)
            .bind(fresh_until);
        self.execute(hold).await.map(drop)
    }

    /// The fetch of `url` was refused for `error` (`transient`: a passing trouble of its
    /// server) at `at`; asked again, the refusal stands until `fresh_until`.
    ///
    /// # Errors
    /// The database error.
    pub async fn record_document_refusal(
        &self,
        url: &str,
        (error, transient): (&str, bool),
        (at, fresh_until): (i64, i64),
    ) -> Result<(), sqlx::Error> {
        const SQL: &str = "insert into client_id_documents (url, last_error, last_error_at, \
                           fresh_until, last_error_transient) values ($1, $2, $3, $4, $5) \
                           on conflict (url) do update set \
                           last_error = excluded.last_error, \
                           last_error_at = excluded.last_error_at, \
                           fresh_until = excluded.fresh_until, \
                           last_error_transient = excluded.last_error_transient";
        let put = Statement::new(SQL)
            .bind(url)
            .bind(error)
            .bind(at)
            .bind(fresh_until)
            .bind(i64::from(transient));
        self.execute(put).await.map(drop)
    }

    /// Pins (`Some((by, at))`) or unpins the document at `url`. Unpinning drops the held
    /// version and makes the document stale, so that the next lookup fetches it.
    ///
    /// # Errors
    /// The database error.
    pub async fn pin_document(
        &self,
        url: &str,
        pin: Option<(&str, i64)>,
    ) -> Result<(), sqlx::Error> {
        const PIN: &str = "insert into client_id_documents (url, pinned_by, pinned_at) \
                           values ($1, $2, $3) on conflict (url) do update set \
                           pinned_by = excluded.pinned_by, pinned_at = excluded.pinned_at";
        const UNPIN: &str = "update client_id_documents set pinned_by = null, pinned_at = null, \
                             held_sha256 = null, held_body = null, held_at = null, \
                             fresh_until = 0 where url = $1";
        let statement = match pin {
            Some((by, at)) => Statement::new(PIN).bind(url).bind(by).bind(at),
            None => Statement::new(UNPIN).bind(url),
        };
        self.execute(statement).await.map(drop)
    }

    /// Blocks (`Some((by, at))`) or unblocks the URL. Unblocking forgets every version: the
    /// next lookup fetches the document as new.
    ///
    /// # Errors
    /// The database error.
    pub async fn block_document(
        &self,
        url: &str,
        block: Option<(&str, i64)>,
    ) -> Result<(), sqlx::Error> {
        const BLOCK: &str = "insert into client_id_documents (url, blocked_by, blocked_at) \
                             values ($1, $2, $3) on conflict (url) do update set \
                             blocked_by = excluded.blocked_by, blocked_at = excluded.blocked_at, \
                             sha256 = null, held_sha256 = null, held_body = null, held_at = null";
        const UNBLOCK: &str = "update client_id_documents set blocked_by = null, \
                               blocked_at = null, fresh_until = 0 where url = $1";
        let statement = match block {
            Some((by, at)) => Statement::new(BLOCK).bind(url).bind(by).bind(at),
            None => Statement::new(UNBLOCK).bind(url),
        };
        self.execute(statement).await.map(drop)
    }
}
