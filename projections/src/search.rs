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

/// Separates entries in the packed buffer; ids and names cannot contain it.
const SEPARATOR: u8 = b'\n';

#[derive(Debug, Clone)]
struct Entry {
    item: ListItem,
    name_key: String,
    slot: usize,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    start: usize,
    end: usize,
    live: bool,
}

#[derive(Debug, Default)]
struct Inner {
    /// Live clients by id.
    entries: HashMap<String, Entry>,
    /// The version each id ever seen is at (deleted ones included), the idempotence guard.
    versions: HashMap<String, u64>,
    /// `search_text` of entries, in slot order, each followed by [`SEPARATOR`].
    buffer: Vec<u8>,
    /// Where each entry's text is; a replaced or deleted entry leaves a dead slot.
    slots: Vec<Slot>,
    /// The id of each slot's entry.
    slot_ids: Vec<String>,
}

impl Inner {
    fn push_slot(&mut self, client_id: &str, search_text: &str) -> usize {
        let start = self.buffer.len();
        self.buffer.extend_from_slice(search_text.as_bytes());
        let end = self.buffer.len();
        self.buffer.push(SEPARATOR);
        self.slots.push(Slot {
            start,
            end,
            live: true,
        });
        self.slot_ids.push(client_id.to_owned());
        self.slots.len() - 1
    }

    fn kill(&mut self, client_id: &str) {
        if let Some(entry) = self.entries.remove(client_id) {
            if let Some(slot) = self.slots.get_mut(entry.slot) {
                slot.live = false;
            }
        }
    }

    /// Applies a client's list row at `version` (`None`: deleted) unless the index already
    /// reflects that version or a later one.
    fn apply(&mut self, client_id: &str, version: u64, row: Option<ListRow>) -> bool {
        if self.versions.get(client_id).is_some_and(|v| *v >= version) {
            return false;
        }
        self.versions.insert(client_id.to_owned(), version);
        self.kill(client_id);
        if let Some(row) = row {
            let slot = self.push_slot(&row.client_id, &row.search_text);
            let entry = Entry {
                item: ListItem {
                    client_id: row.client_id.clone(),
                    client_name: row.client_name,
                    enabled: row.enabled,
                    client_uri: row.client_uri,
                    grant_types: row.grant_types,
                    created_at: row.created_at,
                    updated_at: row.updated_at,
                },
                name_key: row.name_key,
                slot,
            };
            self.entries.insert(row.client_id, entry);
        }
        self.compact_if_sparse();
        true
    }

    /// Rebuilds the buffer when dead slots outnumber live ones.
    fn compact_if_sparse(&mut self) {
        if self.slots.len() < 1024 || self.slots.len() < 2 * self.entries.len() {
            return;
        }
        let mut buffer = Vec::with_capacity(self.buffer.len() / 2);
        let mut slots = Vec::with_capacity(self.entries.len());
        let mut slot_ids = Vec::with_capacity(self.entries.len());
        for (id, entry) in &mut self.entries {
            let old = self.slots[entry.slot];
            let start = buffer.len();
            buffer.extend_from_slice(&self.buffer[old.start..old.end]);
            let end = buffer.len();
            buffer.push(SEPARATOR);
            entry.slot = slots.len();
            slots.push(Slot {
                start,
                end,
                live: true,
            });
            slot_ids.push(id.clone());
        }
        self.buffer = buffer;
        self.slots = slots;
        self.slot_ids = slot_ids;
    }

    /// The live entries whose text contains `term` (all of them without a term).
    fn matching(&self, term: Option<&str>) -> Vec<&Entry> {
        let Some(term) = term else {
            return self.entries.values().collect();
        };
        if term.as_bytes().contains(&SEPARATOR) {
            return Vec::new();
        }
        let mut found = Vec::new();
        let mut last_slot = usize::MAX;
        for offset in memmem::find_iter(&self.buffer, term.as_bytes()) {
            let slot_index = self
                .slots
                .partition_point(|s| s.start <= offset)
                .saturating_sub(1);
            let Some(slot) = self.slots.get(slot_index) else {
                continue;
            };
            if slot_index == last_slot || !slot.live || offset + term.len() > slot.end {
                continue;
            }
            last_slot = slot_index;
            if let Some(entry) = self
                .slot_ids
                .get(slot_index)
                .and_then(|id| self.entries.get(id))
            {
                found.push(entry);
            }
        }
        found
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
        self.inner.read().map_or(0, |inner| inner.entries.len())
    }

    /// Whether the index holds no client.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One page of the list, as [`ReadStore::list`] would answer it.
    pub fn search(&self, query: &ListQuery) -> ClientPage {
        let Ok(inner) = self.inner.read() else {
            return ClientPage::from_rows(Vec::new(), 0, query);
        };
        let mut matches: Vec<&Entry> = inner
            .matching(query.search.as_deref())
            .into_iter()
            .filter(|e| {
                query
                    .enabled
                    .is_none_or(|enabled| e.item.enabled == enabled)
            })
            .collect();
        let total = u64::try_from(matches.len()).unwrap_or(u64::MAX);
        if let Some(cursor) = &query.after {
            matches.retain(|e| after(e, cursor, query));
        }
        let key = query.sort.key;
        let order = |a: &&Entry, b: &&Entry| {
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
        if matches.len() > wanted {
            matches.select_nth_unstable_by(wanted - 1, order);
            matches.truncate(wanted);
        }
        matches.sort_unstable_by(order);
        let items = matches.into_iter().map(|e| e.item.clone()).collect();
        ClientPage::from_rows(items, total, query)
    }

    /// Follows the global feed for ever: whenever events arrive after the index's position,
    /// re-reads the read-model rows of their clients and applies them. Only moves past an
    /// event once the read model reflects it (another process may not have projected it yet).
    pub async fn follow(self: Arc<Self>, store: Arc<dyn ReadStore>) {
        loop {
            match self.follow_once(store.as_ref()).await {
                Ok(true) => continue,
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
