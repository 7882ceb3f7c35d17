//! Exports of the client list and of a client's history, to Excel (xlsx) and PDF.
//!
//! Rows stream from the database in batches through a bounded channel into a renderer on a
//! blocking thread: the async runtime never renders, and the full list is never held as rows
//! (the xlsx writer spills rows to a temporary file; the PDF keeps only its page operations).

mod pdf;
mod xlsx;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::history::HistoryEntry;
use crate::list::{ListItem, ListQuery};
pub use crate::snapshot::{Chunk, ViewChunk, EXPORT_BATCH};
use crate::store::{ReadError, ReadStore};

/// The two formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Office Open XML workbook.
    Xlsx,
    /// PDF, A4 landscape.
    Pdf,
}

impl Format {
    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Xlsx => "xlsx",
            Self::Pdf => "pdf",
        }
    }

    /// Media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Self::Pdf => "application/pdf",
        }
    }
}

/// One cell of an exported table.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A boolean (a real Excel boolean; "yes"/"no" in PDF).
    Bool(bool),
    /// A time (a real Excel date-time; RFC 3339 in PDF).
    Time(DateTime<Utc>),
    /// An integer.
    Int(i64),
    /// Nothing.
    Empty,
}

impl Cell {
    /// The cell as text, as the PDF prints it.
    pub fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Bool(true) => "yes".to_owned(),
            Self::Bool(false) => "no".to_owned(),
            Self::Time(time) => time.format("%Y-%m-%d %H:%M:%S").to_string(),
            Self::Int(n) => n.to_string(),
            Self::Empty => String::new(),
        }
    }
}

/// A column: its title, its Excel width (in characters) and its share of the PDF width.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header text.
    pub title: &'static str,
    /// Excel column width, in characters.
    pub width: f64,
    /// Share of the PDF table width.
    pub share: f32,
}

/// What a document says about itself.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Title (document title, PDF heading).
    pub title: String,
    /// Worksheet name.
    pub sheet: &'static str,
    /// The filter, in words.
    pub filter: String,
    /// When it was generated.
    pub generated_at: DateTime<Utc>,
    /// The feed position the content reflects.
    pub position: i64,
    /// The latest signed head of the sealed log when it was generated: tree size and root
    /// (hex). Events past its size were not sealed yet.
    pub sealed: Option<(u64, String)>,
    /// The columns.
    pub columns: &'static [Column],
}

impl Meta {
    /// The line under the title: generation time, position, row count.
    pub fn summary(&self, rows: u64) -> String {
        let sealed = self
            .sealed
            .as_ref()
            .map_or_else(String::new, |(size, root)| {
                format!(
                    " · sealed log head: {size} events, root {}…",
                    root.get(..16).unwrap_or(root)
                )
            });
        format!(
            "Generated {} · reflects feed position {} · {rows} rows{sealed}",
            self.generated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.position
        )
    }

    /// The document's keywords: the feed position and the whole signed root.
    pub fn keywords(&self) -> String {
        match &self.sealed {
            Some((size, root)) => format!(
                "feed position {}; sealed log tree size {size} root {root}",
                self.position
            ),
            None => format!("feed position {}", self.position),
        }
    }
}

/// Renders rows into a document.
pub trait TableWriter {
    /// Appends one row (as many cells as columns).
    ///
    /// # Errors
    /// When the renderer fails.
    fn row(&mut self, cells: &[Cell]) -> Result<(), ExportError>;

    /// Finishes the document.
    ///
    /// # Errors
    /// When the renderer fails.
    fn finish(self: Box<Self>, rows: u64) -> Result<Vec<u8>, ExportError>;
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the rows failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The xlsx writer failed.
    #[error("xlsx rendering failed: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    /// The PDF writer failed.
    #[error("pdf rendering failed: {0}")]
    Pdf(String),
    /// The rendering thread was lost.
    #[error("export rendering task failed")]
    Task,
}

/// A finished export.
#[derive(Debug, Clone)]
pub struct Export {
    /// The file.
    pub bytes: Vec<u8>,
    /// The feed position it reflects.
    pub position: i64,
    /// Rows exported.
    pub rows: u64,
}

/// The list columns: the guide's list screen, plus grant types and times.
pub const CLIENT_COLUMNS: &[Column] = &[
    Column {
        title: "Client ID",
        width: 32.0,
        share: 0.20,
    },
    Column {
        title: "Name",
        width: 36.0,
        share: 0.24,
    },
    Column {
        title: "Enabled",
        width: 10.0,
        share: 0.07,
    },
    Column {
        title: "URI",
        width: 40.0,
        share: 0.25,
    },
    Column {
        title: "Created",
        width: 20.0,
        share: 0.12,
    },
    Column {
        title: "Updated",
        width: 20.0,
        share: 0.12,
    },
];

/// The history columns: one row per changed field.
pub const HISTORY_COLUMNS: &[Column] = &[
    Column {
        title: "Position",
        width: 10.0,
        share: 0.07,
    },
    Column {
        title: "Sequence",
        width: 10.0,
        share: 0.06,
    },
    Column {
        title: "Time",
        width: 20.0,
        share: 0.13,
    },
    Column {
        title: "Actor",
        width: 16.0,
        share: 0.09,
    },
    Column {
        title: "Event",
        width: 20.0,
        share: 0.13,
    },
    Column {
        title: "Field",
        width: 24.0,
        share: 0.14,
    },
    Column {
        title: "Before",
        width: 40.0,
        share: 0.19,
    },
    Column {
        title: "After",
        width: 40.0,
        share: 0.19,
    },
];

