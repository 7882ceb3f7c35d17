//! What the read store hands out from one snapshot of the read models: the rows the search
//! index loads, and the chunks an export streams. The vocabulary shared by the store and its
//! readers (`search`, `export`), so that neither side imports the other.

use crate::list::ListItem;
use crate::view::ListRow;

/// Rows per batch an export reads from the database.
pub const EXPORT_BATCH: u32 = 1000;

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
/// What the index loads from the read model, from one snapshot.
#[derive(Debug, Clone, Default)]
pub struct IndexSnapshot {
    /// Every client ever registered.
    pub rows: Vec<IndexRow>,
    /// The feed position up to which the rows reflect every event.
    pub position: i64,
    /// The read model's generation.
    pub generation: i64,
}

/// What the database side sends the renderer.
#[derive(Debug)]
pub enum Chunk {
    /// First: the feed position the snapshot reflects and the number of rows to come.
    Start {
        /// Feed position.
        position: i64,
        /// Rows to come.
        total: u64,
    },
    /// A batch of rows, in order.
    Rows(Vec<ListItem>),
}

/// What [`crate::store::ExportReads::export_views`] sends: the position and count, then whole clients
/// in the list's order.
#[derive(Debug)]
pub enum ViewChunk {
    /// First: the feed position the snapshot reflects and the number of clients to come.
    Start {
        /// Feed position.
        position: i64,
        /// Clients to come.
        total: u64,
    },
    /// A batch of clients, in order.
    Views(Vec<crate::view::ClientView>),
}
