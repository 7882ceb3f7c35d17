//! The sealed log as JSON Lines, in position order: one line per sealed leaf and per event up
//! to the tree's last leaf (`{"event", "leaf_hash", "leaf_index", "position"}`, canonical
//! JSON), merged from a page of leaves and a page of events at a time, sent in chunks of
//! about 64 KiB.

use std::collections::VecDeque;

use super::proofs::LogRange;
use super::store::{Leaf, SealDb};
use super::{canonical, merkle, LogEvent};
use crate::store::ReadError;

/// Where the chunks of the log go (a response body).
pub trait ChunkSink: Sync {
    /// Why a chunk was refused.
    type Refused: Send;

    /// Sends one chunk; an error stops the stream.
    fn send(
        &self,
        chunk: String,
    ) -> impl std::future::Future<Output = Result<(), Self::Refused>> + Send;
}

/// Why streaming the log stopped before its end.
#[derive(Debug)]
pub enum LogStop<E> {
    /// The receiver refused a chunk (gone, or too slow).
    Reader(E),
    /// Reading the store failed.
    Failed(ReadError),
}

impl<E> From<ReadError> for LogStop<E> {
    fn from(error: ReadError) -> Self {
        Self::Failed(error)
    }
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

/// Leaves and events, a page of each at a time, merged by position.
struct Merge<'a> {
    db: &'a SealDb,
    range: &'a LogRange,
    leaves: VecDeque<Leaf>,
    events: VecDeque<LogEvent>,
    next_leaf: u64,
    after: i64,
    leaves_done: bool,
    events_done: bool,
}

const PAGE: u32 = 5000;

impl<'a> Merge<'a> {
    fn new(db: &'a SealDb, range: &'a LogRange) -> Self {
        let empty = range.from_leaf >= range.tree_size;
        Self {
            db,
            range,
            leaves: VecDeque::new(),
            events: VecDeque::new(),
            next_leaf: range.from_leaf,
            after: range.after,
            leaves_done: empty,
            events_done: empty,
        }
    }

    /// The next line, or `None` at the end.
    async fn next_line(&mut self) -> Result<Option<String>, ReadError> {
        if self.leaves.is_empty() && !self.leaves_done {
            let page = (self.db)
                .leaves(self.next_leaf, self.range.tree_size, PAGE)
                .await?;
            self.leaves_done = page.len() < PAGE as usize;
            self.next_leaf = page
                .last()
                .map_or(self.range.tree_size, |leaf| leaf.index + 1);
            self.leaves.extend(page);
        }
        if self.events.is_empty() && !self.events_done {
            let max = self.range.max_position;
            let page = self.db.events(self.after, max, PAGE).await?;
            self.events_done = page.len() < PAGE as usize;
            self.after = page.last().map_or(max, |event| event.position);
            self.events.extend(page);
        }
        Ok(match (self.leaves.front(), self.events.front()) {
            (None, None) => None,
            (Some(leaf), Some(event)) if leaf.position == event.position => {
                let text = line(leaf.position, Some(leaf), Some(event));
                self.leaves.pop_front();
                self.events.pop_front();
                Some(text)
            }
            (Some(leaf), Some(event)) if leaf.position > event.position => {
                let text = line(event.position, None, Some(event));
                self.events.pop_front();
                Some(text)
            }
            (Some(leaf), _) => {
                let text = line(leaf.position, Some(leaf), None);
                self.leaves.pop_front();
                Some(text)
            }
            (None, Some(event)) => {
                let text = line(event.position, None, Some(event));
                self.events.pop_front();
                Some(text)
            }
        })
    }
}

/// Streams the log `range` covers to `sink`, in chunks of about 64 KiB; stops at the first
/// chunk `sink` refuses.
///
/// # Errors
/// [`LogStop::Reader`] with why `sink` refused; [`LogStop::Failed`] when reading failed.
pub async fn stream<S: ChunkSink>(
    db: &SealDb,
    range: &LogRange,
    sink: &S,
) -> Result<(), LogStop<S::Refused>> {
    const CHUNK: usize = 64 * 1024;
    let mut merge = Merge::new(db, range);
    let mut buffer = String::with_capacity(CHUNK + 4096);
    while let Some(text) = merge.next_line().await? {
        buffer.push_str(&text);
        if buffer.len() >= CHUNK {
            let full = std::mem::replace(&mut buffer, String::with_capacity(CHUNK + 4096));
            sink.send(full).await.map_err(LogStop::Reader)?;
        }
    }
    if !buffer.is_empty() {
        sink.send(buffer).await.map_err(LogStop::Reader)?;
    }
    Ok(())
}
