//! The pages and partials of the screens: one function each, taking typed view data, no SQL
//! and no business rule. Labels are the admin guide's words; every input has a `<label>`,
//! every list field is a `<fieldset>` with a `<legend>`.

use maud::{html, Markup, DOCTYPE};
use registry_projections::{ClientPage, ClientView, HistoryEntry, ListQuery, SortKey};

use super::form::{
    encode, suggested_origin, ClientForm, FieldErrors, COMMON_SCOPES, GRANT_TYPES, LIST_FIELDS,
};
use super::session::Session;
use registry_api::auth::Role;

/// The vendored htmx (see `api/assets/VENDORED.md`).
pub const HTMX: &str = "/assets/htmx-2.0.11.min.js";

/// The frame of every page: header with the navigation ("Identity > Clients"), the signed-in
/// person and "Sign out", the content, and an empty dialog the delete confirmation opens in.
pub fn layout(session: Option<&Session>, title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config"
                    content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0,"historyRestoreAsHxRequest":false}"#;
                title { (title) " · client-registry" }
                link rel="stylesheet" href="/assets/app.css";
                script src=(HTMX) defer {}
                script src="/assets/app.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/clients" { "client-registry" }
                    nav aria-label="Breadcrumb" {
                        ol class="crumbs" {
                            li { "Identity" }
                            li { a href="/clients" { "Clients" } }
                        }
                    }
                    @if let Some(session) = session {
                        div class="who" {
                            span class="actor" title="Signed in as" { (session.actor) }
                            form method="post" action="/sign-out" {
                                input type="hidden" name="csrf" value=(session.csrf_token);
                                button type="submit" class="link" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (content) }
                dialog id="dialog" aria-labelledby="dialog-title" {}
            }
        }
    }
}

/// A page with a title and one paragraph (errors, notices).
pub fn message(session: Option<&Session>, title: &str, text: &str) -> Markup {
    layout(
        session,
        title,
        html! {
            h1 { (title) }
            p { (text) }
            p { a href="/clients" { "Back to the clients" } }
        },
    )
}

/// Signed in at the identity service, but nothing maps that person to a role here.
pub fn no_role(name: &str, roles_claim: Option<&str>) -> Markup {
    let source = match roles_claim {
        Some(claim) => format!("the values of the \"{claim}\" claim"),
        None => "the scopes the identity service grants".to_owned(),
    };
    layout(
        None,
        "No role in this registry",
        html! {
            h1 { "No role in this registry" }
            p { "You signed in at the identity service as " strong { (name) } ", but this registry gives that account no role, so it cannot show or change any client." }
            p { "Roles come from " (source) ", mapped by the registry's " code { "REGISTRY_JWT_SCOPE_ROLES" } " setting (for example " code { "registry-admins=clients:read,clients:write" } "). Nothing is mapped by default. Ask an administrator of the registry to map your group or scope to a role." }
            p { a class="button" href="/sign-in" { "Sign in another way" } }
        },
    )
}

/// Signed in: on to `next` (a page of this site, so that the strict session cookie is sent).
pub fn continue_to(next: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content={ "0;url=" (next) };
                title { "Signed in · client-registry" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body { main { p { "Signed in. " a href=(next) { "Continue" } } } }
        }
    }
}

/// The sign-in page.
pub fn sign_in(next: &str, error: Option<&str>, oidc: bool) -> Markup {
    layout(
        None,
        "Sign in",
        html! {
            div class="narrow" {
                h1 { "Sign in" }
                @if oidc {
                    p {
                        a class="button primary" href={ "/oidc/login?next=" (encode(next)) } {
                            "Sign in with the identity service"
                        }
                    }
                    p class="hint" { "Or, for set-up and development, with a token:" }
                }
                @if let Some(error) = error {
                    p class="error" role="alert" { (error) }
                }
                form method="post" action="/sign-in" {
                    input type="hidden" name="next" value=(next);
                    label for="token" { "Admin token or API key" }
                    input id="token" name="token" type="password" autocomplete="off" required;
                    p class="hint" {
                        "The admin token was printed when this registry first started; API keys \
                         come from " code { "client-registry api-key" } "."
                    }
                    button type="submit" class="primary" { "Sign in" }
                }
            }
        },
    )
}

