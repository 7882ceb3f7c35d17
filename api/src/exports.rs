//! Exports: the client list (as the list route filters and sorts it, every page) and a
//! client's history, to Excel and PDF.

use axum::extract::State;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use registry_projections::export::{self, Export, ExportError, Format};
use registry_projections::{history, ListQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{AuditRead, Authorized, ClientsRead};
use crate::error::ApiError;
pub use crate::export_gate::{ExportGate, ExportTurn, Paced, Stopped};
use crate::extract::{now, AppPath, AppQuery};
use crate::state::AppState;

/// The header carrying the feed position an export reflects.
pub const FEED_POSITION: &str = "x-feed-position";

/// The export routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/clients/export.xlsx", get(export_clients_xlsx))
        .route("/clients/export.pdf", get(export_clients_pdf))
        .route(
            "/clients/{client_id}/history.xlsx",
            get(export_history_xlsx),
        )
        .route("/clients/{client_id}/history.pdf", get(export_history_pdf))
        .layer(axum::middleware::from_fn(generic_media_type))
}

/// Whether an `Accept` header names `media_type` itself (not through `*/*`), with a weight
/// above 0.
fn names(accept: &str, media_type: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let named = parts
            .next()
            .is_some_and(|r| r.trim().eq_ignore_ascii_case(media_type));
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        named && !refused
    })
}

/// Content negotiation for generated clients, which know JSON, `text/*` and
/// `application/octet-stream` bodies only (openapi-python-client drops any other): a caller
/// that asks for `application/octet-stream` (a workbook or PDF) or `text/yaml` (the YAML
/// document) and not for the file's own type gets the same bytes under the type it asked for.
pub async fn generic_media_type(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut response = next.run(request).await;
    if !response.status().is_success() {
        return response;
    }
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("accept"));
    let own = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_owned();
    let generic = if own == "application/yaml" {
        "text/yaml; charset=utf-8"
    } else {
        "application/octet-stream"
    };
    let generic_type = generic.split(';').next().unwrap_or_default();
    if names(&accept, generic_type) && !names(&accept, &own) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(generic));
    }
    response
}

/// Query of the list exports: the list's filters and sort (every matching client is
/// exported, so no `limit` or `cursor`).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// Case-insensitive substring of the client id or name, matched literally.
    pub search: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) clients.
    pub enabled: Option<bool>,
    /// `client_id` (default), `client_name`, `created_at` or `updated_at`; `-` for descending.
    pub sort: Option<String>,
}

/// A list export asked for by a caller who may read clients (checked first), with the list's
/// filters: what every list export route (xlsx, pdf, yaml, json) starts with.
#[allow(missing_debug_implementations)]
pub struct ListExport {
    /// The service.
    pub state: AppState,
    /// The filters and sort.
    pub params: ExportParams,
}

impl axum::extract::FromRequestParts<AppState> for ListExport {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        Authorized::<ClientsRead>::from_request_parts(parts, state).await?;
        let AppQuery(params) = AppQuery::from_request_parts(parts, state).await?;
        let state = state.clone();
        Ok(Self { state, params })
    }
}

impl ExportParams {
    /// The list query of these filters (every matching client: no page).
    ///
    /// # Errors
    /// A 400 naming the parameter.
    pub fn query(&self) -> Result<ListQuery, ApiError> {
        let (search, sort) = (self.search.as_deref(), self.sort.as_deref());
        ListQuery::parse(search, self.enabled, sort, None, None).map_err(ApiError::invalid_query)
    }
}

/// Reads every client `query` matches, whole, from one snapshot of the read model, in the
/// list's order, handing each to `each`; answers the feed position the snapshot reflects.
/// Takes a turn at the export gate for as long as it reads.
///
/// # Errors
/// 503 when the export gate is full; the read model's failure.
pub async fn each_view(
    state: &AppState,
    query: ListQuery,
    mut each: impl FnMut(registry_projections::ClientView),
) -> Result<i64, ApiError> {
    use registry_projections::export::ViewChunk;
    let _turn = state.exports.turn().await?;
    let (sink, mut chunks) = tokio::sync::mpsc::channel(2);
    let reads = state.reads.clone();
    let reading = tokio::spawn(async move { reads.export_views(&query, sink).await });
    let mut position = 0;
    while let Some(chunk) = chunks.recv().await {
        match chunk {
            ViewChunk::Start { position: at, .. } => position = at,
            ViewChunk::Views(views) => views.into_iter().for_each(&mut each),
        }
    }
    reading.await.map_err(|e| ApiError::Internal(e.into()))??;
    Ok(position)
}

