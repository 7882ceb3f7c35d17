//! The OpenAPI document of the service, served at `/openapi.json`.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::clients::wire::{
    ClientListItem, ClientListResponse, ClientRequest, ClientResponse, RotateSecretRequest,
    RotateSecretResponse, SecretResponse, VerifySecretRequest, VerifySecretResponse,
};
use crate::error::{Problem, ProblemFieldError};
use crate::events::{
    EventMetadataResponse, EventsResponse, FeedEventResponse, FieldChangeResponse,
    HistoryEventResponse, HistoryResponse,
};
use crate::health::HealthResponse;

/// The OpenAPI 3.1 description of every route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "client-registry",
        description = "Event-sourced registry of OAuth 2.0 / OpenID Connect clients. Every \
                       `/api` route needs `Authorization: Bearer <token>`. Errors are \
                       `application/problem+json` (RFC 9457) with a stable `code`."
    ),
    paths(
        crate::clients::list_clients,
        crate::clients::create_client,
        crate::clients::get_client,
        crate::clients::update_client,
        crate::clients::patch_client,
        crate::clients::rotate_secret,
        crate::clients::delete_client,
        crate::clients::verify_secret,
        crate::clients::findings::get_findings,
        crate::clients::findings::get_report,
        crate::events::client_history,
        crate::exports::export_clients_xlsx,
        crate::exports::export_clients_pdf,
        crate::exports::export_history_xlsx,
        crate::exports::export_history_pdf,
        crate::documents::schema,
        crate::documents::export_yaml,
        crate::documents::export_json,
        crate::documents::plan::plan,
        crate::documents::plan::apply,
        crate::events::list_events,
        crate::events::stream_head,
        crate::sealed_log::key,
        crate::sealed_log::tree_head,
        crate::sealed_log::inclusion,
        crate::sealed_log::consistency,
        crate::sealed_log::export_log,
        crate::client_documents::routes::get_document,
        crate::client_documents::routes::refresh,
        crate::client_documents::routes::pin,
        crate::client_documents::routes::unpin,
        crate::client_documents::routes::approve,
        crate::client_documents::routes::block,
        crate::client_documents::routes::unblock,
        crate::registration::tokens::create_token,
        crate::registration::tokens::list_tokens,
        crate::registration::tokens::get_token,
        crate::registration::tokens::revoke_token,
        crate::registration::endpoint::register,
        crate::registration::endpoint::read_registration,
        crate::registration::endpoint::replace_registration,
        crate::registration::endpoint::delete_registration,
        crate::health::healthz,
        crate::health::readyz,
        crate::health::metrics,
    ),
    components(schemas(
        ClientRequest, ClientResponse, ClientListResponse, ClientListItem, SecretResponse,
        RotateSecretRequest, RotateSecretResponse, VerifySecretRequest, VerifySecretResponse,
        crate::clients::findings::FindingsResponse, crate::clients::findings::FindingResponse,
        crate::clients::findings::FindingsReport, crate::clients::findings::ClientFindings,
        Problem, ProblemFieldError, HealthResponse,
        HistoryResponse, HistoryEventResponse, FieldChangeResponse, EventMetadataResponse,
        EventsResponse, FeedEventResponse, crate::events::StreamHeadResponse,
        registry_commands::documents::ClientsDocument, registry_commands::documents::DocumentClient,
        registry_commands::documents::Plan, registry_commands::documents::PlanStep,
        registry_commands::documents::PlannedChange, registry_commands::documents::PlanSummary,
        registry_commands::documents::StepAction, registry_commands::documents::ApplyRequest,
        registry_commands::documents::ApplyResult, registry_commands::documents::AppliedStep,
        registry_commands::documents::SkippedStep, registry_commands::documents::IssuedSecret,
        crate::sealed_log::KeyResponse, crate::sealed_log::InclusionProof, crate::sealed_log::ConsistencyProof,
        registry_projections::seal::TreeHead,
        crate::registration::tokens::CreateTokenRequest, crate::registration::tokens::PolicyBody,
        crate::registration::tokens::TokenResponse, crate::registration::tokens::TokenListResponse,
        crate::client_documents::routes::DocumentStatus, crate::client_documents::routes::HeldVersion,
        crate::client_documents::routes::Act,
        crate::registration::metadata::ClientMetadata, crate::registration::metadata::RegistrationResponse,
        crate::registration::error::RegistrationErrorBody
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "clients", description = "OAuth client registrations"),
        (name = "audit", description = "History, as-of views and the global feed"),
        (name = "exports", description = "Excel and PDF exports"),
        (name = "documents", description = "Clients as code: export, plan and apply a document of clients"),
        (name = "registration", description = "Dynamic client registration (RFC 7591, RFC 7592) and its initial access tokens"),
        (name = "health", description = "Probes and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON.
pub fn document() -> String {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    fix_link_keys(&mut document);
    serde_json::to_string_pretty(&document).unwrap_or_default()
}

/// utoipa 5.5 writes response links with snake_case keys (`operation_id`); OpenAPI spells
/// them `operationId`, `operationRef`, `requestBody`, and tools ignore links otherwise.
fn fix_link_keys(document: &mut serde_json::Value) {
    let Some(paths) = document.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    let links = paths
        .values_mut()
        .filter_map(|item| item.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut())
        .filter_map(|response| response.get_mut("links")?.as_object_mut())
        .flat_map(|links| links.values_mut())
        .filter_map(|link| link.as_object_mut());
    for link in links {
        for (from, to) in [
            ("operation_id", "operationId"),
            ("operation_ref", "operationRef"),
            ("request_body", "requestBody"),
        ] {
            if let Some(value) = link.remove(from) {
                link.insert(to.to_owned(), value);
            }
        }
    }
}