/// Where a list link goes: the same search and filter, another sort or page.
fn list_url(query: &ListQuery, sort: Option<&str>, cursor: Option<&str>) -> String {
    let mut params = Vec::new();
    if let Some(search) = &query.search {
        params.push(format!("search={}", encode(search)));
    }
    if let Some(enabled) = query.enabled {
        params.push(format!("enabled={enabled}"));
    }
    let sort = sort.map_or_else(|| sort_name(query), ToOwned::to_owned);
    if sort != "client_id" {
        params.push(format!("sort={}", encode(&sort)));
    }
    if let Some(cursor) = cursor {
        params.push(format!("cursor={}", encode(cursor)));
    }
    if params.is_empty() {
        "/clients".to_owned()
    } else {
        format!("/clients?{}", params.join("&"))
    }
}

fn sort_name(query: &ListQuery) -> String {
    format!(
        "{}{}",
        if query.sort.descending { "-" } else { "" },
        query.sort.key.name()
    )
}

/// The export links: the same search, filter and sort as the list.
fn export_url(query: &ListQuery, extension: &str) -> String {
    let list = list_url(query, None, None);
    let params = list.split_once('?').map(|(_, p)| p).unwrap_or_default();
    if params.is_empty() {
        format!("/clients/export.{extension}")
    } else {
        format!("/clients/export.{extension}?{params}")
    }
}

/// A sortable column header: its link flips the direction when it is the current sort.
fn sort_header(query: &ListQuery, key: SortKey, label: &str) -> Markup {
    let current = query.sort.key == key;
    let next = if current && !query.sort.descending {
        format!("-{}", key.name())
    } else {
        key.name().to_owned()
    };
    let state = match (current, query.sort.descending) {
        (false, _) => "none",
        (true, false) => "ascending",
        (true, true) => "descending",
    };
    html! {
        th scope="col" aria-sort=(state) {
            a href=(list_url(query, Some(&next), None)) class="sort"
              hx-get=(list_url(query, Some(&next), None)) hx-target="#client-table"
              hx-select="#client-table" hx-swap="outerHTML" hx-push-url="true" {
                (label)
                @match state {
                    "ascending" => span aria-hidden="true" { " ▲" },
                    "descending" => span aria-hidden="true" { " ▼" },
                    _ => {},
                }
            }
        }
    }
}

/// When each client of a page last passed secret verification (Unix seconds), and now.
#[derive(Debug, Clone, Default)]
pub struct LastSeen {
    /// By client id; absent: never, as far as the registry knows.
    pub at: std::collections::HashMap<String, i64>,
    /// Now, Unix seconds.
    pub now: i64,
}

/// "3 minutes ago", "2 days ago".
pub fn ago(at: i64, now: i64) -> String {
    let seconds = (now - at).max(0);
    let (count, unit) = match seconds {
        0..=59 => return "just now".to_owned(),
        60..=3599 => (seconds / 60, "minute"),
        3600..=86_399 => (seconds / 3600, "hour"),
        _ => (seconds / 86_400, "day"),
    };
    format!("{count} {unit}{} ago", if count == 1 { "" } else { "s" })
}

/// Within a day: whoever deletes the client should know it is in use.
fn recent(at: i64, now: i64) -> bool {
    now - at < 86_400
}