fn writer(format: Format, meta: Meta) -> Result<Box<dyn TableWriter + Send>, ExportError> {
    Ok(match format {
        Format::Xlsx => Box::new(xlsx::XlsxTable::new(meta)?),
        Format::Pdf => Box::new(pdf::PdfTable::new(meta)?),
    })
}

fn client_cells(item: ListItem) -> [Cell; 6] {
    [
        Cell::Text(item.client_id),
        Cell::Text(item.client_name),
        Cell::Bool(item.enabled),
        item.client_uri.map_or(Cell::Empty, Cell::Text),
        Cell::Time(item.created_at),
        Cell::Time(item.updated_at),
    ]
}

/// The filter of a list query, in words.
pub fn describe(query: &ListQuery) -> String {
    let search = query
        .search
        .as_ref()
        .map_or("any".to_owned(), |s| format!("\"{s}\""));
    let enabled = query.enabled.map_or("any".to_owned(), |e| e.to_string());
    let sort = format!(
        "{}{}",
        if query.sort.descending { "-" } else { "" },
        query.sort.key.name()
    );
    format!("search: {search} · enabled: {enabled} · sort: {sort}")
}

/// Exports every client matching `query` (its sort, not its page), from one consistent
/// snapshot of the read model. `hold` is kept until rendering ends, even if the caller goes
/// away first (a place in a bound on concurrent exports).
///
/// # Errors
/// [`ExportError`] when reading or rendering fails.
pub async fn clients(
    store: &dyn ReadStore,
    query: &ListQuery,
    format: Format,
    generated_at: DateTime<Utc>,
    sealed: Option<(u64, String)>,
    hold: impl Send + 'static,
) -> Result<Export, ExportError> {
    let (sender, mut receiver) = mpsc::channel::<Chunk>(2);
    let filter = describe(query);
    let span = tracing::Span::current();
    let render = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let _hold = hold;
        let Some(Chunk::Start { position, .. }) = receiver.blocking_recv() else {
            return Ok(None);
        };
        let meta = Meta {
            title: "OAuth clients".to_owned(),
            sheet: "Clients",
            filter,
            generated_at,
            position,
            sealed,
            columns: CLIENT_COLUMNS,
        };
        let mut table = writer(format, meta)?;
        let mut rows = 0u64;
        while let Some(chunk) = receiver.blocking_recv() {
            if let Chunk::Rows(items) = chunk {
                for item in items {
                    table.row(&client_cells(item))?;
                    rows += 1;
                }
            }
        }
        Ok::<_, ExportError>(Some((table.finish(rows)?, position, rows)))
    });
    let read = store.export_list(query, sender).await;
    let rendered = render.await.map_err(|_| ExportError::Task)?;
    read?;
    let (bytes, position, rows) = rendered?.ok_or(ExportError::Task)?;
    Ok(Export {
        bytes,
        position,
        rows,
    })
}

fn value_text(value: &Value) -> Cell {
    match value {
        Value::Null => Cell::Empty,
        Value::String(s) => Cell::Text(s.clone()),
        Value::Array(items) => Cell::Text(
            items
                .iter()
                .map(|item| match item {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        ),
        other => Cell::Text(other.to_string()),
    }
}

/// Exports a client's history: one row per changed field (an event that changed none gets one
/// row). `hold` is kept until rendering ends (see [`clients`]).
///
/// # Errors
/// [`ExportError`] when rendering fails.
pub async fn history(
    client_id: &str,
    entries: Vec<HistoryEntry>,
    format: Format,
    generated_at: DateTime<Utc>,
    sealed: Option<(u64, String)>,
    hold: impl Send + 'static,
) -> Result<Export, ExportError> {
    let position = entries.last().map_or(0, |e| e.event.position);
    let meta = Meta {
        title: format!("History of client {client_id}"),
        sheet: "History",
        filter: format!("client_id: {client_id}"),
        generated_at,
        position,
        sealed,
        columns: HISTORY_COLUMNS,
    };
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let _hold = hold;
        let mut table = writer(format, meta)?;
        let mut rows = 0u64;
        for entry in entries {
            let event = &entry.event;
            let lead = [
                Cell::Int(event.position),
                Cell::Int(i64::try_from(event.sequence).unwrap_or(i64::MAX)),
                Cell::Time(event.metadata.recorded_at),
                Cell::Text(event.metadata.actor.clone()),
                Cell::Text(event.payload.type_name().to_owned()),
            ];
            if entry.changes.is_empty() {
                let mut cells = lead.to_vec();
                cells.extend([Cell::Empty, Cell::Empty, Cell::Empty]);
                table.row(&cells)?;
                rows += 1;
            }
            for change in &entry.changes {
                let mut cells = lead.to_vec();
                cells.extend([
                    Cell::Text(change.field.clone()),
                    value_text(&change.before),
                    value_text(&change.after),
                ]);
                table.row(&cells)?;
                rows += 1;
            }
        }
        Ok(Export {
            bytes: table.finish(rows)?,
            position,
            rows,
        })
    })
    .await
    .map_err(|_| ExportError::Task)?
}
