//! Clients as code: the document format and its JSON Schema, the export that writes a
//! document which applies back to the same state, and (in `plan`) plan and apply.

pub mod plan;

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use registry_projections::ListQuery;

use crate::auth::{Authorized, ClientsRead};
use crate::error::ApiError;
use crate::exports::{ExportParams, ListExport};
use crate::extract::{DOCUMENT_LIMIT, PLAN_LIMIT};
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use registry_commands::documents::{self, ClientsDocument, DocumentClient, DocumentFormat};

/// The document routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/clients/schema.json", get(schema))
        .route(
            "/clients/export.yaml",
            get(export_yaml).layer(axum::middleware::from_fn(
                crate::exports::generic_media_type,
            )),
        )
        .route("/clients/export.json", get(export_json))
        .route(
            "/clients/plan",
            post(plan::plan).layer(DefaultBodyLimit::max(DOCUMENT_LIMIT)),
        )
        .route(
            "/clients/apply",
            post(plan::apply).layer(DefaultBodyLimit::max(PLAN_LIMIT)),
        )
}

/// The current clients as the plan and apply engine asks for them, from this process's read
/// model and search index.
pub(crate) struct ReadModelClients {
    reads: std::sync::Arc<dyn registry_projections::ReadStore>,
    search: std::sync::Arc<registry_projections::SearchIndex>,
}

impl ReadModelClients {
    pub(crate) fn of(state: &AppState) -> Self {
        Self {
            reads: state.reads.clone(),
            search: state.search.clone(),
        }
    }
}

#[async_trait::async_trait]
impl documents::CurrentClients for ReadModelClients {
    async fn clients(&self, ids: &[String]) -> anyhow::Result<Vec<documents::Current>> {
        let records = self.reads.clients(ids).await?;
        Ok(records
            .into_iter()
            .map(|record| documents::Current {
                client_id: record.view.client_id,
                version: record.view.version,
                settings: (!record.deleted).then_some(record.view.settings),
            })
            .collect())
    }

    async fn live_ids(&self) -> anyhow::Result<Vec<String>> {
        if self.search.is_ready() {
            return Ok(self.search.client_ids());
        }
        let (sink, mut chunks) = tokio::sync::mpsc::channel(2);
        let reads = self.reads.clone();
        let reading =
            tokio::spawn(async move { reads.export_list(&ListQuery::default(), sink).await });
        let mut ids = Vec::new();
        while let Some(chunk) = chunks.recv().await {
            if let registry_projections::export::Chunk::Rows(rows) = chunk {
                ids.extend(rows.into_iter().map(|row| row.client_id));
            }
        }
        reading.await??;
        Ok(ids)
    }

    async fn fresh(&self, id: &str) -> anyhow::Result<Option<documents::Current>> {
        // The read model of this process may trail a commit of another by a moment.
        let _ = self.reads.catch_up(id).await;
        Ok(self.reads.client(id).await?.map(|view| documents::Current {
            client_id: view.client_id,
            version: view.version,
            settings: Some(view.settings),
        }))
    }
}

/// The JSON Schema of a clients document (for editors: `# yaml-language-server: $schema=…`).
#[utoipa::path(
    get, path = "/api/v1/clients/schema.json", tag = "documents",
    responses(
        (status = 200, description = "JSON Schema 2020-12 of a clients document", body = Object, content_type = "application/schema+json"),
        crate::responses::Unauthenticated,
    ),
    security(("bearer" = []))
)]
pub async fn schema(_caller: Authorized<ClientsRead>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/schema+json")],
        Json(documents::json_schema()),
    )
        .into_response()
}

/// Every client matching `params`, as a document, from one snapshot; and the feed position
/// it reflects.
async fn document_of(
    state: &AppState,
    params: &ExportParams,
) -> Result<(ClientsDocument, i64), ApiError> {
    let query = params.query()?;
    let mut clients = Vec::new();
    let position = crate::exports::each_view(state, query, |view| {
        clients.push(DocumentClient::of(&view.client_id, &view.settings));
    })
    .await?;
    let unmanaged = Vec::new();
    Ok((ClientsDocument { clients, unmanaged }, position))
}

async fn export(
    state: AppState,
    params: ExportParams,
    format: DocumentFormat,
) -> Result<Response, ApiError> {
    let (document, position) = document_of(&state, &params).await?;
    let text = documents::render(&document, format).map_err(ApiError::Internal)?;
    let extension = match format {
        DocumentFormat::Yaml => "yaml",
        DocumentFormat::Json => "json",
    };
    let filename = format!(
        "attachment; filename=\"clients-{}.{extension}\"",
        crate::extract::now().format("%Y-%m-%d")
    );
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&filename) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        HeaderName::from_static(crate::exports::FEED_POSITION),
        position.into(),
    );
    Ok(response)
}

/// Export the clients (every one matching the filter) as a YAML clients document, which
/// applies back to the same state.
#[utoipa::path(
    get, path = "/api/v1/clients/export.yaml", tag = "documents",
    params(ExportParams),
    responses(
        (status = 200, description = "The document; X-Feed-Position says which feed position it reflects", content(
             (ClientsDocument = "application/yaml"),
             (String = "text/yaml"))),
        crate::responses::ListExportRefusals,
    ),
    security(("bearer" = []))
)]
pub async fn export_yaml(ListExport { state, params }: ListExport) -> Result<Response, ApiError> {
    export(state, params, DocumentFormat::Yaml).await
}

/// Export the clients (every one matching the filter) as a JSON clients document.
#[utoipa::path(
    get, path = "/api/v1/clients/export.json", tag = "documents",
    params(ExportParams),
    responses(
        (status = 200, description = "The document; X-Feed-Position says which feed position it reflects", body = ClientsDocument, content_type = "application/json"),
        crate::responses::ListExportRefusals,
    ),
    security(("bearer" = []))
)]
pub async fn export_json(ListExport { state, params }: ListExport) -> Result<Response, ApiError> {
    export(state, params, DocumentFormat::Json).await
}
