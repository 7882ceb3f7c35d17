//! The client screens: list, create, edit, Set New Secret, delete, history, exports. Each
//! handler: the session (and its role), the form or query, one call to the command or query
//! layer the API uses, a page.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use registry_commands::{CommandError, Executed};
use registry_domain::values::GracePeriod;
use registry_domain::ClientError;
use registry_projections::export::Format;
use registry_projections::{as_of, history, AsOf, ClientView};

use super::form::{encode, Action, ClientForm, FieldErrors, Posted};
use super::session::{Session, WriteForm};
use super::{pages, UiError};
use crate::listing::{list_query, listing};
use crate::ScreensState;
use registry_api::auth::Role;
use registry_api::error::{ApiError, ProblemFieldError};
use registry_api::exports::{export_clients, export_history, ExportParams};

/// The client routes of the screens.
pub fn router() -> Router<ScreensState> {
    Router::new()
        .route("/clients", get(list).post(create))
        .route("/clients/new", get(new_form))
        .route("/clients/export.xlsx", list_export(Format::Xlsx))
        .route("/clients/export.pdf", list_export(Format::Pdf))
        .route("/clients/{client_id}", get(edit_form).post(update))
        .route("/clients/{client_id}/secret", get(secret_form).post(rotate))
        .route("/clients/{client_id}/delete", get(delete_form).post(delete))
        .route("/clients/{client_id}/history", get(client_history))
        .route(
            "/clients/{client_id}/history.xlsx",
            history_export(Format::Xlsx),
        )
        .route(
            "/clients/{client_id}/history.pdf",
            history_export(Format::Pdf),
        )
        .route("/clients/{client_id}/versions/{version}", get(version))
}

/// Whether htmx asked (it then takes a partial).
/// A request of htmx for a fragment. Not when htmx restores a page from history (Back after
/// the cache is empty): that needs the whole page.
fn from_htmx(headers: &HeaderMap) -> bool {
    headers.contains_key("hx-request") && !headers.contains_key("hx-history-restore-request")
}

async fn list(
    session: Session,
    State(state): State<ScreensState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    session.require(Role::ClientsRead)?;
    let query = listing(&state, raw.as_deref()).await?;
    let page = if state.search.is_ready() {
        state.search.search(&query)
    } else {
        state.reads.list(&query).await?
    };
    let seen = seen_on(&state, &page).await;
    if from_htmx(&headers) {
        return Ok(pages::client_table(&session, &query, &page, &seen).into_response());
    }
    let notice = deleted_notice(raw.as_deref());
    Ok(pages::client_list(&session, &query, &page, &seen, notice.as_deref()).into_response())
}

/// When each client of `page` last authenticated (not a namesake's, deleted before this
/// client was registered again).
async fn seen_on(state: &ScreensState, page: &registry_projections::ClientPage) -> pages::LastSeen {
    let ids: Vec<String> = page.items.iter().map(|i| i.client_id.clone()).collect();
    let mut at = (state.commands.last_authenticated().lookup(&ids))
        .await
        .unwrap_or_default();
    at.retain(|id, at| {
        page.items
            .iter()
            .any(|item| &item.client_id == id && *at >= item.created_at.timestamp())
    });
    pages::LastSeen {
        at,
        now: registry_api::extract::now().timestamp(),
    }
}

/// "Client … was deleted." after a delete (only a client id: never a sentence a crafted link
/// puts in the page).
fn deleted_notice(raw: Option<&str>) -> Option<String> {
    form_urlencoded::parse(raw?.as_bytes())
        .find(|(name, _)| name == "deleted")
        .filter(|(_, id)| registry_domain::values::ClientId::parse(id).is_ok())
        .map(|(_, id)| format!("Client {id} was deleted."))
}

async fn new_form(session: Session) -> Result<Response, UiError> {
    session.require(Role::ClientsWrite)?;
    Ok(pages::client_form(
        &session,
        &ClientForm::new_client(),
        &FieldErrors::default(),
        None,
    )
    .into_response())
}

/// The form again, with what was typed and why it was not saved.
fn form_again(
    session: &Session,
    form: &ClientForm,
    errors: &FieldErrors,
    status: StatusCode,
) -> Response {
    (status, pages::client_form(session, form, errors, None)).into_response()
}

