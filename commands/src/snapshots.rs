//! Snapshots of the write model: a client's state after its N-th event, taken every
//! [`SNAPSHOT_EVERY`] events, so loading a long stream reads one row and a short tail.
//!
//! A snapshot decides what a command and a secret verification see, so it is not trusted
//! blindly: each carries an HMAC-SHA-256 of its client id, version and state under a key that
//! is not in the database (derived from the sealed log's signing key). A row edited in SQL (a
//! disabled client enabled, a secret hash replaced) fails the check, is ignored and reported,
//! and the state is replayed from the events; the next write stores a signed one again.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cqrs_es::Aggregate;
use registry_domain::{Client, StampedClient};
use registry_sql::{Arg, Engine, Record, Statement};
use sqlx::types::Json;

use crate::database::Database;
use crate::mac::MacKey;

/// Events between two snapshots of one client.
pub const SNAPSHOT_EVERY: u64 = 100;

const SELECT: &str = "select version, state from aggregate_snapshots \
     where aggregate_type = $1 and aggregate_id = $2";

const UPSERT: &str =
    "insert into aggregate_snapshots (aggregate_type, aggregate_id, version, state) \
     values ($1, $2, $3, $4) on conflict (aggregate_type, aggregate_id) do update set \
     version = excluded.version, state = excluded.state \
     where aggregate_snapshots.version < excluded.version";

/// What the store held for a client: nothing, a snapshot whose MAC matches, or one that does
/// not (edited in SQL, copied from another client, unsigned by an older build): never used.
#[derive(Debug)]
pub enum StoredSnapshot {
    /// No snapshot.
    None,
    /// A snapshot this registry's key signed, for this client and version.
    Trusted(u64, Box<StampedClient>),
    /// A snapshot at this version that does not carry this registry's MAC of its state.
    Rejected(u64),
}

/// A snapshot as stored: the state and its HMAC-SHA-256 (base64url) under the snapshot key,
/// over `client id`, `version` and the state's JSON.
#[derive(serde::Serialize, serde::Deserialize)]
struct Signed {
    client: StampedClient,
    mac: String,
}

/// A stored snapshot: the version and the signed state, not yet checked.
struct SnapshotRow {
    version: i64,
    state: serde_json::Value,
}

impl Record for SnapshotRow {
    fn read<DB: Engine>(row: &DB::Row) -> Result<Self, sqlx::Error> {
        let Json(state) = DB::get(row, "state")?;
        Ok(Self {
            version: DB::get(row, "version")?,
            state,
        })
    }
}

/// The bytes a snapshot's MAC covers.
fn signed_bytes(client_id: &str, version: u64, client: &StampedClient) -> Option<Vec<u8>> {
    let mut bytes = format!("client-registry snapshot v1\n{client_id}\n{version}\n").into_bytes();
    bytes.extend(serde_json::to_vec(client).ok()?);
    Some(bytes)
}

impl Database {
    /// The latest snapshot of `client_id`, checked against `key`. A row that does not read as
    /// a signed [`StampedClient`] of this client and version is [`StoredSnapshot::Rejected`].
    ///
    /// # Errors
    /// The database error.
    pub async fn load_snapshot(
        &self,
        client_id: &str,
        key: &MacKey,
    ) -> Result<StoredSnapshot, sqlx::Error> {
        let select = Statement::new(SELECT).bind(Client::TYPE).bind(client_id);
        let row: Option<SnapshotRow> = self.record(select).await?;
        let Some(SnapshotRow { version, state }) = row else {
            return Ok(StoredSnapshot::None);
        };
        let version = u64::try_from(version).unwrap_or_default();
        let trusted = serde_json::from_value::<Signed>(state)
            .ok()
            .and_then(|signed| {
                let tag = URL_SAFE_NO_PAD.decode(signed.mac.as_bytes()).ok()?;
                let bytes = signed_bytes(client_id, version, &signed.client)?;
                key.verify(&bytes, &tag).then_some(signed.client)
            });
        Ok(match trusted {
            Some(client) => StoredSnapshot::Trusted(version, Box::new(client)),
            None => StoredSnapshot::Rejected(version),
        })
    }

    /// Stores `client` as the state after its `version`-th event, signed with `key`, unless a
    /// newer snapshot is there.
    ///
    /// # Errors
    /// The database error.
    pub async fn save_snapshot(
        &self,
        client_id: &str,
        version: u64,
        client: &StampedClient,
        key: &MacKey,
    ) -> Result<(), sqlx::Error> {
        let bytes = signed_bytes(client_id, version, client)
            .ok_or_else(|| sqlx::Error::Protocol("a snapshot that is not JSON".to_owned()))?;
        let signed = Signed {
            client: client.clone(),
            mac: URL_SAFE_NO_PAD.encode(key.sign(&bytes)),
        };
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        let upsert = Statement::new(UPSERT)
            .bind(Client::TYPE)
            .bind(client_id)
            .bind(version)
            .bind(Arg::json(&signed)?);
        self.execute(upsert).await?;
        Ok(())
    }
}
