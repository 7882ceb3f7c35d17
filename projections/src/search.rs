//! The client list held in memory, for search.
//!
//! Substring search with an exact `total` over a hundred thousand clients costs PostgreSQL a
//! trigram-index scan plus a count of every match: tens of milliseconds for broad terms, and
//! far more under concurrency. Here the lowercase `id U+001F name` of every live client sits
//! in one packed buffer, separated by `\n` (which no id or name can contain), and a search is
//! one SIMD substring scan of that buffer (`memchr::memmem`), then a partial sort of the
//! matches. Same semantics as the SQL list: Rust-lowercased, literal, byte order.
//!
//! It is a projection like the tables: each client carries the version it reflects, and an
//! older or repeated update is ignored. It is fed by the inline projection (so a command's
//! own change is searchable before its response), by the background projector's batches, and
//! by its own tail of the global feed ([`SearchIndex::follow`]), which is how a process sees
//! the writes of other processes.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering as AtomicOrdering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use memchr::memmem;

use crate::feed::FeedQuery;
use crate::list::{ClientPage, Cursor, CursorValue, ListItem, ListQuery, SortKey};
use crate::store::{ReadError, ReadStore};

/// A client as the index loads it at start-up: its list row (`None` when deleted) and the
/// version that row reflects.
#[derive(Debug, Clone)]
pub struct IndexRow {
    /// The client.
    pub client_id: String,
    /// The version its read-model rows reflect.
    pub version: u64,
    /// Its list row; `None` when deleted.
    pub row: Option<ListRow>,
}
use crate::view::{ClientRecord, ListRow};

/// Pause of the feed follower after each step that moved.
pub const FOLLOW_PAUSE: Duration = Duration::from_millis(250);

/// Separates entries in the packed buffer; ids and names cannot contain it.
const SEPARATOR: u8 = b'\n';

#[derive(Debug, Clone)]
struct Entry {
    item: ListItem,
    name_key: String,
}

/// One client's text in the buffer, with its entry while it is the client's current one.
#[derive(Debug, Clone)]
struct Slot {
    start: usize,
    end: usize,
    entry: Option<Entry>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The slot of each live client.
    by_id: HashMap<String, usize>,
    /// The version each id ever seen is at (deleted ones included), the idempotence guard.
    versions: HashMap<String, u64>,
    /// `search_text` of every slot, in slot order, each followed by [`SEPARATOR`].
    buffer: Vec<u8>,
    /// Entries in buffer order, so a scan reads them sequentially; a replaced or deleted
    /// client leaves an empty slot until the next compaction.
    slots: Vec<Slot>,
}

impl Inner {
    /// Applies a client's list row at `version` (`None`: deleted) unless the index already
    /// reflects that version or a later one.
    fn apply(&mut self, client_id: &str, version: u64, row: Option<ListRow>) -> bool {
        if self.versions.get(client_id).is_some_and(|v| *v >= version) {
            return false;
        }
        self.versions.insert(client_id.to_owned(), version);
        if let Some(old) = self.by_id.remove(client_id) {
            if let Some(slot) = self.slots.get_mut(old) {
                slot.entry = None;
            }
        }
        if let Some(row) = row {
            let start = self.buffer.len();
            self.buffer.extend_from_slice(row.search_text.as_bytes());
            let end = self.buffer.len();
            self.buffer.push(SEPARATOR);
            self.by_id.insert(row.client_id.clone(), self.slots.len());
            self.slots.push(Slot {
                start,
                end,
                entry: Some(Entry {
                    item: ListItem {
                        client_id: row.client_id,
                        client_name: row.client_name,
                        enabled: row.enabled,
                        client_uri: row.client_uri,
                        grant_types: row.grant_types,
                        created_at: row.created_at,
                        updated_at: row.updated_at,
                    },
                    name_key: row.name_key,
                }),
            });
        }
        self.compact_if_sparse();
        true
    }

