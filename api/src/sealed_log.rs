//! The sealed log from outside: the registry's public key, signed tree heads, inclusion and
//! consistency proofs (RFC 9162), and the log itself as JSON Lines, exactly as hashed, for an
//! auditor to verify without trusting the registry (`client-registry audit verify`, or their
//! own code: README, "Verifying the log without our code").

use std::collections::VecDeque;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use registry_projections::seal::merkle::{self, Hash};
use registry_projections::seal::store::{Leaf, SealDb};
use registry_projections::seal::{canonical, LogEvent, TreeHead};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{AuditRead, Authorized};
use crate::error::{ApiError, Problem, ProblemFieldError};
use crate::exports::{Paced, Stopped};
use crate::extract::AppQuery;
use crate::state::AppState;

/// The sealed-log routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit/key", get(key))
        .route("/audit/tree-heads", get(tree_head))
        .route("/audit/proof/inclusion", get(inclusion))
        .route("/audit/proof/consistency", get(consistency))
        .route(
            "/events/export.jsonl",
            get(export_log).layer(axum::middleware::from_fn(
                crate::exports::generic_media_type,
            )),
        )
}

/// The key that signs tree heads.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KeyResponse {
    /// `Ed25519`.
    pub algorithm: String,
    /// The hex SHA-256 of the 32 public-key bytes (tree heads name it).
    pub key_id: String,
    /// The 32 public-key bytes, base64.
    pub public_key: String,
    /// The same key as PEM (SubjectPublicKeyInfo), for `audit verify --public-key`.
    pub public_key_pem: String,
}

/// The public key that signs this registry's tree heads.
#[utoipa::path(
    get, path = "/api/v1/audit/key", tag = "audit",
    responses(
        (status = 200, description = "The signing key", body = KeyResponse),
        (status = 401, description = "No or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks audit:read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn key(
    _caller: Authorized<AuditRead>,
    State(state): State<AppState>,
) -> Json<KeyResponse> {
    let key = state.sealer.key();
    Json(KeyResponse {
        algorithm: "Ed25519".to_owned(),
        key_id: key.key_id(),
        public_key: STANDARD.encode(key.public()),
        public_key_pem: key.public_pem(),
    })
}

/// Which tree head.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HeadParams {
    /// The head of this tree size (default: the latest).
    pub tree_size: Option<u64>,
}