/// The client list: toolbar, then the table (the part search and paging replace).
pub fn client_list(
    session: &Session,
    query: &ListQuery,
    page: &ClientPage,
    seen: &LastSeen,
    notice: Option<&str>,
) -> Markup {
    let write = session.can(Role::ClientsWrite);
    layout(
        Some(session),
        "Clients",
        html! {
            h1 { "Clients" }
            @if let Some(notice) = notice {
                p class="notice" role="status" { (notice) }
            }
            div class="toolbar" role="toolbar" aria-label="Clients" {
                @if write {
                    a class="button primary" href="/clients/new" { "New Client" }
                }
                form class="search" role="search" method="get" action="/clients" {
                    label for="search" { "Search" }
                    input id="search" type="search" name="search" placeholder="Client ID or name"
                        value=[query.search.as_deref()]
                        hx-get="/clients" hx-trigger="input changed delay:300ms, search"
                        hx-target="#client-table" hx-select="#client-table" hx-swap="outerHTML"
                        hx-push-url="true" hx-include="closest form";
                    label for="enabled" { "Enabled" }
                    select id="enabled" name="enabled" hx-get="/clients" hx-trigger="change"
                        hx-target="#client-table" hx-select="#client-table" hx-swap="outerHTML"
                        hx-push-url="true" hx-include="closest form" {
                        option value="" selected[query.enabled.is_none()] { "All" }
                        option value="true" selected[query.enabled == Some(true)] { "Enabled only" }
                        option value="false" selected[query.enabled == Some(false)] { "Disabled only" }
                    }
                    @if query.sort.key != SortKey::ClientId || query.sort.descending {
                        input type="hidden" name="sort" value=(sort_name(query));
                    }
                    button type="submit" { "Search" }
                }
                a class="button" href=(export_url(query, "xlsx")) download { "Export to Excel" }
                a class="button" href=(export_url(query, "pdf")) download { "Export to PDF" }
                a class="button" href=(list_url(query, None, None)) { "Refresh Data" }
            }
            (client_table(session, query, page, seen))
        },
    )
}