    /// Drops empty slots (and their text) once they outnumber live ones.
    fn compact_if_sparse(&mut self) {
        if self.slots.len() < 1024 || self.slots.len() < 2 * self.by_id.len() {
            return;
        }
        let mut buffer = Vec::with_capacity(self.buffer.len() / 2);
        let mut slots = Vec::with_capacity(self.by_id.len());
        for slot in std::mem::take(&mut self.slots) {
            let Some(entry) = slot.entry else {
                continue;
            };
            let start = buffer.len();
            buffer.extend_from_slice(&self.buffer[slot.start..slot.end]);
            let end = buffer.len();
            buffer.push(SEPARATOR);
            self.by_id.insert(entry.item.client_id.clone(), slots.len());
            slots.push(Slot {
                start,
                end,
                entry: Some(entry),
            });
        }
        self.buffer = buffer;
        self.slots = slots;
    }

    /// Calls `visit` with every live entry whose text contains `term` (every live entry
    /// without a term), in buffer order.
    fn for_each_match<'a>(&'a self, term: Option<&str>, mut visit: impl FnMut(&'a Entry)) {
        let Some(term) = term else {
            self.slots
                .iter()
                .filter_map(|s| s.entry.as_ref())
                .for_each(visit);
            return;
        };
        if term.as_bytes().contains(&SEPARATOR) {
            return;
        }
        // Matches come in buffer order, so the slot of each is found by walking forward (a
        // binary search per match cost ~1.5 µs of cache misses: 40 ms for 28,000 matches).
        let mut index = 0;
        let mut last = usize::MAX;
        for offset in memmem::find_iter(&self.buffer, term.as_bytes()) {
            while self.slots.get(index).is_some_and(|s| s.end < offset) {
                index += 1;
            }
            let Some(slot) = self.slots.get(index) else {
                break;
            };
            if index == last || offset < slot.start || offset + term.len() > slot.end {
                continue;
            }
            last = index;
            if let Some(entry) = &slot.entry {
                visit(entry);
            }
        }
    }
}

/// The sort key of an entry under `key`, comparable with a cursor's value.
fn compare(a: &Entry, b: &Entry, key: SortKey) -> Ordering {
    let primary = match key {
        SortKey::ClientId => Ordering::Equal,
        SortKey::ClientName => a.name_key.as_bytes().cmp(b.name_key.as_bytes()),
        SortKey::CreatedAt => a.item.created_at.cmp(&b.item.created_at),
        SortKey::UpdatedAt => a.item.updated_at.cmp(&b.item.updated_at),
    };
    primary.then_with(|| a.item.client_id.as_bytes().cmp(b.item.client_id.as_bytes()))
}

/// Whether `entry` comes strictly after `cursor` in the order of `query`.
fn after(entry: &Entry, cursor: &Cursor, query: &ListQuery) -> bool {
    let by_id = entry
        .item
        .client_id
        .as_bytes()
        .cmp(cursor.client_id.as_bytes());
    let time = |t: &DateTime<Utc>, c: &DateTime<Utc>| t.cmp(c).then(by_id);
    let order = match (&cursor.value, query.sort.key) {
        (CursorValue::Text(text), _) => entry.name_key.as_bytes().cmp(text.as_bytes()).then(by_id),
        (CursorValue::Time(c), SortKey::UpdatedAt) => time(&entry.item.updated_at, c),
        (CursorValue::Time(c), _) => time(&entry.item.created_at, c),
        (CursorValue::None, _) => by_id,
    };
    if query.sort.descending {
        order == Ordering::Less
    } else {
        order == Ordering::Greater
    }
}

/// The in-memory search projection of the client list.
#[derive(Debug, Default)]
pub struct SearchIndex {
    inner: RwLock<Inner>,
    /// Feed position up to which the index has followed the feed.
    position: AtomicI64,
    ready: AtomicBool,
}

impl SearchIndex {
    /// An empty index, not ready (searches fall back to SQL) until [`Self::load`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the index is loaded and may answer searches.
    pub fn is_ready(&self) -> bool {
        self.ready.load(AtomicOrdering::Acquire)
    }

    /// Loads every client from the read model (one snapshot) and marks the index ready.
    ///
    /// # Errors
    /// [`ReadError`] from the database.
    pub async fn load(&self, store: &dyn ReadStore) -> Result<usize, ReadError> {
        let (rows, position) = store.index_rows().await?;
        let count = rows.len();
        if let Ok(mut inner) = self.inner.write() {
            for row in rows {
                inner.apply(&row.client_id, row.version, row.row);
            }
        }
        self.position.fetch_max(position, AtomicOrdering::AcqRel);
        self.ready.store(true, AtomicOrdering::Release);
        Ok(count)
    }