/// A signed tree head: the latest, or the one of `tree_size`.
#[utoipa::path(
    get, path = "/api/v1/audit/tree-heads", tag = "audit",
    params(HeadParams),
    responses(
        (status = 200, description = "The signed tree head", body = TreeHead),
        (status = 400, description = "Malformed or unknown query parameter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks audit:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No head (of that size) was signed", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn tree_head(
    _caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<HeadParams>,
) -> Result<Json<TreeHead>, ApiError> {
    state
        .sealer
        .db()
        .head(params.tree_size)
        .await?
        .map(Json)
        .ok_or_else(|| {
            ApiError::NotSealed(match params.tree_size {
                Some(size) => format!("no tree head of size {size} was signed"),
                None => "no tree head was signed yet".to_owned(),
            })
        })
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::InvalidQuery(vec![ProblemFieldError {
        field: field.to_owned(),
        message: message.into(),
    }])
}

/// How many leaves are sealed.
async fn sealed_size(db: &SealDb) -> Result<u64, ApiError> {
    Ok(db.last_leaf().await?.map_or(0, |leaf| leaf.index + 1))
}

/// The tree size asked for (default: the latest head's), checked against what is sealed.
async fn size_asked(db: &SealDb, asked: Option<u64>, field: &str) -> Result<u64, ApiError> {
    match asked {
        Some(size) => {
            let sealed = sealed_size(db).await?;
            if size > sealed {
                return Err(bad(
                    field,
                    format!("only {sealed} events are sealed so far"),
                ));
            }
            Ok(size)
        }
        // A head never covers more than is sealed.
        None => match db.head(None).await? {
            Some(head) => Ok(head.tree_size),
            None => sealed_size(db).await,
        },
    }
}

/// `MTH(D[start:end])` from the stored nodes.
async fn ranges_hashes(db: &SealDb, ranges: &[(u64, u64)]) -> Result<Vec<Hash>, ApiError> {
    let parts: Vec<Vec<merkle::NodeKey>> = ranges
        .iter()
        .map(|&(start, end)| merkle::subtree_parts(start, end))
        .collect();
    let keys: Vec<merkle::NodeKey> = parts.iter().flatten().copied().collect();
    let stored = db.nodes(&keys).await?;
    parts
        .iter()
        .map(|keys| {
            let hashes: Option<Vec<Hash>> = keys.iter().map(|k| stored.get(k).copied()).collect();
            hashes
                .map(|h| merkle::fold_parts(&h))
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a sealed node is missing")))
        })
        .collect()
}

async fn root_of(db: &SealDb, size: u64) -> Result<Hash, ApiError> {
    if size == 0 {
        return Ok(merkle::empty_root());
    }
    Ok(ranges_hashes(db, &[(0, size)]).await?[0])
}

/// Which inclusion proof.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InclusionParams {
    /// The event's feed position.
    pub position: i64,
    /// The tree size to prove it in (default: the latest head's).
    pub tree_size: Option<u64>,
}

/// An inclusion (audit) proof (RFC 9162 §2.1.3).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InclusionProof {
    /// The event's feed position.
    pub position: i64,
    /// Its leaf's index.
    pub leaf_index: u64,
    /// Its leaf hash, hex.
    pub leaf_hash: String,
    /// The tree size of the proof.
    pub tree_size: u64,
    /// The root of that tree, hex (compare with a signed head of that size).
    pub root_hash: String,
    /// The audit path, from the leaf up, hex.
    pub audit_path: Vec<String>,
}

/// Proves that the event at `position` is in the tree of `tree_size`.
#[utoipa::path(
    get, path = "/api/v1/audit/proof/inclusion", tag = "audit",
    params(InclusionParams),
    responses(
        (status = 200, description = "The proof", body = InclusionProof),
        (status = 400, description = "Malformed query, or a tree size not sealed or not covering the event", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks audit:read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No sealed event at this position", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn inclusion(
    _caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<InclusionParams>,
) -> Result<Json<InclusionProof>, ApiError> {
    let db = state.sealer.db();
    let (leaf, head_size) = db
        .leaf_and_head_size(params.position)
        .await?
        .ok_or_else(|| {
            ApiError::NotSealed(format!("no sealed event at position {}", params.position))
        })?;
    let tree_size = match (params.tree_size, head_size) {
        // The latest head's: two round trips in all (this, then the nodes).
        (None, Some(size)) => size,
        (asked, _) => size_asked(db, asked, "tree_size").await?,
    };
    if leaf.index >= tree_size {
        return Err(bad(
            "tree_size",
            format!(
                "the event is leaf {}: a tree of {tree_size} does not hold it",
                leaf.index
            ),
        ));
    }
    let mut ranges = merkle::inclusion_ranges(leaf.index, tree_size);
    ranges.push((0, tree_size));
    let mut hashes = ranges_hashes(db, &ranges).await?;
    let root = hashes.pop().unwrap_or_else(merkle::empty_root);
    Ok(Json(InclusionProof {
        position: leaf.position,
        leaf_index: leaf.index,
        leaf_hash: merkle::hex(&leaf.hash),
        tree_size,
        root_hash: merkle::hex(&root),
        audit_path: hashes.iter().map(merkle::hex).collect(),
    }))
}

/// Which consistency proof.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The earlier tree size.
    pub from_size: u64,
    /// The later tree size (default: the latest head's).
    pub to_size: Option<u64>,
}

/// A consistency proof (RFC 9162 §2.1.4).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProof {
    /// The earlier tree size.
    pub from_size: u64,
    /// Its root, hex.
    pub from_root: String,
    /// The later tree size.
    pub to_size: u64,
    /// Its root, hex.
    pub to_root: String,
    /// The proof, hex.
    pub proof: Vec<String>,
}

