//! `client-registry audit verify`: checks an exported log against a signed tree head, with no
//! database and nothing of the registry but its public key. Every leaf is recomputed from its
//! event, the root from the leaves, the signature from the key; an earlier tree head is
//! checked to be a prefix of this log. The first position that differs is named, and what
//! differs there.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use super::merkle::{self, Frontier, Hash};
use super::{keys, leaf_hash_of, TreeHead};
use anyhow::Context as _;
use serde_json::Value;

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The feed position it is at (`None`: the log as a whole, e.g. its end or its root).
    pub position: Option<i64>,
    /// What differs.
    pub what: String,
}

/// What verifying found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Lines read.
    pub lines: u64,
    /// Leaves recomputed.
    pub leaves: u64,
    /// Problems, in log order (the first is the first position that differs).
    pub findings: Vec<Finding>,
    /// The recomputed root.
    pub root: Option<Hash>,
}

impl Report {
    fn find(&mut self, position: Option<i64>, what: impl Into<String>) {
        self.findings.push(Finding {
            position,
            what: what.into(),
        });
    }

    /// Whether nothing was found wrong.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Verifies `log` (JSON Lines as `/api/v1/events/export.jsonl` writes them) against `head`,
/// signed by `public`, and `previous` (an earlier head) against both.
///
/// # Errors
/// When `log` cannot be read at all.
pub fn verify(
    log: impl BufRead,
    head: &TreeHead,
    public: &[u8; 32],
    previous: Option<&TreeHead>,
) -> anyhow::Result<Report> {
    let mut verifier = Verifier {
        previous,
        ..Verifier::default()
    };
    verifier.check_heads(head, public);
    for (number, line) in log.lines().enumerate() {
        let line = line.context("reading the log")?;
        if !line.trim().is_empty() {
            verifier.line(number + 1, &line);
        }
    }
    Ok(verifier.finish(head))
}

/// What reading a log so far found: the tree of its leaves, where it is, and each client's
/// last sequence.
#[derive(Default)]
struct Verifier<'a> {
    report: Report,
    frontier: Frontier,
    previous: Option<&'a TreeHead>,
    /// The root once the log reached the earlier head's size.
    previous_root: Option<Hash>,
    last_position: Option<i64>,
    /// Each client's stream runs 1, 2, 3…: a gap is an event the aggregate replays but the
    /// log never showed (a row hidden from every position-ordered reader).
    sequences: HashMap<String, i64>,
}