/// Field errors of a refused command, on the form's own paths.
fn refused(form: &ClientForm, error: ApiError) -> Result<FieldErrors, UiError> {
    match error {
        ApiError::Validation(errors) => Ok(FieldErrors::from_api(form, &errors)),
        ApiError::ClientExists => Ok(FieldErrors::from_api(
            form,
            &[ProblemFieldError {
                field: "client_id".to_owned(),
                message: "a client with this Client ID already exists".to_owned(),
            }],
        )),
        other => Err(other.into()),
    }
}

/// After a save: the new secret once, if the server generated one; else the client.
fn saved(session: &Session, client_id: &str, executed: &Executed, what: &str) -> Response {
    match executed.secret.as_ref().and_then(|s| s.generated.as_ref()) {
        Some(secret) => {
            pages::one_time_secret(session, client_id, secret.expose(), what).into_response()
        }
        None => Redirect::to(&format!("/clients/{}?saved=1", encode(client_id))).into_response(),
    }
}

async fn create(State(state): State<ScreensState>, post: WriteForm) -> Result<Response, UiError> {
    let WriteForm {
        session, posted, ..
    } = &post;
    let mut form = ClientForm::from_posted(posted);
    form.version = None;
    if let Some(page) = edited(session, &mut form, posted) {
        return Ok(page);
    }
    let ctx = post.context();
    let secret = Some(form.client_secret.clone()).filter(|s| !s.is_empty());
    let done = (state.commands)
        .register(&ctx, &form.client_id, form.settings(), secret)
        .await;
    // A typed secret is never sent back in a page.
    form.client_secret.clear();
    after_save(session, &form, done, "Client registered")
}

/// The form again when the button pressed was not Save (add or remove a list entry).
fn edited(session: &Session, form: &mut ClientForm, posted: &Posted) -> Option<Response> {
    let action = Action::of(posted);
    if action == Action::Save {
        return None;
    }
    form.apply(&action);
    Some(form_again(
        session,
        form,
        &FieldErrors::default(),
        StatusCode::OK,
    ))
}