/// Proves that the tree of `from_size` is a prefix of the tree of `to_size`: nothing sealed
/// before was changed or removed.
#[utoipa::path(
    get, path = "/api/v1/audit/proof/consistency", tag = "audit",
    params(ConsistencyParams),
    responses(
        (status = 200, description = "The proof", body = ConsistencyProof),
        (status = 400, description = "Malformed query, or sizes not sealed or out of order", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks audit:read", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn consistency(
    _caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<ConsistencyParams>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let db = state.sealer.db();
    let to_size = size_asked(db, params.to_size, "to_size").await?;
    if params.from_size > to_size {
        return Err(bad(
            "from_size",
            format!("must not be above to_size ({to_size})"),
        ));
    }
    let mut ranges = merkle::consistency_ranges(params.from_size, to_size);
    let proof_len = ranges.len();
    ranges.push((0, params.from_size.max(1)));
    ranges.push((0, to_size.max(1)));
    let hashes = if to_size == 0 {
        vec![merkle::empty_root(); proof_len + 2]
    } else {
        ranges_hashes(db, &ranges).await?
    };
    let from_root = if params.from_size == 0 {
        merkle::empty_root()
    } else {
        hashes[proof_len]
    };
    Ok(Json(ConsistencyProof {
        from_size: params.from_size,
        from_root: merkle::hex(&from_root),
        to_size,
        to_root: merkle::hex(&hashes[proof_len + 1]),
        proof: hashes[..proof_len].iter().map(merkle::hex).collect(),
    }))
}

/// Which part of the log.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportLogParams {
    /// The tree size to export (default: the latest head's): its leaves and every event up
    /// to the position of its last leaf.
    pub tree_size: Option<u64>,
    /// Start at this leaf (default 0): a range, for an auditor who checked the part before
    /// (verify its lines with inclusion proofs; `audit verify` wants the whole log).
    pub from_leaf: Option<u64>,
}

/// One line of the exported log: an event and its leaf, merged by position.
fn line(position: i64, leaf: Option<&Leaf>, event: Option<&LogEvent>) -> String {
    let mut text = canonical::canonical(&serde_json::json!({
        "position": position,
        "leaf_index": leaf.map(|l| l.index),
        "leaf_hash": leaf.map(|l| merkle::hex(&l.hash)),
        "event": event.map(LogEvent::leaf_object),
    }));
    text.push('\n');
    text
}

/// The log as JSON Lines, in position order: one line per sealed leaf and per event up to the
/// tree's last leaf, `{"event", "leaf_hash", "leaf_index", "position"}` (canonical JSON;
/// `event` is exactly the object the leaf hashes, `null` for a sealed leaf whose event is
/// gone; `leaf_*` are `null` for an event that was never sealed). Headers `X-Tree-Size` and
/// `X-Root-Hash` name the tree.
#[utoipa::path(
    get, path = "/api/v1/events/export.jsonl", tag = "audit",
    params(ExportLogParams),
    responses(
        (status = 200, description = "The log, one JSON object per line (as application/octet-stream when asked for it and not for application/jsonl: generated clients)", content(
             (String = "application/jsonl"),
             (inline(crate::exports::BinaryFile) = "application/octet-stream"))),
        (status = 400, description = "Malformed query, or a tree size not sealed", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong bearer token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The token lacks audit:read", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many exports running and queued (Retry-After)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn export_log(
    _caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<ExportLogParams>,
) -> Result<Response, ApiError> {
    let db = state.sealer.db().clone();
    let tree_size = size_asked(&db, params.tree_size, "tree_size").await?;
    // A whole-log scan: one of the bounded exports (held until the stream ends).
    let turn = state.exports.turn().await?;
    let from_leaf = params.from_leaf.unwrap_or(0);
    if from_leaf > tree_size {
        return Err(bad(
            "from_leaf",
            format!("must not be above tree_size ({tree_size})"),
        ));
    }
    let root = root_of(&db, tree_size).await?;
    // The events after the leaf before the range (so that an event inserted just before the
    // range's first leaf still shows).
    let after = if from_leaf == 0 {
        i64::MIN
    } else {
        db.leaves(from_leaf - 1, from_leaf, 1)
            .await?
            .first()
            .map_or(i64::MIN, |leaf| leaf.position)
    };
    let max_position = if tree_size == 0 {
        0
    } else {
        db.leaves(tree_size - 1, tree_size, 1)
            .await?
            .first()
            .map_or(0, |leaf| leaf.position)
    };
    let (sender, body) = state.exports.paced_body();
    tokio::spawn(async move {
        // The turn goes with this task: freed when it ends, by completion, a reader that
        // went away, one too slow, or a failure.
        let _turn = turn;
        match stream_log(&db, (from_leaf, tree_size), (after, max_position), &sender).await {
            Ok(()) | Err(LogStop::Reader(Stopped::Gone)) => {}
            Err(LogStop::Reader(Stopped::TooSlow)) => {
                tracing::warn!("log export stopped: its reader took nothing for too long");
            }
            Err(LogStop::Failed(error)) => {
                tracing::warn!(%error, "log export stopped");
                sender.fail("the export failed").await;
            }
        }
    });
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jsonl"),
    );
    headers.insert("x-tree-size", tree_size.into());
    if let Ok(value) = HeaderValue::from_str(&merkle::hex(&root)) {
        headers.insert("x-root-hash", value);
    }
    Ok(response)
}