impl Verifier<'_> {
    /// The signatures of both heads, and that the earlier one is not larger.
    fn check_heads(&mut self, head: &TreeHead, public: &[u8; 32]) {
        if !head.verify(public) {
            self.report.find(
                None,
                "the tree head's signature does not verify with this public key (or names another key)",
            );
        }
        let Some(previous) = self.previous else {
            return;
        };
        if !previous.verify(public) {
            self.report.find(
                None,
                "the earlier tree head's signature does not verify with this key",
            );
        }
        if previous.tree_size > head.tree_size {
            self.report.find(
                None,
                format!(
                    "the earlier tree head covers {} events, this one only {}: sealed events were removed",
                    previous.tree_size, head.tree_size
                ),
            );
        }
    }

    /// One line of the log (numbered from 1).
    fn line(&mut self, number: usize, line: &str) {
        self.report.lines += 1;
        // The common case, fast: the line is `{"event":<the event's canonical text>,
        // "leaf_hash":…,"leaf_index":…,"position":…}`; hashing that text as it stands is
        // enough when it gives the sealed hash (it is then exactly the sealed bytes).
        if let Some((position, hash, stream, sequence)) = fast_path(line, self.frontier.size()) {
            self.sequence(position, &stream, sequence);
            self.order(position, number);
            self.push(hash);
            return;
        }
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            self.report.find(None, format!("line {number} is not JSON"));
            return;
        };
        let position = value["position"].as_i64().unwrap_or(i64::MIN);
        self.order(position, number);
        let event = &value["event"];
        if let (Some(stream), Some(sequence)) =
            (event["stream_id"].as_str(), event["sequence"].as_i64())
        {
            self.sequence(position, stream, sequence);
        }
        self.entry(position, &value);
    }

    fn order(&mut self, position: i64, number: usize) {
        // Before the first line, the last position is the smallest there is.
        if position <= self.last_position.unwrap_or(i64::MIN) {
            self.report.find(
                Some(position),
                format!("line {number} is out of position order"),
            );
        }
        self.last_position = Some(position);
    }

    fn sequence(&mut self, position: i64, stream: &str, sequence: i64) {
        let last = self
            .sequences
            .insert(stream.to_owned(), sequence)
            .unwrap_or(0);
        if sequence != last + 1 {
            self.report.find(
                Some(position),
                format!(
                    "the events of {stream:?} jump from sequence {last} to {sequence}: events of this client are missing from the log or out of order"
                ),
            );
        }
    }

    /// Adds a leaf, noting the root when the log reaches the earlier head's size.
    fn push(&mut self, hash: Hash) {
        self.frontier.push(hash);
        if self
            .previous
            .is_some_and(|p| p.tree_size == self.frontier.size())
            && self.previous_root.is_none()
        {
            self.previous_root = Some(self.frontier.root());
        }
    }

    /// A line checked in full: its event against its recorded leaf hash.
    fn entry(&mut self, position: i64, value: &Value) {
        let event = &value["event"];
        let recorded = value["leaf_hash"].as_str().and_then(merkle::from_hex);
        match (event.is_null(), recorded) {
            (false, Some(recorded)) => self.sealed_event(position, value, recorded),
            (true, Some(recorded)) => {
                self.report.find(
                    Some(position),
                    format!(
                        "the event sealed as leaf {} is missing from the log: deleted",
                        self.frontier.size()
                    ),
                );
                self.push(recorded);
            }
            (false, None) => self.report.find(
                Some(position),
                format!(
                    "an event of {} (sequence {}, {}) that was never sealed sits among sealed ones: inserted afterwards",
                    event["stream_id"], event["sequence"], event["event_type"]
                ),
            ),
            (true, None) => self.report.find(Some(position), "an empty line entry"),
        }
    }

    /// An event that says it was sealed as `recorded`: at its leaf index, at its position,
    /// and hashing to it.
    fn sealed_event(&mut self, position: i64, value: &Value, recorded: Hash) {
        let event = &value["event"];
        let expected_index = self.frontier.size();
        if value["leaf_index"].as_u64() != Some(expected_index) {
            self.report.find(
                Some(position),
                format!("leaf {expected_index} is missing or out of order"),
            );
        }
        let recomputed = leaf_hash_of(event);
        if event["position"].as_i64() != Some(position) {
            self.report.find(
                Some(position),
                format!(
                    "the event here says it is at position {}: events were moved or swapped",
                    event["position"]
                ),
            );
        } else if recomputed != recorded {
            self.report.find(
                Some(position),
                format!(
                    "the event of {} (sequence {}, {}) is not what was sealed: its payload, metadata or type was changed",
                    event["stream_id"], event["sequence"], event["event_type"]
                ),
            );
        }
        self.push(recomputed);
    }

    /// The end of the log: its size and root against `head`, and the earlier head a prefix.
    fn finish(mut self, head: &TreeHead) -> Report {
        let size = self.frontier.size();
        let root = self.frontier.root();
        self.report.leaves = size;
        self.report.root = Some(root);
        if size < head.tree_size {
            self.report.find(
                None,
                format!(
                    "the log ends after {size} sealed events, the tree head covers {}: the last {} are missing (truncated)",
                    head.tree_size,
                    head.tree_size - size
                ),
            );
        } else if size > head.tree_size {
            self.report.find(
                None,
                format!(
                    "the log has {size} sealed events, the tree head covers {}: export the log of this head (?tree_size={})",
                    head.tree_size, head.tree_size
                ),
            );
        } else if Some(root) != head.root() {
            self.report.find(
                None,
                "the log's leaves do not produce the signed root: sealed leaf hashes were changed too",
            );
        }
        if let Some(previous) = self.previous {
            let earlier = if previous.tree_size == 0 {
                Some(merkle::empty_root())
            } else {
                self.previous_root
            };
            if earlier.is_some() && earlier != previous.root() {
                self.report.find(
                    None,
                    format!(
                        "the earlier tree head of {} events is not a prefix of this log: an event before it was changed or removed",
                        previous.tree_size
                    ),
                );
            }
        }
        self.report
    }
}