    /// Applies records (each only if newer than what the index has).
    pub fn apply_all(&self, records: &[ClientRecord]) {
        if let Ok(mut inner) = self.inner.write() {
            for record in records {
                let row = (!record.deleted).then(|| ListRow::from(&record.view));
                inner.apply(&record.view.client_id, record.view.version, row);
            }
        }
    }

    /// Applies one record.
    pub fn apply(&self, record: &ClientRecord) {
        self.apply_all(std::slice::from_ref(record));
    }

    /// Live clients in the index.
    pub fn len(&self) -> usize {
        self.inner.read().map_or(0, |inner| inner.by_id.len())
    }

    /// Whether the index holds no client.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One page of the list, as [`ReadStore::list`] would answer it: one scan counts the
    /// matches and keeps the first `limit + 1` after the cursor in a small sorted buffer.
    pub fn search(&self, query: &ListQuery) -> ClientPage {
        let Ok(inner) = self.inner.read() else {
            return ClientPage::from_rows(Vec::new(), 0, query);
        };
        let key = query.sort.key;
        let order = |a: &Entry, b: &Entry| {
            let order = compare(a, b, key);
            if query.sort.descending {
                order.reverse()
            } else {
                order
            }
        };
        let wanted = usize::try_from(query.limit)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let mut total = 0u64;
        let mut top: Vec<&Entry> = Vec::with_capacity(wanted + 1);
        inner.for_each_match(query.search.as_deref(), |entry| {
            if query
                .enabled
                .is_some_and(|enabled| entry.item.enabled != enabled)
            {
                return;
            }
            total += 1;
            if query
                .after
                .as_ref()
                .is_some_and(|cursor| !after(entry, cursor, query))
            {
                return;
            }
            if top.len() == wanted
                && top
                    .last()
                    .is_some_and(|last| order(entry, last) != Ordering::Less)
            {
                return;
            }
            let at = top.partition_point(|kept| order(kept, entry) == Ordering::Less);
            top.insert(at, entry);
            top.truncate(wanted);
        });
        let items = top.into_iter().map(|e| e.item.clone()).collect();
        ClientPage::from_rows(items, total, query)
    }

    /// Follows the global feed for ever: whenever events arrive after the index's position,
    /// re-reads the read-model rows of their clients and applies them. Only moves past an
    /// event once the read model reflects it (another process may not have projected it yet).
    pub async fn follow(self: Arc<Self>, store: Arc<dyn ReadStore>) {
        loop {
            match self.follow_once(store.as_ref()).await {
                // This process's own writes are already indexed (inline); the follower is for
                // other processes' writes, which may wait a moment. Pausing also spares
                // PostgreSQL the feed barrier after every single commit.
                Ok(true) => tokio::time::sleep(FOLLOW_PAUSE).await,
                Ok(false) => store.wait_for_events(Duration::from_secs(1)).await,
                Err(error) => {
                    tracing::warn!(%error, "search index could not follow the feed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One step of [`Self::follow`]; true when it moved.
    ///
    /// # Errors
    /// [`ReadError`] from the database.
    pub async fn follow_once(&self, store: &dyn ReadStore) -> Result<bool, ReadError> {
        let after = self.position.load(AtomicOrdering::Acquire);
        let query = FeedQuery {
            after,
            limit: 1000,
            ..FeedQuery::default()
        };
        let page = store.feed(&query).await?;
        if page.next_after <= after {
            return Ok(false);
        }
        let mut reached = page.next_after;
        let mut wanted: HashMap<String, (u64, i64)> = HashMap::new();
        for event in &page.events {
            let known = self
                .inner
                .read()
                .map(|inner| {
                    inner
                        .versions
                        .get(&event.aggregate_id)
                        .copied()
                        .unwrap_or(0)
                })
                .unwrap_or(0);
            if event.sequence > known {
                let slot = wanted
                    .entry(event.aggregate_id.clone())
                    .or_insert((0, event.position));
                slot.0 = slot.0.max(event.sequence);
            }
        }
        for (client_id, (sequence, first_position)) in wanted {
            match store.client_record(&client_id).await? {
                Some(record) if record.view.version >= sequence => self.apply(&record),
                // Not projected yet: come back to it.
                _ => reached = reached.min(first_position - 1),
            }
        }
        self.position.fetch_max(reached, AtomicOrdering::AcqRel);
        Ok(reached > after)
    }
}