/// Why streaming the log stopped before its end.
enum LogStop {
    /// The reader (gone, or too slow).
    Reader(Stopped),
    /// Reading the store failed.
    Failed(ApiError),
}

impl From<registry_projections::ReadError> for LogStop {
    fn from(error: registry_projections::ReadError) -> Self {
        Self::Failed(error.into())
    }
}

/// Streams the merged leaves and events to `sender`, a page of each at a time; stops when
/// the receiver goes away.
async fn stream_log(
    db: &SealDb,
    (from_leaf, tree_size): (u64, u64),
    (after, max_position): (i64, i64),
    sender: &Paced,
) -> Result<(), LogStop> {
    const PAGE: u32 = 5000;
    const CHUNK: usize = 64 * 1024;
    let mut buffer = String::with_capacity(CHUNK + 4096);
    let mut leaves: VecDeque<Leaf> = VecDeque::new();
    let mut events: VecDeque<LogEvent> = VecDeque::new();
    let (mut next_leaf, mut leaves_done) = (from_leaf, from_leaf >= tree_size);
    let (mut after, mut events_done) = (after, from_leaf >= tree_size);
    loop {
        if leaves.is_empty() && !leaves_done {
            let page = db.leaves(next_leaf, tree_size, PAGE).await?;
            leaves_done = page.len() < PAGE as usize;
            next_leaf = page.last().map_or(tree_size, |leaf| leaf.index + 1);
            leaves.extend(page);
        }
        if events.is_empty() && !events_done {
            let page = db.events(after, max_position, PAGE).await?;
            events_done = page.len() < PAGE as usize;
            after = page.last().map_or(max_position, |event| event.position);
            events.extend(page);
        }
        let text = match (leaves.front(), events.front()) {
            (None, None) => {
                if !buffer.is_empty() {
                    sender.send(buffer).await.map_err(LogStop::Reader)?;
                }
                return Ok(());
            }
            (Some(leaf), Some(event)) if leaf.position == event.position => {
                let text = line(leaf.position, Some(leaf), Some(event));
                leaves.pop_front();
                events.pop_front();
                text
            }
            (Some(leaf), Some(event)) if leaf.position > event.position => {
                let text = line(event.position, None, Some(event));
                events.pop_front();
                text
            }
            (Some(leaf), _) => {
                let text = line(leaf.position, Some(leaf), None);
                leaves.pop_front();
                text
            }
            (None, Some(event)) => {
                let text = line(event.position, None, Some(event));
                events.pop_front();
                text
            }
        };
        buffer.push_str(&text);
        if buffer.len() >= CHUNK {
            let full = std::mem::replace(&mut buffer, String::with_capacity(CHUNK + 4096));
            sender.send(full).await.map_err(LogStop::Reader)?;
        }
    }
}