/// A line whose event hashes, as written, to its recorded leaf hash, at the expected leaf
/// index: its position, hash, stream and sequence. `None` for anything else (then checked in
/// full).
fn fast_path(line: &str, expected_index: u64) -> Option<(i64, Hash, String, i64)> {
    const HEAD: &str = "{\"event\":{";
    const TAIL: &str = ",\"leaf_hash\":\"";
    if !line.starts_with(HEAD) {
        return None;
    }
    let split = line.rfind(TAIL)?;
    let event = &line[HEAD.len() - 1..split];
    #[derive(serde::Deserialize)]
    struct Tail<'a> {
        leaf_hash: &'a str,
        leaf_index: u64,
        position: i64,
    }
    let tail_text = format!("{{{}", &line[split + 1..]);
    let tail: Tail<'_> = serde_json::from_str(&tail_text).ok()?;
    let recorded = merkle::from_hex(tail.leaf_hash)?;
    let hash = merkle::leaf_hash(event.as_bytes());
    if hash != recorded || tail.leaf_index != expected_index {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Ident {
        stream_id: String,
        sequence: i64,
    }
    let ident: Ident = serde_json::from_str(event).ok()?;
    Some((tail.position, hash, ident.stream_id, ident.sequence))
}

fn read_head(path: &Path) -> anyhow::Result<TreeHead> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a tree head", path.display()))
}

/// Runs `audit verify`: prints `OK …` or `TAMPERED at position P: …` (then every finding) and
/// answers whether the log verified.
///
/// # Errors
/// Unreadable files.
pub fn run(
    log: &Path,
    head: &Path,
    public_key: &Path,
    previous: Option<&Path>,
) -> anyhow::Result<bool> {
    let head = read_head(head)?;
    let previous = previous.map(read_head).transpose()?;
    let public = keys::parse_public(
        &std::fs::read_to_string(public_key)
            .with_context(|| format!("reading {}", public_key.display()))?,
    )
    .with_context(|| format!("{} is not an Ed25519 public key", public_key.display()))?;
    let file = std::fs::File::open(log).with_context(|| format!("reading {}", log.display()))?;
    let report = verify(
        std::io::BufReader::with_capacity(1 << 20, file),
        &head,
        &public,
        previous.as_ref(),
    )?;
    if report.is_clean() {
        println!(
            "OK: {} events, tree size {}, root {} signed at {} by key {}{}",
            report.leaves,
            head.tree_size,
            head.root_hash,
            head.timestamp,
            head.key_id,
            previous.map_or_else(String::new, |p| format!(
                "; consistent with the earlier head of {} events",
                p.tree_size
            ))
        );
        return Ok(true);
    }
    let first = &report.findings[0];
    println!(
        "TAMPERED at position {}: {}",
        first
            .position
            .map_or_else(|| "-".to_owned(), |p| p.to_string()),
        first.what
    );
    for finding in &report.findings[1..] {
        println!(
            "  also at position {}: {}",
            finding
                .position
                .map_or_else(|| "-".to_owned(), |p| p.to_string()),
            finding.what
        );
    }
    Ok(false)
}
