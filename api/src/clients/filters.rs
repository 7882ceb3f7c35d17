//! The list's filters that no column of the list holds, each computed as the set of clients
//! that pass it: registered dynamically (from the registration tokens), with findings in a
//! profile and with a secret that ends within some days (from one snapshot of the client
//! details, through the export gate, like a report). The search index then pages through the
//! set with the other filters and the sort.

use std::collections::HashSet;

use chrono::Duration;
use registry_domain::client::findings::Profile;
use registry_projections::ListQuery;

use super::wire::ListClientsParams;
use crate::error::{ApiError, ProblemFieldError};
use crate::extract::now;
use crate::state::AppState;

/// The longest `secret_expires_within_days`: ten years.
const MAX_DAYS: u32 = 3650;

fn bad(field: &str, message: String) -> ApiError {
    ApiError::InvalidQuery(vec![ProblemFieldError {
        field: field.to_owned(),
        message,
    }])
}

/// The set the query's set filters leave (`None`: no such filter asked for).
///
/// # Errors
/// 400 naming a bad parameter; 503 while the list index loads or when the export gate is
/// full; the read model's failures.
pub async fn only(
    state: &AppState,
    params: &ListClientsParams,
) -> Result<Option<HashSet<String>>, ApiError> {
    let profile = (params.findings.as_deref())
        .map(|name| Profile::parse(name).map_err(|e| bad("findings", e.0)))
        .transpose()?;
    let within = params.secret_expires_within_days;
    if within.is_some_and(|days| days > MAX_DAYS) {
        return Err(bad(
            "secret_expires_within_days",
            format!("must be 0–{MAX_DAYS}"),
        ));
    }
    if params.registered_by.is_none() && profile.is_none() && within.is_none() {
        return Ok(None);
    }
    if !state.search.is_ready() {
        return Err(ApiError::NotReady(
            "the list is loading; filter again in a moment".to_owned(),
        ));
    }
    let mut only: Option<HashSet<String>> = None;
    if let Some(by) = params.registered_by.as_deref() {
        let token = Some(by).filter(|by| *by != "any");
        let ids = state
            .database
            .dynamically_registered(token, 1_000_000)
            .await?;
        only = Some(ids.into_iter().collect());
    }
    if profile.is_some() || within.is_some() {
        let horizon = now() + Duration::days(i64::from(within.unwrap_or_default()));
        let mut passing = HashSet::new();
        crate::exports::each_view(state, ListQuery::default(), |view| {
            // The client's current secret: one retired with a grace is on its way out by
            // design, not a secret about to lapse.
            let ends_soon = within.is_none_or(|_| {
                (view.current_secret())
                    .and_then(registry_projections::SecretView::ends_at)
                    .is_some_and(|end| end <= horizon)
            });
            let found = profile.is_none_or(|profile| {
                !super::findings::client_findings(state, &view, profile).is_empty()
            });
            if ends_soon && found {
                passing.insert(view.client_id);
            }
        })
        .await?;
        only = Some(match only {
            Some(ids) => ids.intersection(&passing).cloned().collect(),
            None => passing,
        });
    }
    Ok(only)
}
