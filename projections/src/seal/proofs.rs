//! Proofs over the sealed log (RFC 9162 §2.1.3, §2.1.4) from the stored perfect subtrees: an
//! event's inclusion in a tree, one tree's consistency with a later one, and the range of the
//! log a tree covers (what `/events/export.jsonl` streams).

use super::merkle::{self, Hash};
use super::store::{Leaf, SealDb};
use crate::store::ReadError;

/// Why a proof cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// Nothing is sealed there (yet).
    #[error("{0}")]
    NotSealed(String),
    /// A parameter asks for something impossible: the field and why.
    #[error("{field}: {message}")]
    Invalid {
        /// The query parameter.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Reading the store failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A stored node the tree needs is missing (the seal tables were edited).
    #[error("a sealed node is missing")]
    MissingNode,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ProofError {
    ProofError::Invalid {
        field,
        message: message.into(),
    }
}

/// An event's inclusion in a tree: its leaf, the tree, and the audit path.
#[derive(Debug, Clone)]
pub struct Inclusion {
    /// The event's leaf.
    pub leaf: Leaf,
    /// The tree's size.
    pub tree_size: u64,
    /// The tree's root.
    pub root: Hash,
    /// The audit path, leaf to root.
    pub path: Vec<Hash>,
}

/// Two trees' roots and the proof that the first is a prefix of the second.
#[derive(Debug, Clone)]
pub struct Consistency {
    /// The earlier tree's size and root.
    pub from: (u64, Hash),
    /// The later tree's size and root.
    pub to: (u64, Hash),
    /// The proof's hashes.
    pub proof: Vec<Hash>,
}

/// What a tree covers, for an export of its leaves from `from_leaf` on.
#[derive(Debug, Clone, Copy)]
pub struct LogRange {
    /// The tree's size and root.
    pub tree_size: u64,
    /// Its root.
    pub root: Hash,
    /// The first leaf exported.
    pub from_leaf: u64,
    /// Events after this position are exported (the leaf before the range's, so that an
    /// event inserted just before the range's first leaf still shows).
    pub after: i64,
    /// And up to the position of the tree's last leaf.
    pub max_position: i64,
}

/// How many leaves are sealed.
///
/// # Errors
/// [`ProofError::Read`].
pub async fn sealed_size(db: &SealDb) -> Result<u64, ProofError> {
    Ok(db.last_leaf().await?.map_or(0, |leaf| leaf.index + 1))
}

/// The tree size asked for in `field` (default: the latest head's), checked against what is
/// sealed.
///
/// # Errors
/// [`ProofError::Invalid`] for a size not sealed yet; [`ProofError::Read`].
pub async fn size_asked(
    db: &SealDb,
    asked: Option<u64>,
    field: &'static str,
) -> Result<u64, ProofError> {
    match asked {
        Some(size) => {
            let sealed = sealed_size(db).await?;
            if size > sealed {
                return Err(invalid(
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

/// The hash of each range of leaves, from the stored perfect subtrees (one query).
async fn ranges_hashes(db: &SealDb, ranges: &[(u64, u64)]) -> Result<Vec<Hash>, ProofError> {
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
                .ok_or(ProofError::MissingNode)
        })
        .collect()
}

/// The root of the tree of the first `size` leaves.
///
/// # Errors
/// [`ProofError::Read`], [`ProofError::MissingNode`].
pub async fn root_of(db: &SealDb, size: u64) -> Result<Hash, ProofError> {
    if size == 0 {
        return Ok(merkle::empty_root());
    }
    Ok(ranges_hashes(db, &[(0, size)]).await?[0])
}

/// The inclusion of the event at `position` in the tree of `tree_size` (default: the latest
/// head's) — two round trips in all for the latest head.
///
/// # Errors
/// [`ProofError::NotSealed`] when no event is sealed there; [`ProofError::Invalid`] for a
/// tree that does not hold it; read failures.
pub async fn inclusion(
    db: &SealDb,
    position: i64,
    tree_size: Option<u64>,
) -> Result<Inclusion, ProofError> {
    let (leaf, head_size) = (db.leaf_and_head_size(position).await?)
        .ok_or_else(|| ProofError::NotSealed(format!("no sealed event at position {position}")))?;
    let tree_size = match (tree_size, head_size) {
        (None, Some(size)) => size,
        (asked, _) => size_asked(db, asked, "tree_size").await?,
    };
    if leaf.index >= tree_size {
        return Err(invalid(
            "tree_size",
            format!(
                "the event is leaf {}: a tree of {tree_size} does not hold it",
                leaf.index
            ),
        ));
    }
    let mut ranges = merkle::inclusion_ranges(leaf.index, tree_size);
    ranges.push((0, tree_size));
    let mut path = ranges_hashes(db, &ranges).await?;
    let root = path.pop().unwrap_or_else(merkle::empty_root);
    Ok(Inclusion {
        leaf,
        tree_size,
        root,
        path,
    })
}

/// The consistency of the tree of `from_size` with that of `to_size` (default: the latest
/// head's).
///
/// # Errors
/// [`ProofError::Invalid`] when `from_size` is above `to_size` or a size is not sealed;
/// read failures.
pub async fn consistency(
    db: &SealDb,
    from_size: u64,
    to_size: Option<u64>,
) -> Result<Consistency, ProofError> {
    let to_size = size_asked(db, to_size, "to_size").await?;
    if from_size > to_size {
        return Err(invalid(
            "from_size",
            format!("must not be above to_size ({to_size})"),
        ));
    }
    let mut ranges = merkle::consistency_ranges(from_size, to_size);
    let proof_len = ranges.len();
    ranges.push((0, from_size.max(1)));
    ranges.push((0, to_size.max(1)));
    let hashes = if to_size == 0 {
        vec![merkle::empty_root(); proof_len + 2]
    } else {
        ranges_hashes(db, &ranges).await?
    };
    let from_root = if from_size == 0 {
        merkle::empty_root()
    } else {
        hashes[proof_len]
    };
    Ok(Consistency {
        from: (from_size, from_root),
        to: (to_size, hashes[proof_len + 1]),
        proof: hashes[..proof_len].to_vec(),
    })
}

/// What an export of the tree of `tree_size` (default: the latest head's) from `from_leaf`
/// covers.
///
/// # Errors
/// [`ProofError::Invalid`] for a range past the tree; read failures.
pub async fn log_range(
    db: &SealDb,
    tree_size: Option<u64>,
    from_leaf: Option<u64>,
) -> Result<LogRange, ProofError> {
    let tree_size = size_asked(db, tree_size, "tree_size").await?;
    let from_leaf = from_leaf.unwrap_or(0);
    if from_leaf > tree_size {
        return Err(invalid(
            "from_leaf",
            format!("must not be above tree_size ({tree_size})"),
        ));
    }
    let root = root_of(db, tree_size).await?;
    let position_of = |index: u64, default: i64| async move {
        Ok::<_, ProofError>(
            (db.leaves(index, index + 1, 1).await?)
                .first()
                .map_or(default, |leaf| leaf.position),
        )
    };
    let after = match from_leaf {
        0 => i64::MIN,
        _ => position_of(from_leaf - 1, i64::MIN).await?,
    };
    let max_position = match tree_size {
        0 => 0,
        _ => position_of(tree_size - 1, 0).await?,
    };
    Ok(LogRange {
        tree_size,
        root,
        from_leaf,
        after,
        max_position,
    })
}
