//! The read side of the client registry: the client list and client detail read models, how
//! stored events are applied to them (inline after each command, and by a background projector
//! tailing the global feed), the queries that read them (search, filter, sort, keyset
//! pagination), the global feed itself, and the audit views (history, as-of).
//!
//! Projections write real SQL tables. Each client's rows record the sequence of the last event
//! applied, and applying is "catch up from there, reading the client's stream": so applying
//! twice, concurrently, or after a crash is harmless. Never depends on the write side
//! (`registry-commands`); it reads the `events` table with its own SQL.
#![cfg_attr(test, allow(clippy::restriction, clippy::too_many_lines))]

pub mod consistency;
pub mod export;
pub mod feed;
pub mod history;
pub mod list;
pub mod projector;
pub mod seal;
pub mod search;
pub mod snapshot;
pub mod stop;
pub mod store;
pub mod stored;
pub mod view;

pub use feed::{event_data, FeedEntry, FeedMark, FeedPage, FeedQuery, MarkPage};
pub use history::{as_of, history, AsOf, FieldChange, HistoryEntry};
pub use list::{ClientPage, ListItem, ListQuery, Sort, SortKey};
pub use projector::Projector;
pub use search::{FeedWatcher, FollowStep, SearchIndex};
pub use store::{
    Batch, ParkedEvent, PostgresReadStore, ProjectorStatus, ReadError, ReadStore, RetryReport,
    SqliteReadStore,
};
pub use stored::{StoredEvent, UnreadableEvent};
pub use view::{ClientRecord, ClientView, SecretView};
