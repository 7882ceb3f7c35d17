//! The sealed log from outside: the registry's public key, signed tree heads, inclusion and
//! consistency proofs (RFC 9162), and the log itself as JSON Lines, exactly as hashed, for an
//! auditor to verify without trusting the registry (`client-registry audit verify`, or their
//! own code: README, "Verifying the log without our code").

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use registry_projections::seal::log_export::{self, LogStop};
use registry_projections::seal::merkle;
use registry_projections::seal::proofs::{self, LogRange, ProofError};
use registry_projections::seal::store::SealDb;
use registry_projections::seal::TreeHead;
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
        crate::responses::AuditDenied,
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
        (status = 404, description = "No head (of that size) was signed", body = Problem, content_type = "application/problem+json"),
        crate::responses::AuditDeniedOrBadQuery,
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

impl From<ProofError> for ApiError {
    fn from(error: ProofError) -> Self {
        match error {
            ProofError::NotSealed(message) => Self::NotSealed(message),
            ProofError::Invalid { field, message } => Self::InvalidQuery(vec![ProblemFieldError {
                field: field.to_owned(),
                message,
            }]),
            ProofError::Read(error) => error.into(),
            ProofError::MissingNode => Self::Internal(anyhow::anyhow!("a sealed node is missing")),
        }
    }
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
        (status = 404, description = "No sealed event at this position", body = Problem, content_type = "application/problem+json"),
        crate::responses::AuditDenied,
    ),
    security(("bearer" = []))
)]
pub async fn inclusion(
    _caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<InclusionParams>,
) -> Result<Json<InclusionProof>, ApiError> {
    let proof = proofs::inclusion(state.sealer.db(), params.position, params.tree_size).await?;
    Ok(Json(InclusionProof {
        position: proof.leaf.position,
        leaf_index: proof.leaf.index,
        leaf_hash: merkle::hex(&proof.leaf.hash),
        tree_size: proof.tree_size,
        root_hash: merkle::hex(&proof.root),
        audit_path: proof.path.iter().map(merkle::hex).collect(),
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
        crate::responses::AuditDenied,
    ),
    security(("bearer" = []))
)]
pub async fn consistency(
    _caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<ConsistencyParams>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let proof = proofs::consistency(state.sealer.db(), params.from_size, params.to_size).await?;
    Ok(Json(ConsistencyProof {
        from_size: proof.from.0,
        from_root: merkle::hex(&proof.from.1),
        to_size: proof.to.0,
        to_root: merkle::hex(&proof.to.1),
        proof: proof.proof.iter().map(merkle::hex).collect(),
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
        crate::responses::AuditExportRefusals,
    ),
    security(("bearer" = []))
)]
pub async fn export_log(
    _caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<ExportLogParams>,
) -> Result<Response, ApiError> {
    let db = state.sealer.db().clone();
    let range = proofs::log_range(&db, params.tree_size, params.from_leaf).await?;
    // A whole-log scan: one of the bounded exports (held until the stream ends).
    let turn = state.exports.turn().await?;
    let (sender, body) = state.exports.paced_body();
    tokio::spawn(async move {
        // The turn goes with this task: freed when it ends, by completion, a reader that
        // went away, one too slow, or a failure.
        let _turn = turn;
        stream_log(&db, &range, &sender).await;
    });
    Ok(log_response(body, &range))
}

/// The streamed log, with the tree it is the log of in `X-Tree-Size` and `X-Root-Hash`.
fn log_response(body: impl IntoResponse, range: &LogRange) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jsonl"),
    );
    headers.insert("x-tree-size", range.tree_size.into());
    if let Ok(value) = HeaderValue::from_str(&merkle::hex(&range.root)) {
        headers.insert("x-root-hash", value);
    }
    response
}

/// Streams the log to `sender`, saying why when it stops early (a failure ends the body
/// with an error, so that the reader sees a cut transfer, not a complete one).
async fn stream_log(db: &SealDb, range: &LogRange, sender: &Paced) {
    match log_export::stream(db, range, sender).await {
        Ok(()) | Err(LogStop::Reader(Stopped::Gone)) => {}
        Err(LogStop::Reader(Stopped::TooSlow)) => {
            tracing::warn!("log export stopped: its reader took nothing for too long");
        }
        Err(LogStop::Failed(error)) => {
            tracing::warn!(%error, "log export stopped");
            sender.fail("the export failed").await;
        }
    }
}