/// The page after a save: the new secret once (or the client); the form again with every
/// error when the command refused.
fn after_save(
    session: &Session,
    form: &ClientForm,
    done: Result<Executed, CommandError>,
    what: &str,
) -> Result<Response, UiError> {
    match done {
        Ok(executed) => Ok(saved(session, &form.client_id, &executed, what)),
        Err(error) => {
            let errors = refused(form, error.into())?;
            Ok(form_again(
                session,
                form,
                &errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
    }
}

/// A form posted about one registered client: the form (session and CSRF checked), the
/// client's id from the path and what the read model shows of it.
struct ClientPost {
    id: String,
    view: ClientView,
    post: WriteForm,
}

impl axum::extract::FromRequest<ScreensState> for ClientPost {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &ScreensState,
    ) -> Result<Self, Response> {
        use axum::extract::FromRequestParts as _;
        let (mut parts, body) = request.into_parts();
        let Path(client_id) = (Path::<String>::from_request_parts(&mut parts, state).await)
            .map_err(IntoResponse::into_response)?;
        let request = axum::extract::Request::from_parts(parts, body);
        let post = WriteForm::from_request(request, state).await?;
        let view = (client_view(state, &client_id).await).map_err(IntoResponse::into_response)?;
        Ok(Self {
            id: client_id,
            view,
            post,
        })
    }
}

pub(crate) async fn client_view(
    state: &ScreensState,
    client_id: &str,
) -> Result<ClientView, UiError> {
    state
        .reads
        .client(client_id)
        .await?
        .ok_or(UiError::NotFound)
}

async fn edit_form(
    session: Session,
    State(state): State<ScreensState>,
    Path(client_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, UiError> {
    session.require(Role::ClientsRead)?;
    let view = client_view(&state, &client_id).await?;
    if !session.can(Role::ClientsWrite) {
        return Ok(pages::as_of(&session, &view, true).into_response());
    }
    let saved = raw.as_deref().is_some_and(|q| q.contains("saved=1"));
    let banner = saved.then(|| pages::notice("Saved."));
    Ok(pages::client_form(
        &session,
        &ClientForm::of(&view),
        &FieldErrors::default(),
        banner,
    )
    .into_response())
}

async fn update(
    State(state): State<ScreensState>,
    Path(client_id): Path<String>,
    post: WriteForm,
) -> Result<Response, UiError> {
    let WriteForm {
        session, posted, ..
    } = &post;
    let mut form = ClientForm::from_posted(posted);
    form.client_id.clone_from(&client_id);
    if let Some(page) = edited(session, &mut form, posted) {
        return Ok(page);
    }
    let Some(loaded) = form.version else {
        return Err(UiError::Csrf);
    };
    let ctx = post.context();
    let done = (state.commands)
        .update(&ctx, &client_id, form.settings(), Some(loaded))
        .await;
    match done {
        Err(
            CommandError::Rejected(ClientError::VersionMismatch { .. }) | CommandError::Conflict,
        ) => conflict_page(&state, session, &form, loaded).await,
        done => after_save(session, &form, done, "Client saved"),
    }
}

/// The form as typed, with who changed the client since it was loaded, and what.
async fn conflict_page(
    state: &ScreensState,
    session: &Session,
    form: &ClientForm,
    loaded: u64,
) -> Result<Response, UiError> {
    let events = state.reads.client_events(&form.client_id).await?;
    let entries = history(events).map_err(|e| UiError::Internal(e.into()))?;
    let since: Vec<_> = (entries.into_iter())
        .filter(|e| e.event.sequence > loaded)
        .collect();
    let banner = Some(pages::conflict(&since, loaded));
    let page = pages::client_form(session, form, &FieldErrors::default(), banner);
    Ok((StatusCode::CONFLICT, page).into_response())
}

async fn secret_form(
    session: Session,
    State(state): State<ScreensState>,
    Path(client_id): Path<String>,
) -> Result<Response, UiError> {
    session.require(Role::ClientsWrite)?;
    let view = client_view(&state, &client_id).await?;
    Ok(pages::set_new_secret(&session, &view, None).into_response())
}

async fn rotate(
    State(state): State<ScreensState>,
    client: ClientPost,
) -> Result<Response, UiError> {
    let ClientPost { id, view, post } = &client;
    let (session, posted) = (&post.session, &post.posted);
    let refusal = match rotation_asked(posted) {
        Ok((given, grace)) => {
            let ctx = post.context();
            let until = grace.until(ctx.at);
            let done = (state
                .commands
                .rotate_secret(&ctx, id, given, until, posted.version()))
            .await;
            match rotated(session, id, done)? {
                Ok(page) => return Ok(page),
                Err(refusal) => refusal,
            }
        }
        Err(refusal) => refusal,
    };
    refused_page(pages::set_new_secret(session, view, Some(&refusal)))
}

/// A form shown again with why it was refused: 422.
fn refused_page(page: maud::Markup) -> Result<Response, UiError> {
    Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
}

/// The secret typed (`None`: generate one) and the grace period, or why the form is wrong.
fn rotation_asked(posted: &Posted) -> Result<(Option<String>, GracePeriod), String> {
    let grace = GracePeriod::parse(posted.one("previous_secret_valid_for").unwrap_or(""))
        .map_err(|e| format!("previous_secret_valid_for: {}", e.0))?;
    let given = match posted.one("mode") {
        Some("enter") => match posted.one("client_secret").filter(|s| !s.is_empty()) {
            Some(secret) => Some(secret.to_owned()),
            None => return Err("Enter the new secret, or choose to generate one.".to_owned()),
        },
        _ => None,
    };
    Ok((given, grace))
}

/// The page after a rotation (the generated secret once), or what to say on the form again.
fn rotated(
    session: &Session,
    client_id: &str,
    done: Result<Executed, CommandError>,
) -> Result<Result<Response, String>, UiError> {
    match done {
        Ok(executed) => Ok(Ok(
            match executed.secret.as_ref().and_then(|s| s.generated.as_ref()) {
                Some(secret) => {
                    pages::one_time_secret(session, client_id, secret.expose(), "New secret set")
                }
                None => pages::message(
                    Some(session),
                    "New secret set",
                    "The secret you entered is now the client's secret.",
                ),
            }
            .into_response(),
        )),
        Err(error) if stale(&error) => Ok(Err(
            "The client changed since this form was opened (was it sent twice?). \
                    Nothing was changed; check the client before setting a new secret."
                .to_owned(),
        )),
        Err(error) => match ApiError::from(error) {
            ApiError::Validation(errors) => Ok(Err(errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "))),
            other => Err(other.into()),
        },
    }
}

async fn delete_form(
    session: Session,
    State(state): State<ScreensState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    session.require(Role::ClientsWrite)?;
    let view = client_view(&state, &client_id).await?;
    let dialog = delete_dialog(&state, &view, None).await;
    if from_htmx(&headers) {
        return Ok(pages::delete_confirmation(&session, &dialog).into_response());
    }
    Ok(pages::delete_page(&session, &dialog).into_response())
}

/// The delete dialog of `view`: with when the client last passed verification (not a
/// namesake deleted before it was registered again), and `error`.
async fn delete_dialog<'a>(
    state: &ScreensState,
    view: &'a ClientView,
    error: Option<&'a str>,
) -> pages::DeleteDialog<'a> {
    let found = state
        .commands
        .last_authenticated()
        .lookup(std::slice::from_ref(&view.client_id))
        .await
        .unwrap_or_default();
    let last_authenticated =
        (found.get(&view.client_id).copied()).filter(|at| *at >= view.created_at.timestamp());
    pages::DeleteDialog {
        client: view,
        last_authenticated,
        now: registry_api::extract::now().timestamp(),
        error,
    }
}

/// Why a delete was not done when the dialog was older than the client.
const CHANGED_SINCE_DIALOG: &str =
    "The client changed since this dialog was opened: check the change before deleting.";

/// A command refused because the client changed since the form was loaded.
fn stale(error: &CommandError) -> bool {
    matches!(
        error,
        CommandError::Rejected(ClientError::VersionMismatch { .. }) | CommandError::Conflict
    )
}

async fn delete(
    State(state): State<ScreensState>,
    client: ClientPost,
) -> Result<Response, UiError> {
    let ClientPost { id, view, post } = &client;
    let (session, posted) = (&post.session, &post.posted);
    let refusal = if posted.one("confirm").map(str::trim) == Some(id.as_str()) {
        let ctx = post.context();
        match state.commands.delete(&ctx, id, posted.version()).await {
            Ok(_) => {
                return Ok(Redirect::to(&format!("/clients?deleted={}", encode(id))).into_response())
            }
            Err(error) if stale(&error) => CHANGED_SINCE_DIALOG,
            Err(error) => return Err(ApiError::from(error).into()),
        }
    } else {
        "Type the client ID exactly as shown to confirm."
    };
    let dialog = delete_dialog(&state, view, Some(refusal)).await;
    refused_page(pages::delete_page(session, &dialog))
}

async fn client_history(
    session: Session,
    State(state): State<ScreensState>,
    Path(client_id): Path<String>,
) -> Result<Response, UiError> {
    session.require(Role::AuditRead)?;
    let events = state.reads.client_events(&client_id).await?;
    if events.is_empty() {
        return Err(UiError::NotFound);
    }
    let entries = history(events).map_err(|e| UiError::Internal(e.into()))?;
    Ok(pages::history(&session, &client_id, &entries).into_response())
}

async fn version(
    session: Session,
    State(state): State<ScreensState>,
    Path((client_id, version)): Path<(String, u64)>,
) -> Result<Response, UiError> {
    session.require(Role::AuditRead)?;
    let events = state.reads.client_events(&client_id).await?;
    match as_of(&events, |e| e.sequence <= version).map_err(|e| UiError::Internal(e.into()))? {
        AsOf::Live(record) => Ok(pages::as_of(&session, &record.view, false).into_response()),
        AsOf::Deleted { .. } => Ok(pages::message(
            Some(&session),
            "Deleted then",
            "The client was deleted at this version.",
        )
        .into_response()),
        AsOf::NotRegistered => Err(UiError::NotFound),
    }
}

fn export_params(raw: Option<&str>) -> ExportParams {
    let query = list_query(raw);
    ExportParams {
        search: query.search.clone(),
        enabled: query.enabled,
        sort: Some(format!(
            "{}{}",
            if query.sort.descending { "-" } else { "" },
            query.sort.key.name()
        )),
    }
}

/// The list exported as `format`: exactly the rows the list shows (its filters and sort).
fn list_export(format: Format) -> MethodRouter<ScreensState> {
    get(
        move |session: Session, State(state): State<ScreensState>, RawQuery(raw): RawQuery| async move {
            session.require(Role::ClientsRead)?;
            let params = export_params(raw.as_deref());
            Ok::<_, UiError>(export_clients((*state).clone(), params, format).await?)
        },
    )
}

/// A client's history exported as `format`.
fn history_export(format: Format) -> MethodRouter<ScreensState> {
    get(
        move |session: Session, State(state): State<ScreensState>, Path(id): Path<String>| async move {
            session.require(Role::AuditRead)?;
            Ok::<_, UiError>(export_history((*state).clone(), id, format).await?)
        },
    )
}
