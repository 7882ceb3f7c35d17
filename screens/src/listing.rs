//! What a list link asks for: the search, Enabled, sort and page (as the API's list reads
//! them), and the set filters (registered dynamically, findings, secret ending soon), whose
//! clients are computed as the API's list computes them.

use registry_domain::client::findings::Profile;
use registry_projections::ListQuery;

use super::{pages, UiError};
use crate::ScreensState;

/// Parameters of the list, as the API's (an unreadable value is ignored, not an error page).
pub(crate) fn list_query(raw: Option<&str>) -> ListQuery {
    let mut search = None;
    let mut enabled = None;
    let mut sort = None;
    let mut cursor = None;
    for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let value = value.into_owned();
        match name.as_ref() {
            "search" if !value.trim().is_empty() => search = Some(value),
            "enabled" => enabled = value.parse::<bool>().ok(),
            "sort" if !value.is_empty() => sort = Some(value),
            "cursor" if !value.is_empty() => cursor = Some(value),
            _ => {}
        }
    }
    ListQuery::parse(
        search.as_deref(),
        enabled,
        sort.as_deref(),
        Some(50),
        cursor.as_deref(),
    )
    .or_else(|_| ListQuery::parse(search.as_deref(), enabled, sort.as_deref(), Some(50), None))
    .or_else(|_| ListQuery::parse(None, enabled, None, Some(50), None))
    .unwrap_or_default()
}

/// The set filters a list link asks for (an unreadable value is ignored).
fn set_filters(raw: Option<&str>) -> pages::SetFilters {
    let mut filters = pages::SetFilters::default();
    for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let value = Some(value.into_owned()).filter(|v| !v.trim().is_empty());
        match name.as_ref() {
            "registered_by" => filters.registered_by = value,
            // Unknown profiles and days past ten years are ignored, as unreadable values.
            "findings" => {
                filters.findings = value.filter(|v| Profile::parse(v).is_ok());
            }
            "secret_expires_within_days" => {
                let days = value.and_then(|v| v.parse::<u32>().ok());
                filters.secret_expires_within_days = days.filter(|days| *days <= 3650);
            }
            _ => {}
        }
    }
    filters
}

/// The list a link asks for: its query, narrowed to the set filters' clients (computed as
/// the API's list computes them).
pub(crate) async fn listing(
    state: &ScreensState,
    raw: Option<&str>,
) -> Result<pages::Listing, UiError> {
    let mut query = list_query(raw);
    let filters = set_filters(raw);
    if filters.any() {
        let params = registry_api::clients::wire::ListClientsParams {
            registered_by: filters.registered_by.clone(),
            findings: filters.findings.clone(),
            secret_expires_within_days: filters.secret_expires_within_days,
            ..Default::default()
        };
        let only = registry_api::clients::filters::only(state, &params).await?;
        query.only = only.map(std::sync::Arc::new);
    }
    Ok(pages::Listing { query, filters })
}
