//! Clients as code: the document format (`format`), reading it within bounds with every error
//! at once (`read`), its JSON Schema (`schema`); the plan and apply engine builds on them.

mod bounded;
pub mod format;
pub mod read;
pub mod schema;

pub use format::{render, ClientsDocument, DocumentClient, DocumentFormat};
pub use read::{expansion_limit, parse, parse_unless, read_value, CheckedDocument};
pub use schema::json_schema;