impl From<ExportError> for ApiError {
    fn from(error: ExportError) -> Self {
        match error {
            ExportError::Read(e) => e.into(),
            other => Self::Internal(other.into()),
        }
    }
}

fn file_response(export: Export, format: Format, stem: &str) -> Response {
    let filename = format!("{stem}-{}.{}", now().format("%Y-%m-%d"), format.extension());
    let mut response = export.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        HeaderName::from_static(FEED_POSITION),
        export.position.into(),
    );
    headers.insert(HeaderName::from_static("x-export-rows"), export.rows.into());
    response
}

/// The latest signed head of the sealed log (size, root), which an export names.
async fn sealed_head(state: &AppState) -> Result<Option<(u64, String)>, ApiError> {
    Ok(state
        .sealer
        .db()
        .head(None)
        .await?
        .map(|head| (head.tree_size, head.root_hash)))
}

/// The clients matching `params` as a file in `format` (the API's and the screens' exports).
///
/// # Errors
/// Bad parameters, a full export queue, the database.
pub async fn export_clients(
    state: AppState,
    params: ExportParams,
    format: Format,
) -> Result<Response, ApiError> {
    let query = params.query()?;
    let turn = state
        .exports
        .turn()
        .await?
        .timed(state.metrics.export_duration(format.extension()));
    let sealed = sealed_head(&state).await?;
    let export = export::clients(state.reads.as_ref(), &query, format, now(), sealed, turn).await?;
    Ok(file_response(export, format, "clients"))
}

/// The history of `client_id` as a file in `format`.
///
/// # Errors
/// An unknown client, a full export queue, the database.
pub async fn export_history(
    state: AppState,
    client_id: String,
    format: Format,
) -> Result<Response, ApiError> {
    let turn = state
        .exports
        .turn()
        .await?
        .timed(state.metrics.export_duration(format.extension()));
    let events = state.reads.client_events(&client_id).await?;
    if events.is_empty() {
        return Err(ApiError::ClientNotFound);
    }
    let entries = history(events).map_err(|e| ApiError::Internal(e.into()))?;
    let sealed = sealed_head(&state).await?;
    let export = export::history(&client_id, entries, format, now(), sealed, turn).await?;
    Ok(file_response(
        export,
        format,
        &format!("client-{client_id}-history"),
    ))
}

// Documented as `type: string, format: binary` so that generated clients hand it over as
// bytes, not as an array of integers (utoipa's default for Vec<u8>).
/// The file's bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct BinaryFile(#[allow(dead_code)] Vec<u8>);

