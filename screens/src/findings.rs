//! The profile checks' screens: one client's findings, and every client with findings.

use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use registry_api::auth::Role;
use registry_api::clients::findings::{FindingsParams, ReportParams};
use registry_domain::client::findings::Profile;

use super::session::Session;
use super::{pages, UiError};
use crate::clients::client_view;
use crate::ScreensState;

/// The routes of the profile checks.
pub fn router() -> Router<ScreensState> {
    Router::new()
        .route("/clients/{client_id}/findings", get(client_findings))
        .route("/findings", get(findings_report))
}

async fn client_findings(
    session: Session,
    State(state): State<ScreensState>,
    Path(client_id): Path<String>,
    Query(query): Query<FindingsParams>,
) -> Result<Response, UiError> {
    session.require(Role::ClientsRead)?;
    let profile = query.profile().unwrap_or(Profile::Rfc9700);
    let view = client_view(&state, &client_id).await?;
    let found = registry_api::clients::findings::client_findings(&state, &view, profile);
    Ok(pages::findings(&session, &view, profile, &found).into_response())
}

async fn findings_report(
    session: Session,
    State(state): State<ScreensState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    session.require(Role::ClientsRead)?;
    let mut params = ReportParams::default();
    for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "profile" if Profile::parse(&value).is_ok() => params.profile = Some(value.into()),
            "level" if value == "must" => params.level = Some(value.into()),
            _ => {}
        }
    }
    let (profile, must_only) = params.parse()?;
    let report = registry_api::clients::findings::report(&state, &params).await?;
    Ok(pages::findings_report(&session, profile, must_only, &report).into_response())
}
