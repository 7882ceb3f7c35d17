//! `GET /api/v1/clients/{client_id}/findings?profile=`: what a client's settings break in a
//! security profile (OAuth 2.1, RFC 9700, FAPI 2.0), each finding with the section it breaks.

use axum::extract::State;
use axum::Json;
use registry_domain::client::findings::{findings, CheckContext, Finding, Level, Profile};
use registry_projections::ClientView;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Authorized, ClientsRead};
use crate::error::{ApiError, Problem, ProblemFieldError};
use crate::extract::{now, AppPath, AppQuery};
use crate::state::AppState;

/// Query of the findings.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FindingsParams {
    /// The profile: `rfc9700` (default: OAuth 2.0 Security BCP), `oauth2.1` or `fapi2`.
    pub profile: Option<String>,
}

impl FindingsParams {
    /// The profile asked for.
    ///
    /// # Errors
    /// A 400 naming `profile` for an unknown one.
    pub fn profile(&self) -> Result<Profile, ApiError> {
        let Some(name) = self.profile.as_deref() else {
            return Ok(Profile::Rfc9700);
        };
        Profile::parse(name).map_err(|e| {
            ApiError::InvalidQuery(vec![ProblemFieldError {
                field: "profile".to_owned(),
                message: e.0,
            }])
        })
    }
}

/// What a client's settings break in a profile.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FindingsResponse {
    /// The client.
    pub client_id: String,
    /// The version its settings were read at.
    pub version: u64,
    /// The profile checked: `oauth2.1`, `rfc9700` or `fapi2`.
    pub profile: String,
    /// Every finding, in the order of the client's fields; empty when the client conforms.
    pub findings: Vec<FindingResponse>,
}

/// One thing a client's settings break.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FindingResponse {
    /// A stable name of the rule (`pkce-not-required`, `http-redirect-uri`, …).
    pub rule: String,
    /// `must`: the client does not conform; `should`: a weakness the profile advises against.
    #[schema(example = "must")]
    pub level: String,
    /// The document and section of the rule, e.g. `RFC 9700 §2.1.1`.
    pub section: String,
    /// The setting at fault, as the API names it (`require_pkce`, `redirect_uris[1]`).
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl From<Finding> for FindingResponse {
    fn from(finding: Finding) -> Self {
        Self {
            rule: finding.rule,
            level: match finding.level {
                Level::Must => "must",
                Level::Should => "should",
            }
            .to_owned(),
            section: finding.section,
            field: finding.field,
            message: finding.message,
        }
    }
}

/// The findings of `view` in `profile`, now: what the API and the screens show.
pub fn client_findings(state: &AppState, view: &ClientView, profile: Profile) -> Vec<Finding> {
    // A secret past its lifetime is not a current one (its end is its lifetime's).
    let secrets: Vec<_> = (view.secrets.iter())
        .map(|s| (s.created_at, s.ends_at()))
        .collect();
    let context = CheckContext {
        secrets: &secrets,
        now: now(),
        max_secret_age: state.max_secret_age,
    };
    findings(profile, &view.settings, &context)
}

/// What the client's settings break in a security profile: OAuth 2.1, the OAuth 2.0
/// Security BCP (RFC 9700) or FAPI 2.0. Advice: the registry accepts every client its own
/// rules accept.
#[utoipa::path(
    get, path = "/api/v1/clients/{client_id}/findings", tag = "clients",
    params(crate::responses::ClientPath, FindingsParams),
    responses(
        (status = 200, description = "The findings", body = FindingsResponse),
        (status = 404, description = "No such client", body = Problem, content_type = "application/problem+json"),
        crate::responses::DeniedOrBadQuery,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(client_id = %client_id))]