/// The table of a page of clients, with its count and pager.
pub fn client_table(
    session: &Session,
    query: &ListQuery,
    page: &ClientPage,
    seen: &LastSeen,
) -> Markup {
    let write = session.can(Role::ClientsWrite);
    let audit = session.can(Role::AuditRead);
    html! {
        div id="client-table" {
            p class="count" aria-live="polite" {
                @if page.total == 1 { "1 client" } @else { (page.total) " clients" }
                @if let Some(search) = &query.search { " matching “" (search) "”" }
            }
            @if page.items.is_empty() {
                @if query.search.is_some() || query.enabled.is_some() {
                    p class="empty" { "No client matches this search. Try part of an id or a name, or "
                        a href="/clients" { "show every client" } "." }
                } @else {
                    p class="empty" {
                        "No clients are registered yet."
                        @if write { " Register the first one with " a href="/clients/new" { "New Client" } "." }
                    }
                }
            } @else {
                div class="table-wrap" {
                    table class="clients" {
                        caption class="visually-hidden" { "Registered clients" }
                        thead {
                            tr {
                                (sort_header(query, SortKey::ClientId, "Client ID"))
                                (sort_header(query, SortKey::ClientName, "Name"))
                                th scope="col" { "Enabled" }
                                th scope="col" { "URI" }
                                (sort_header(query, SortKey::UpdatedAt, "Changed"))
                                th scope="col" { "Last authenticated" }
                                th scope="col" { span class="visually-hidden" { "Actions" } }
                            }
                        }
                        tbody {
                            @for item in &page.items {
                                tr data-client=(item.client_id) {
                                    td data-label="Client ID" class="id" { a href={ "/clients/" (encode(&item.client_id)) } title=(item.client_id) { code { (item.client_id) } } }
                                    td data-label="Name" { (item.client_name) }
                                    td data-label="Enabled" {
                                        @if item.enabled { span class="badge on" { "Yes" } } @else { span class="badge off" { "No" } }
                                    }
                                    td data-label="URI" class="uri" { @if let Some(uri) = &item.client_uri { (uri) } }
                                    td data-label="Changed" { time datetime=(item.updated_at.to_rfc3339()) { (item.updated_at.format("%Y-%m-%d %H:%M")) } }
                                    td data-label="Last authenticated" {
                                        @match seen.at.get(&item.client_id) {
                                            Some(at) => span class=[recent(*at, seen.now).then_some("recent")] { (ago(*at, seen.now)) },
                                            None => span class="hint" { "never" },
                                        }
                                    }
                                    td class="actions" {
                                        @let path = format!("/clients/{}", encode(&item.client_id));
                                        @if write {
                                            a class="button small" href=(path) { "Edit" }
                                            a class="button small danger" href={ (path) "/delete" }
                                              hx-get={ (path) "/delete" } hx-target="#dialog" hx-swap="innerHTML" { "Delete" }
                                        } @else {
                                            a class="button small" href=(path) { "View" }
                                        }
                                        details class="menu" {
                                            summary aria-label={ "More actions for " (item.client_id) } { "⋯" }
                                            ul {
                                                li { a href=(path) { @if write { "Edit" } @else { "View" } } }
                                                @if write { li { a href={ (path) "/secret" } { "Set New Secret" } } }
                                                @if audit { li { a href={ (path) "/history" } { "History" } } }
                                                @if write { li { a href={ (path) "/delete" } class="danger" { "Delete" } } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            nav class="pager" aria-label="Pages" {
                @if query.after.is_some() {
                    a href=(list_url(query, None, None)) hx-get=(list_url(query, None, None))
                      hx-target="#client-table" hx-select="#client-table" hx-swap="outerHTML" hx-push-url="true" { "First page" }
                }
                @if let Some(next) = &page.next_cursor {
                    a href=(list_url(query, None, Some(next))) hx-get=(list_url(query, None, Some(next)))
                      hx-target="#client-table" hx-select="#client-table" hx-swap="outerHTML" hx-push-url="true" { "Next page" }
                }
            }
        }
    }
}

fn field_errors(errors: &FieldErrors, field: &str) -> Markup {
    html! {
        @for message in errors.of(field) {
            p class="field-error" id={ "error-" (field) } { (message) }
        }
    }
}

fn text_input(
    errors: &FieldErrors,
    name: &str,
    label: &str,
    value: &str,
    hint: Option<&str>,
    readonly: bool,
) -> Markup {
    let invalid = !errors.of(name).is_empty();
    html! {
        div class="field" {
            label for=(name) { (label) }
            input id=(name) name=(name) value=(value) readonly[readonly]
                aria-invalid=[invalid.then_some("true")]
                aria-describedby=[invalid.then(|| format!("error-{name}"))];
            @if let Some(hint) = hint { p class="hint" { (hint) } }
            (field_errors(errors, name))
        }
    }
}

fn checkbox(name: &str, label: &str, checked: bool, hint: Option<&str>) -> Markup {
    html! {
        div class="check" {
            input type="checkbox" id=(name) name=(name) value="on" checked[checked];
            label for=(name) { (label) }
            @if let Some(hint) = hint { span class="hint" { " — " (hint) } }
        }
    }
}

/// The create and edit form, with what was typed and every error beside its field.
pub fn client_form(
    session: &Session,
    form: &ClientForm,
    errors: &FieldErrors,
    banner: Option<Markup>,
) -> Markup {
    let editing = form.version.is_some();
    let title = if editing {
        format!("Edit {}", form.client_id)
    } else {
        "New Client".to_owned()
    };
    let action = if editing {
        format!("/clients/{}", encode(&form.client_id))
    } else {
        "/clients".to_owned()
    };
    layout(
        Some(session),
        &title,
        html! {
            h1 { (title) }
            @if editing {
                p class="links" {
                    a href={ (action) "/secret" } { "Set New Secret" } " · "
                    @if session.can(Role::AuditRead) { a href={ (action) "/history" } { "History" } " · " }
                    a href={ (action) "/delete" } class="danger" { "Delete" }
                }
            }
            @if let Some(banner) = banner { (banner) }
            @if !errors.is_empty() {
                div class="errors" role="alert" tabindex="-1" id="errors" {
                    p { "The client was not saved. Please correct:" }
                    ul {
                        @for (field, messages) in &errors.0 {
                            @for message in messages {
                                li { a href={ "#" (anchor(field)) } { code { (field) } } ": " (message) }
                            }
                        }
                    }
                }
            }
            form method="post" action=(action) class="client-form" novalidate {
                input type="hidden" name="csrf" value=(session.csrf_token);
                @if let Some(version) = form.version {
                    input type="hidden" name="version" value=(version);
                }
                fieldset {
                    legend { "Basic Information" }
                    (text_input(errors, "client_id", "Client ID", &form.client_id,
                        Some(if editing { "Cannot be changed after creation." } else { "Unique; letters, digits and - . _ ~; cannot be changed later." }), editing))
                    (text_input(errors, "client_name", "Client Name", &form.client_name, None, false))
                    (text_input(errors, "client_uri", "Client URI", &form.client_uri, Some("Base URL of the client application."), false))
                    @if !editing {
                        div class="field" {
                            label for="client_secret" { "Client Secret" }
                            // A typed secret is never sent back in a page: only once, when created.
                            input id="client_secret" name="client_secret" type="password" autocomplete="new-password";
                            @if form.client_secret.is_empty() {
                                p class="hint" { "For confidential clients. Leave empty to have a strong one generated and shown once." }
                            } @else {
                                p class="hint warning" { "The secret you typed is not sent back to the page: type it again, or leave it empty to have one generated." }
                            }
                            (field_errors(errors, "client_secret"))
                        }
                    } @else {
                        (field_errors(errors, "client_secret"))
                    }
                }
                fieldset {
                    legend { "Options" }
                    (checkbox("require_client_secret", "Require Client Secret", form.require_client_secret, Some("the client must authenticate with a secret")))
                    (checkbox("enabled", "Enabled", form.enabled, Some("the client can be used for authentication")))
                    (checkbox("offline_access", "Offline Access (Refresh Tokens)", form.offline_access, Some("the client may request refresh tokens")))
                    (checkbox("require_pkce", "Require PKCE", form.require_pkce, Some("authorization code requests must use PKCE")))
                    (field_errors(errors, "require_client_secret"))
                    (field_errors(errors, "offline_access"))
                }
                fieldset {
                    legend { "Allowed Grant Types" }
                    @for (grant, use_case) in GRANT_TYPES {
                        div class="check" {
                            input type="checkbox" id={ "grant-" (grant) } name="grant_types" value=(grant)
                                checked[form.grant_types.iter().any(|g| g == grant)];
                            label for={ "grant-" (grant) } { code { (grant) } }
                            span class="hint" { " — " (use_case) }
                        }
                    }
                    (field_errors(errors, "grant_types"))
                }
                @for field in LIST_FIELDS {
                    fieldset id=(anchor(field.name)) {
                        legend { (field.label) }
                        @if field.name == "allowed_cors_origins" {
                            p class="hint" { "Origins only: no path and no trailing slash (e.g. https://myapp.example.com)." }
                        }
                        (field_errors(errors, field.name))
                        @let entries = form.list(field.name);
                        @if entries.is_empty() { p class="hint" { "None." } }
                        @for (index, value) in entries.iter().enumerate() {
                            @let path = format!("{}[{index}]", field.name);
                            @let id = anchor(&path);
                            @let messages = errors.of(&path);
                            div class="entry" {
                                label for=(id) class="visually-hidden" { (field.label) " " (index + 1) }
                                input id=(id) name=(field.name) value=(value) placeholder=(field.example)
                                    list=[(field.name == "allowed_scopes").then_some("common-scopes")]
                                    aria-invalid=[(!messages.is_empty()).then_some("true")];
                                button type="submit" name="action" value={ "remove:" (field.name) ":" (index) } class="small"
                                    aria-label={ "Remove " (field.label) " " (index + 1) } { "Remove" }
                                @for message in messages {
                                    p class="field-error" {
                                        (message)
                                        @if let Some(fixed) = suggested_origin(message) {
                                            " "
                                            button type="submit" name="action" class="small"
                                                value={ "replace:" (field.name) ":" (index) ":" (fixed) } {
                                                "Use " (fixed)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        button type="submit" name="action" value={ "add:" (field.name) } class="small" { "Add" }
                    }
                }
                datalist id="common-scopes" {
                    @for (scope, description) in COMMON_SCOPES { option value=(scope) { (description) } }
                }
                details class="scopes-help" {
                    summary { "Common scopes" }
                    dl { @for (scope, description) in COMMON_SCOPES { dt { code { (scope) } } dd { (description) } } }
                }
                div class="field" {
                    label for="reason" { "Reason for the change" }
                    input id="reason" name="reason" value=(form.reason) maxlength="500" placeholder="Optional; recorded in the history";
                }
                div class="buttons" {
                    button type="submit" name="action" value="save" class="primary" { "Save" }
                    a class="button" href="/clients" { "Cancel" }
                }
            }
        },
    )
}

/// A short notice at the top of a page.
pub fn notice(text: &str) -> Markup {
    html! { p class="notice" role="status" { (text) } }
}

/// The element id of a field path (`redirect_uris[1]` → `redirect_uris-1`).
pub fn anchor(field: &str) -> String {
    field.replace('[', "-").replace(']', "")
}

/// Who changed the client since the form was loaded, and what: shown instead of saving.
pub fn conflict(changes: &[HistoryEntry], loaded: u64) -> Markup {
    html! {
        div class="conflict" role="alert" {
            h2 { "Someone changed this client while you were editing" }
            p { "Your changes were not saved: the client is no longer at version " (loaded) "." }
            @for entry in changes {
                p {
                    "Version " (entry.event.sequence) ": "
                    strong { (entry.event.metadata.actor) }
                    " at " (entry.event.metadata.recorded_at.format("%Y-%m-%d %H:%M:%S UTC"))
                    @if let Some(reason) = &entry.event.metadata.reason { " (“" (reason) "”)" }
                }
                (changes_list(entry))
            }
            p { a class="button" href={ "/clients/" (encode(&changes.first().map(|e| e.event.aggregate_id.clone()).unwrap_or_default())) } {
                "Reload the client (discards your changes)" } }
        }
    }
}

fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "—".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) if items.is_empty() => "—".to_owned(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), ToOwned::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

fn changes_list(entry: &HistoryEntry) -> Markup {
    html! {
        @if entry.changes.is_empty() {
            p class="hint" { "No field changed." }
        } @else {
            table class="changes" {
                thead { tr { th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                tbody {
                    @for change in &entry.changes {
                        tr {
                            td { code { (change.field) } }
                            td { (value_text(&change.before)) }
                            td { (value_text(&change.after)) }
                        }
                    }
                }
            }
        }
    }
}

/// The new secret, shown once (the page is not stored by the browser, and no URL carries it).
pub fn one_time_secret(session: &Session, client_id: &str, secret: &str, what: &str) -> Markup {
    layout(
        Some(session),
        "New secret",
        html! {
            h1 { (what) }
            div class="secret-box" role="alert" {
                p class="warning" {
                    strong { "Copy this secret now." }
                    " It is shown only once: the registry keeps only a hash of it, and this \
                     page cannot be shown again."
                }
                label for="secret" { "Client Secret of " code { (client_id) } }
                div class="secret-row" {
                    input id="secret" readonly value=(secret) spellcheck="false" autocomplete="off";
                    button type="button" class="primary" data-copy="#secret" { "Copy" }
                }
            }
            p { a class="button" href={ "/clients/" (encode(client_id)) } { "Done" } }
        },
    )
}

/// "Set New Secret": generate or enter one, keep the previous one valid for a while or not.
pub fn set_new_secret(session: &Session, client: &ClientView, error: Option<&str>) -> Markup {
    let path = format!("/clients/{}", encode(&client.client_id));
    layout(
        Some(session),
        "Set New Secret",
        html! {
            h1 { "Set New Secret — " code { (client.client_id) } }
            p { "The existing secret is not displayed (only a hash of it is kept)." }
            @if let Some(error) = error { p class="error" role="alert" { (error) } }
            form method="post" action={ (path) "/secret" } {
                input type="hidden" name="csrf" value=(session.csrf_token);
                input type="hidden" name="version" value=(client.version);
                fieldset {
                    legend { "New secret" }
                    div class="check" {
                        input type="radio" id="generate" name="mode" value="generate" checked;
                        label for="generate" { "Generate a strong secret (256 bits)" }
                    }
                    div class="check" {
                        input type="radio" id="enter" name="mode" value="enter";
                        label for="enter" { "Enter a secret" }
                    }
                    div class="field" {
                        label for="client_secret" { "New Client Secret" }
                        input id="client_secret" name="client_secret" type="password" autocomplete="new-password";
                        p class="hint" { "Only used with “Enter a secret”: 16 to 256 characters." }
                    }
                }
                div class="field" {
                    label for="previous_secret_valid_for" { "Keep the previous secret valid" }
                    select id="previous_secret_valid_for" name="previous_secret_valid_for" {
                        option value="0" selected { "No — it stops working at once" }
                        option value="3600" { "For 1 hour" }
                        option value="86400" { "For 1 day" }
                        option value="604800" { "For 7 days" }
                        option value="2592000" { "For 30 days" }
                    }
                    p class="hint" { "Keep it while the applications using this client are given the new one." }
                }
                div class="field" {
                    label for="reason" { "Reason for the change" }
                    input id="reason" name="reason" maxlength="500" placeholder="Optional; recorded in the history";
                }
                div class="buttons" {
                    button type="submit" class="primary" { "Save" }
                    a class="button" href=(path) { "Cancel" }
                }
            }
        },
    )
}

/// The delete confirmation: names the client, repeats the guide's warning, wants the id typed.
/// A partial (in the dialog) or a whole page.
pub fn delete_confirmation(
    session: &Session,
    client: &ClientView,
    last_authenticated: Option<i64>,
    now: i64,
    error: Option<&str>,
) -> Markup {
    let path = format!("/clients/{}", encode(&client.client_id));
    html! {
        div class="confirm" {
            h2 id="dialog-title" { "Delete " code { (client.client_id) } "?" }
            p class="danger-note" role="alert" {
                strong { "Deleting a client immediately prevents all applications using that client ID from authenticating." }
                " Make sure the client is no longer in use before deleting it."
            }
            p { (client.settings.client_name) }
            @match last_authenticated {
                Some(at) if recent(at, now) => p class="last-seen recent" role="alert" {
                    strong { "Last authenticated " (ago(at, now)) "." }
                    " Applications still use this client."
                },
                Some(at) => p class="last-seen" { "Last authenticated " (ago(at, now)) "." },
                None => p class="last-seen" { "Never authenticated with a secret, as far as this registry knows." },
            }
            @if let Some(error) = error { p class="error" role="alert" { (error) } }
            form method="post" action={ (path) "/delete" } {
                input type="hidden" name="csrf" value=(session.csrf_token);
                input type="hidden" name="version" value=(client.version);
                div class="field" {
                    label for="confirm" { "Type the client ID to confirm" }
                    input id="confirm" name="confirm" autocomplete="off" spellcheck="false" required;
                }
                div class="field" {
                    label for="delete-reason" { "Reason for the change" }
                    input id="delete-reason" name="reason" maxlength="500" placeholder="Optional; recorded in the history";
                }
                div class="buttons" {
                    button type="submit" class="danger" { "Delete" }
                    a class="button" href=(path) data-close-dialog { "Cancel" }
                }
            }
        }
    }
}

/// The delete confirmation as a page of its own (without JavaScript).
pub fn delete_page(
    session: &Session,
    client: &ClientView,
    last_authenticated: Option<i64>,
    now: i64,
    error: Option<&str>,
) -> Markup {
    layout(
        Some(session),
        "Delete client",
        delete_confirmation(session, client, last_authenticated, now, error),
    )
}

/// A client's history: who, when, why, and each field's before and after.
pub fn history(session: &Session, client_id: &str, entries: &[HistoryEntry]) -> Markup {
    let path = format!("/clients/{}", encode(client_id));
    layout(
        Some(session),
        "History",
        html! {
            h1 { "History of " code { (client_id) } }
            div class="toolbar" {
                a class="button" href={ (path) "/history.xlsx" } download { "Export to Excel" }
                a class="button" href={ (path) "/history.pdf" } download { "Export to PDF" }
                a class="button" href=(path) { "Back to the client" }
            }
            ol class="history" reversed {
                @for entry in entries.iter().rev() {
                    li {
                        h2 {
                            "Version " (entry.event.sequence) " · " (entry.event.payload.type_name())
                        }
                        p class="meta" {
                            strong { (entry.event.metadata.actor) } " · "
                            time datetime=(entry.event.metadata.recorded_at.to_rfc3339()) {
                                (entry.event.metadata.recorded_at.format("%Y-%m-%d %H:%M:%S UTC"))
                            }
                            @if let Some(reason) = &entry.event.metadata.reason { " · “" (reason) "”" }
                            " · "
                            a href={ (path) "/versions/" (entry.event.sequence) } { "View as of this version" }
                        }
                        (changes_list(entry))
                    }
                }
            }
        },
    )
}

/// A client as it was at a version, or (`current`) as it is, read-only.
pub fn as_of(session: &Session, client: &ClientView, current: bool) -> Markup {
    let settings = &client.settings;
    let list = |values: Vec<String>| {
        if values.is_empty() {
            "—".to_owned()
        } else {
            values.join(", ")
        }
    };
    layout(
        Some(session),
        if current { "Client" } else { "Client version" },
        html! {
            @if current {
                h1 { "Client " code { (client.client_id) } }
                p { "Last changed " (client.updated_at.format("%Y-%m-%d %H:%M:%S UTC")) " (version " (client.version) ")." }
            } @else {
                h1 { code { (client.client_id) } " as of version " (client.version) }
                p { "As it was after the change of " (client.updated_at.format("%Y-%m-%d %H:%M:%S UTC")) "." }
            }
            dl class="view" {
                dt { "Client Name" } dd { (settings.client_name) }
                dt { "Client URI" } dd { (settings.client_uri.as_ref().map_or("—".to_owned(), ToString::to_string)) }
                dt { "Require Client Secret" } dd { (yes_no(settings.require_client_secret)) }
                dt { "Enabled" } dd { (yes_no(settings.enabled)) }
                dt { "Offline Access (Refresh Tokens)" } dd { (yes_no(settings.offline_access)) }
                dt { "Require PKCE" } dd { (yes_no(settings.require_pkce)) }
                dt { "Allowed Grant Types" } dd { (list(settings.grant_types.iter().map(|g| g.as_str().to_owned()).collect())) }
                dt { "Redirect URIs" } dd { (list(settings.redirect_uris.iter().map(ToString::to_string).collect())) }
                dt { "Post Logout Redirect URIs" } dd { (list(settings.post_logout_redirect_uris.iter().map(ToString::to_string).collect())) }
                dt { "Allowed CORS Origins" } dd { (list(settings.allowed_cors_origins.iter().map(ToString::to_string).collect())) }
                dt { "Allowed Scopes" } dd { (list(settings.allowed_scopes.iter().map(ToString::to_string).collect())) }
                dt { "Secrets" } dd { (client.secrets.len()) }
            }
            @if session.can(Role::AuditRead) {
                p { a class="button" href={ "/clients/" (encode(&client.client_id)) "/history" } {
                    @if current { "History" } @else { "Back to the history" }
                } }
            }
        },
    )
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "Yes"
    } else {
        "No"
    }
}
