//! The initial access tokens of dynamic client registration (RFC 7591), for a
//! `registration:admin`: the list, a form to make one (its token shown once), one token's
//! policy and the clients it registered, and revoking it. The same functions as the API's.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use registry_api::auth::Role;
use registry_api::error::ApiError;
use registry_api::registration::tokens::{self, CreateTokenRequest, PolicyBody};

use super::form::{FieldErrors, Posted};
use super::session::Session;
use super::{pages, UiError};
use crate::ScreensState;

/// The routes of the initial access tokens.
pub fn router() -> Router<ScreensState> {
    Router::new()
        .route("/registration", get(list).post(create))
        .route("/registration/{token_id}", get(detail))
        .route("/registration/{token_id}/revoke", post(revoke))
}

async fn list(session: Session, State(state): State<ScreensState>) -> Result<Response, UiError> {
    session.require(Role::RegistrationAdmin)?;
    let tokens = tokens::list(&state).await?;
    let form = TokenForm::default();
    Ok(pages::registration(&session, &tokens, &form, &FieldErrors::default()).into_response())
}

async fn detail(
    session: Session,
    State(state): State<ScreensState>,
    Path(token_id): Path<String>,
) -> Result<Response, UiError> {
    session.require(Role::RegistrationAdmin)?;
    let token = tokens::detail(&state, &token_id)
        .await?
        .ok_or(UiError::NotFound)?;
    Ok(pages::registration_token(&session, &token).into_response())
}

/// A form of these pages, posted: the session's CSRF token checked and the role required.
async fn posted(session: &Session, headers: &HeaderMap, body: &[u8]) -> Result<Posted, UiError> {
    let posted = Posted::parse(body);
    session.check(posted.one("csrf"), headers)?;
    session.require(Role::RegistrationAdmin)?;
    Ok(posted)
}

async fn create(
    session: Session,
    State(state): State<ScreensState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, UiError> {
    let posted = posted(&session, &headers, &body).await?;
    let form = TokenForm::from_posted(&posted);
    match tokens::create(&state, session.actor.clone(), &form.request()).await {
        Ok(token) => Ok(pages::registration_created(&session, &token).into_response()),
        Err(ApiError::Validation(errors)) => {
            let errors = FieldErrors(errors.into_iter().fold(
                std::collections::BTreeMap::new(),
                |mut map, e| {
                    map.entry(e.field).or_insert_with(Vec::new).push(e.message);
                    map
                },
            ));
            let tokens = tokens::list(&state).await?;
            let page = pages::registration(&session, &tokens, &form, &errors);
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(other) => Err(other.into()),
    }
}

async fn revoke(
    session: Session,
    State(state): State<ScreensState>,
    Path(token_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, UiError> {
    posted(&session, &headers, &body).await?;
    if !tokens::revoke(&state, &token_id).await? {
        return Err(UiError::NotFound);
    }
    Ok(Redirect::to("/registration").into_response())
}

/// The form to make a token, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenForm {
    /// What it is for.
    pub description: String,
    /// Days it is valid.
    pub days: String,
    /// Registrations it admits; empty: any number.
    pub max_uses: String,
    /// Allowed grant types (none checked: any).
    pub grant_types: Vec<String>,
    /// Allowed authentication methods (none checked: any).
    pub methods: Vec<String>,
    /// Redirect URI patterns, one per line.
    pub patterns: String,
    /// Allowed scopes, space-separated.
    pub scopes: String,
    /// Client name prefix.
    pub name_prefix: String,
    /// Hold registered clients for approval.
    pub hold: bool,
    /// Refuse the must findings of this profile (empty: none).
    pub refuse: String,
}

impl Default for TokenForm {
    fn default() -> Self {
        Self {
            description: String::new(),
            days: "7".to_owned(),
            max_uses: "1".to_owned(),
            grant_types: Vec::new(),
            methods: Vec::new(),
            patterns: String::new(),
            scopes: String::new(),
            name_prefix: String::new(),
            hold: true,
            refuse: "oauth2.1".to_owned(),
        }
    }
}

impl TokenForm {
    fn from_posted(posted: &Posted) -> Self {
        let text = |name: &str| posted.one(name).unwrap_or_default().to_owned();
        let cap = |values: &[String]| values.iter().take(16).cloned().collect();
        Self {
            description: text("description"),
            days: text("days"),
            max_uses: text("max_uses"),
            grant_types: cap(posted.all("grant_types")),
            methods: cap(posted.all("methods")),
            patterns: text("patterns"),
            scopes: text("scopes"),
            name_prefix: text("name_prefix"),
            hold: posted.one("hold") == Some("on"),
            refuse: text("refuse"),
        }
    }

    /// The API's request: a number that is not one goes on as out of range, which the rules
    /// then name.
    fn request(&self) -> CreateTokenRequest {
        let days: u64 = self.days.trim().parse().unwrap_or(0);
        let max_uses = match self.max_uses.trim() {
            "" => None,
            uses => Some(uses.parse().unwrap_or(0)),
        };
        CreateTokenRequest {
            description: self.description.clone(),
            expires_in: Some(days.saturating_mul(86_400)),
            max_uses: Some(max_uses),
            policy: PolicyBody {
                grant_types: self.grant_types.clone(),
                token_endpoint_auth_methods: self.methods.clone(),
                redirect_uri_patterns: (self.patterns.lines())
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
                scopes: self.scopes.split_whitespace().map(str::to_owned).collect(),
                client_name_prefix: Some(self.name_prefix.clone()).filter(|p| !p.is_empty()),
                hold_for_approval: self.hold,
                refuse_findings_of: Some(self.refuse.clone()).filter(|r| !r.is_empty()),
            },
        }
    }
}