pub async fn get_findings(
    _caller: Authorized<ClientsRead>,
    State(state): State<AppState>,
    AppPath(client_id): AppPath<String>,
    AppQuery(params): AppQuery<FindingsParams>,
) -> Result<Json<FindingsResponse>, ApiError> {
    let profile = params.profile()?;
    let view = state.reads.client(&client_id).await?;
    let view = view.ok_or(ApiError::ClientNotFound)?;
    let found = client_findings(&state, &view, profile);
    Ok(Json(FindingsResponse {
        client_id: view.client_id,
        version: view.version,
        profile: profile.name().to_owned(),
        findings: found.into_iter().map(Into::into).collect(),
    }))
}

/// Query of the findings report.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// The profile: `rfc9700` (default), `oauth2.1` or `fapi2`.
    pub profile: Option<String>,
    /// `must`: only clients that do not conform; `should` (default): every finding.
    pub level: Option<String>,
    /// Case-insensitive substring of the client id or name, as the list's.
    pub search: Option<String>,
    /// Only enabled (`true`) or disabled (`false`) clients.
    pub enabled: Option<bool>,
}

impl ReportParams {
    /// The profile and whether only `must` findings count.
    ///
    /// # Errors
    /// A 400 naming `profile` or `level`.
    pub fn parse(&self) -> Result<(Profile, bool), ApiError> {
        let profile = FindingsParams {
            profile: self.profile.clone(),
        }
        .profile()?;
        let must_only = match self.level.as_deref() {
            None | Some("should") => false,
            Some("must") => true,
            Some(_) => {
                return Err(ApiError::InvalidQuery(vec![ProblemFieldError {
                    field: "level".to_owned(),
                    message: "must be must or should".to_owned(),
                }]))
            }
        };
        Ok((profile, must_only))
    }

    /// The list's filters.
    pub fn filters(&self) -> crate::exports::ExportParams {
        crate::exports::ExportParams {
            search: self.search.clone(),
            enabled: self.enabled,
            sort: None,
        }
    }
}

/// Every client with findings in a profile.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FindingsReport {
    /// The profile checked.
    pub profile: String,
    /// The feed position the clients were read at.
    pub position: i64,
    /// Clients checked (every one the filters match).
    pub checked: u64,
    /// The clients with at least one finding (of the asked level), in client id order.
    pub clients: Vec<ClientFindings>,
}

/// One client's findings in the report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientFindings {
    /// The client.
    pub client_id: String,
    /// Its name.
    pub client_name: String,
    /// Its version when checked.
    pub version: u64,
    /// Its findings.
    pub findings: Vec<FindingResponse>,
}

/// The findings of every client the filters match, read from one snapshot.
///
/// # Errors
/// 400 for a bad parameter, 503 when the export gate is full.
pub async fn report(state: &AppState, params: &ReportParams) -> Result<FindingsReport, ApiError> {
    let (profile, must_only) = params.parse()?;
    let query = params.filters().query()?;
    let (mut clients, mut checked) = (Vec::new(), 0);
    let position = crate::exports::each_view(state, query, |view| {
        checked += 1;
        let found: Vec<Finding> = (client_findings(state, &view, profile).into_iter())
            .filter(|f| !must_only || f.level == Level::Must)
            .collect();
        if !found.is_empty() {
            clients.push(ClientFindings {
                client_name: view.settings.client_name.to_string(),
                client_id: view.client_id,
                version: view.version,
                findings: found.into_iter().map(Into::into).collect(),
            });
        }
    })
    .await?;
    let profile = profile.name().to_owned();
    Ok(FindingsReport {
        profile,
        position,
        checked,
        clients,
    })
}

/// Every client whose settings break a security profile (the list's filters apply): a report
/// read from one snapshot of the read model, like an export.
#[utoipa::path(
    get, path = "/api/v1/findings", tag = "clients",
    params(ReportParams),
    responses(
        (status = 200, description = "The clients with findings", body = FindingsReport),
        crate::responses::ListExportRefusals,
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn get_report(
    _caller: Authorized<ClientsRead>,
    State(state): State<AppState>,
    AppQuery(params): AppQuery<ReportParams>,
) -> Result<Json<FindingsReport>, ApiError> {
    report(&state, &params).await.map(Json)
}