/// Export the client list (every client matching the filter, in the list's sort) to Excel.
#[utoipa::path(
    get, path = "/api/v1/clients/export.xlsx", tag = "exports",
    params(ExportParams),
    responses(
        (status = 200, description = "The workbook; X-Feed-Position says which feed position it reflects",
         content(
             (inline(BinaryFile) = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
             (inline(BinaryFile) = "application/octet-stream"))),
        crate::responses::ListExportRefusals,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn export_clients_xlsx(
    ListExport { state, params }: ListExport,
) -> Result<Response, ApiError> {
    export_clients(state, params, Format::Xlsx).await
}

/// Export the client list (every client matching the filter, in the list's sort) to PDF.
#[utoipa::path(
    get, path = "/api/v1/clients/export.pdf", tag = "exports",
    params(ExportParams),
    responses(
        (status = 200, description = "The document; X-Feed-Position says which feed position it reflects",
         content(
             (inline(BinaryFile) = "application/pdf"),
             (inline(BinaryFile) = "application/octet-stream"))),
        crate::responses::ListExportRefusals,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn export_clients_pdf(
    ListExport { state, params }: ListExport,
) -> Result<Response, ApiError> {
    export_clients(state, params, Format::Pdf).await
}

/// Export a client's history (one row per changed field) to Excel.
#[utoipa::path(
    get, path = "/api/v1/clients/{client_id}/history.xlsx", tag = "exports",
    params(crate::responses::ClientPath),
    responses(
        (status = 200, description = "The workbook",
         content(
             (inline(BinaryFile) = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
             (inline(BinaryFile) = "application/octet-stream"))),
        crate::responses::HistoryExportRefusals,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(client_id = %client_id))]
pub async fn export_history_xlsx(
    _caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
) -> Result<Response, ApiError> {
    export_history(state, client_id, Format::Xlsx).await
}

/// Export a client's history (one row per changed field) to PDF.
#[utoipa::path(
    get, path = "/api/v1/clients/{client_id}/history.pdf", tag = "exports",
    params(crate::responses::ClientPath),
    responses(
        (status = 200, description = "The document", content(
             (inline(BinaryFile) = "application/pdf"),
             (inline(BinaryFile) = "application/octet-stream"))),
        crate::responses::HistoryExportRefusals,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(client_id = %client_id))]
pub async fn export_history_pdf(
    _caller: Authorized<AuditRead>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
) -> Result<Response, ApiError> {
    export_history(state, client_id, Format::Pdf).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Serves one route streaming 64 KiB chunks without end, each export holding a turn of
    /// `gate`; returns the address.
    async fn endless(gate: Arc<ExportGate>) -> std::net::SocketAddr {
        let route = move || {
            let gate = gate.clone();
            async move {
                let Ok(turn) = gate.turn().await else {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
                };
                let (sender, body) = gate.paced_body();
                tokio::spawn(async move {
                    let _turn = turn;
                    while sender.send("x".repeat(64 * 1024)).await.is_ok() {}
                });
                body.into_response()
            }
        };
        let app = Router::new().route("/export", get(route));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        address
    }

    async fn ask(address: std::net::SocketAddr) -> tokio::net::TcpStream {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /export HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut start = [0u8; 12];
        stream.read_exact(&mut start).await.unwrap();
        assert_eq!(&start, b"HTTP/1.1 200");
        stream
    }

    async fn free_within(gate: &ExportGate, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if gate.running() == 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_stops_reading_frees_its_export_turn() {
        let gate = Arc::new(
            ExportGate::new(1, 0)
                .with_stream_limits(Duration::from_millis(300), Duration::from_secs(600)),
        );
        let address = endless(gate.clone()).await;
        // Reads the status line, then nothing: the socket buffers fill, the producer waits.
        let stalled = ask(address).await;
        assert_eq!(gate.running(), 1);
        assert!(
            free_within(&gate, Duration::from_secs(10)).await,
            "the turn is freed"
        );
        // The one place is free again for the next export.
        let mut next = ask(address).await;
        let mut chunk = vec![0u8; 256 * 1024];
        next.read_exact(&mut chunk).await.unwrap();
        drop(stalled);
        // A reader that goes away frees it too.
        drop(next);
        assert!(free_within(&gate, Duration::from_secs(10)).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_keeps_reading_is_cut_only_by_the_total_limit() {
        let gate = Arc::new(
            ExportGate::new(1, 0)
                .with_stream_limits(Duration::from_millis(300), Duration::from_secs(2)),
        );
        let address = endless(gate.clone()).await;
        let mut reader = ask(address).await;
        let mut buffer = vec![0u8; 64 * 1024];
        let started = tokio::time::Instant::now();
        let mut read = 0usize;
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => read += n,
            }
        }
        // Past the idle limit many times over, still served; ended by the total limit.
        assert!(
            started.elapsed() >= Duration::from_millis(1500),
            "{:?}",
            started.elapsed()
        );
        assert!(read > 4 * 1024 * 1024, "{read}");
        assert!(free_within(&gate, Duration::from_secs(5)).await);
    }
}
