//! The sealed log: every event, in global-position order, a leaf of a Merkle tree (RFC 9162)
//! whose signed heads let an auditor prove, without trusting the registry, that the history
//! is complete and unaltered.
//!
//! A leaf is `SHA-256(0x00 || JCS(event))` where `event` is the JSON object
//!
//! ```text
//! {"event_type", "event_version", "metadata", "payload", "position", "sequence",
//!  "stream_id", "stream_type"}
//! ```
//!
//! of the stored row (payload and metadata as the JSON they hold, each secret's argon2id
//! `hash` replaced by `sha256:<hex of its SHA-256>`; a row whose payload or metadata is not
//! JSON has `payload_text` / `metadata_text` with the raw text instead) and JCS is RFC 8785. A tree head is `{"key_id", "root_hash", "timestamp", "tree_size"}` signed
//! with Ed25519 over its JCS bytes; `signature` (base64) is added beside.

pub mod canonical;
pub mod keys;
pub mod log_export;
pub mod merkle;
pub mod offline_verify;
pub mod proofs;
pub mod sealer;
pub mod store;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest as _;

use merkle::Hash;

/// One stored event, as the sealed log reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    /// Global position.
    pub position: i64,
    /// `Client`.
    pub stream_type: String,
    /// The client id.
    pub stream_id: String,
    /// Position in its stream.
    pub sequence: i64,
    /// The event type.
    pub event_type: String,
    /// Its shape version.
    pub event_version: String,
    /// The payload as stored.
    pub payload: String,
    /// The metadata as stored.
    pub metadata: String,
}

impl LogEvent {
    /// The JSON object a leaf hashes.
    pub fn leaf_object(&self) -> Value {
        let mut object = Map::new();
        object.insert("event_type".into(), self.event_type.clone().into());
        object.insert("event_version".into(), self.event_version.clone().into());
        for (name, text) in [("payload", &self.payload), ("metadata", &self.metadata)] {
            match serde_json::from_str::<Value>(text) {
                Ok(mut value) => {
                    commit_secret_hashes(&mut value);
                    object.insert(name.to_owned(), value)
                }
                Err(_) => object.insert(format!("{name}_text"), text.clone().into()),
            };
        }
        object.insert("position".into(), self.position.into());
        object.insert("sequence".into(), self.sequence.into());
        object.insert("stream_id".into(), self.stream_id.clone().into());
        object.insert("stream_type".into(), self.stream_type.clone().into());
        Value::Object(object)
    }

    /// The leaf's bytes: the canonical text of [`Self::leaf_object`].
    pub fn leaf_text(&self) -> String {
        canonical::canonical(&self.leaf_object())
    }

    /// The leaf hash.
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(self.leaf_text().as_bytes())
    }
}

/// Replaces each secret's argon2id hash (a `hash` beside a `secret_id`) by `sha256:` and the
/// hex SHA-256 of it: the leaf still commits to the stored hash (changing it changes the
/// leaf), but the log an auditor reads holds nothing to guess a secret from.
fn commit_secret_hashes(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.contains_key("secret_id") {
                if let Some(Value::String(hash)) = map.get_mut("hash") {
                    let digest: [u8; 32] = sha2::Sha256::digest(hash.as_bytes()).into();
                    *hash = format!("sha256:{}", merkle::hex(&digest));
                }
            }
            map.values_mut().for_each(commit_secret_hashes);
        }
        Value::Array(items) => items.iter_mut().for_each(commit_secret_hashes),
        _ => {}
    }
}

/// The leaf hash of an event object as exported (its canonical text hashed).
pub fn leaf_hash_of(event: &Value) -> Hash {
    merkle::leaf_hash(canonical::canonical(event).as_bytes())
}

/// A signed tree head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TreeHead {
    /// The number of leaves (events) the tree covers.
    pub tree_size: u64,
    /// The root hash, hex.
    pub root_hash: String,
    /// When it was signed (RFC 3339, UTC, milliseconds).
    pub timestamp: String,
    /// The hex SHA-256 of the signing public key.
    pub key_id: String,
    /// Ed25519 signature (base64) over the canonical JSON of the other four members.
    pub signature: String,
}

impl TreeHead {
    /// The bytes signed: the canonical JSON of the head without its signature.
    pub fn signed_text(tree_size: u64, root_hash: &str, timestamp: &str, key_id: &str) -> String {
        canonical::canonical(&serde_json::json!({
            "key_id": key_id,
            "root_hash": root_hash,
            "timestamp": timestamp,
            "tree_size": tree_size,
        }))
    }

    /// Signs a head.
    pub fn sign(tree_size: u64, root: &Hash, timestamp: &str, key: &keys::SigningKey) -> Self {
        let root_hash = merkle::hex(root);
        let key_id = key.key_id();
        let signature =
            key.sign(Self::signed_text(tree_size, &root_hash, timestamp, &key_id).as_bytes());
        Self {
            tree_size,
            root_hash,
            timestamp: timestamp.to_owned(),
            key_id,
            signature: STANDARD.encode(signature),
        }
    }

    /// Whether `public` signed this head (and it names that key).
    pub fn verify(&self, public: &[u8; 32]) -> bool {
        let Ok(signature) = STANDARD.decode(&self.signature) else {
            return false;
        };
        self.key_id == keys::key_id(public)
            && keys::verify(
                public,
                Self::signed_text(
                    self.tree_size,
                    &self.root_hash,
                    &self.timestamp,
                    &self.key_id,
                )
                .as_bytes(),
                &signature,
            )
    }

    /// The root hash.
    pub fn root(&self) -> Option<Hash> {
        merkle::from_hex(&self.root_hash)
    }
}
