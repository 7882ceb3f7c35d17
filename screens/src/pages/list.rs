//! The client list: its table, sorting, paging and export links.

#[allow(clippy::wildcard_imports)]
use super::*;
use registry_projections::ListItem;

/// The list's filters that no column holds (as the API's `registered_by`, `findings`,
/// `secret_expires_within_days`): each a set of clients the list pages through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetFilters {
    /// `any`, or an initial access token's id: clients registered dynamically (with it).
    pub registered_by: Option<String>,
    /// A profile: clients with findings in it.
    pub findings: Option<String>,
    /// Clients whose current secret ends within this many days.
    pub secret_expires_within_days: Option<u32>,
}

impl SetFilters {
    /// Whether any is set.
    pub fn any(&self) -> bool {
        *self != Self::default()
    }

    fn params(&self) -> Vec<String> {
        let mut params = Vec::new();
        if let Some(by) = &self.registered_by {
            params.push(format!("registered_by={}", encode(by)));
        }
        if let Some(profile) = &self.findings {
            params.push(format!("findings={}", encode(profile)));
        }
        if let Some(days) = self.secret_expires_within_days {
            params.push(format!("secret_expires_within_days={days}"));
        }
        params
    }
}

/// What the list shows: the query (search, enabled, sort, page, the set filters' clients)
/// and the set filters as asked for.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// The query.
    pub query: ListQuery,
    /// The set filters.
    pub filters: SetFilters,
}

impl std::ops::Deref for Listing {
    type Target = ListQuery;

    fn deref(&self) -> &ListQuery {
        &self.query
    }
}

/// Where a list link goes: the same search and filters, another sort or page.
pub(super) fn list_url(query: &Listing, sort: Option<&str>, cursor: Option<&str>) -> String {
    let mut params = Vec::new();
    if let Some(search) = &query.search {
        params.push(format!("search={}", encode(search)));
    }
    if let Some(enabled) = query.enabled {
        params.push(format!("enabled={enabled}"));
    }
    params.extend(query.filters.params());
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

pub(super) fn sort_name(query: &ListQuery) -> String {
    format!(
        "{}{}",
        if query.sort.descending { "-" } else { "" },
        query.sort.key.name()
    )
}

/// The export links: the same search, filter and sort as the list.
pub(super) fn export_url(query: &Listing, extension: &str) -> String {
    let list = list_url(query, None, None);
    let params = list.split_once('?').map(|(_, p)| p).unwrap_or_default();
    if params.is_empty() {
        format!("/clients/export.{extension}")
    } else {
        format!("/clients/export.{extension}?{params}")
    }
}

/// A sortable column header: its link flips the direction when it is the current sort.
pub(super) fn sort_header(query: &Listing, key: SortKey, label: &str) -> Markup {
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
pub(super) fn recent(at: i64, now: i64) -> bool {
    now - at < 86_400
}

/// The client list: toolbar, then the table (the part search and paging replace).
pub fn client_list(
    session: &Session,
    query: &Listing,
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
                    (set_filter_controls(&query.filters))
                    @if query.sort.key != SortKey::ClientId || query.sort.descending {
                        input type="hidden" name="sort" value=(sort_name(query));
                    }
                    button type="submit" { "Search" }
                }
                // The exports cover the search and Enabled only: not offered for a list the
                // set filters narrow, which they would not match.
                @if !query.filters.any() {
                    a class="button" href=(export_url(query, "xlsx")) download { "Export to Excel" }
                    a class="button" href=(export_url(query, "pdf")) download { "Export to PDF" }
                }
                a class="button" href=(list_url(query, None, None)) { "Refresh Data" }
                a class="button" href="/findings" { "Profile Checks" }
            }
            (client_table(session, query, page, seen))
        },
    )
}

/// The set filters' selects, in the search form (each change reloads the table).
fn set_filter_controls(filters: &SetFilters) -> Markup {
    let by = filters.registered_by.as_deref();
    let token = by.filter(|by| *by != "any");
    let profiles = [
        ("rfc9700", "RFC 9700"),
        ("oauth2.1", "OAuth 2.1"),
        ("fapi2", "FAPI 2.0"),
    ];
    let within = filters.secret_expires_within_days;
    let reload = |id: &'static str, name: &'static str, options: Markup| {
        html! {
            span class="filter" {
                label for=(id) { (name) }
                select id=(id) name=(id) hx-get="/clients" hx-trigger="change"
                    hx-target="#client-table" hx-select="#client-table" hx-swap="outerHTML"
                    hx-push-url="true" hx-include="closest form" { (options) }
            }
        }
    };
    html! {
        (reload("registered_by", "Registered", html! {
            option value="" selected[by.is_none()] { "By anyone" }
            option value="any" selected[by == Some("any")] { "Dynamically" }
            @if let Some(token) = token {
                option value=(token) selected { "With token " (token) }
            }
        }))
        (reload("findings", "Findings", html! {
            option value="" selected[filters.findings.is_none()] { "Any" }
            @for (value, label) in profiles {
                option value=(value) selected[filters.findings.as_deref() == Some(value)] { "In " (label) }
            }
        }))
        (reload("secret_expires_within_days", "Secret ends", html! {
            option value="" selected[within.is_none()] { "Any time" }
            @for days in [7_u32, 30, 90] {
                option value=(days) selected[within == Some(days)] { "Within " (days) " days" }
            }
            @if let Some(days) = within.filter(|d| ![7, 30, 90].contains(d)) {
                option value=(days) selected { "Within " (days) " days" }
            }
        }))
    }
}

/// The table of a page of clients, with its count and pager.
pub fn client_table(
    session: &Session,
    query: &Listing,
    page: &ClientPage,
    seen: &LastSeen,
) -> Markup {
    html! {
        div id="client-table" {
            p class="count" aria-live="polite" {
                @if page.total == 1 { "1 client" } @else { (page.total) " clients" }
                @if let Some(search) = &query.search { " matching “" (search) "”" }
            }
            @if page.items.is_empty() {
                (empty_list(session, query))
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
                        tbody { @for item in &page.items { (client_row(session, item, seen)) } }
                    }
                }
            }
            (pager(query, page))
        }
    }
}

/// What an empty list says: no match, or nothing registered yet.
fn empty_list(session: &Session, query: &Listing) -> Markup {
    html! {
        @if query.search.is_some() || query.enabled.is_some() || query.filters.any() {
            p class="empty" { "No client matches this search. Try part of an id or a name, or "
                a href="/clients" { "show every client" } "." }
        } @else {
            p class="empty" {
                "No clients are registered yet."
                @if session.can(Role::ClientsWrite) { " Register the first one with " a href="/clients/new" { "New Client" } "." }
            }
        }
    }
}

/// One client's row, with the actions the session's roles allow.
fn client_row(session: &Session, item: &ListItem, seen: &LastSeen) -> Markup {
    html! {
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
            td class="actions" { (row_actions(session, &item.client_id)) }
        }
    }
}

fn row_actions(session: &Session, client_id: &str) -> Markup {
    let write = session.can(Role::ClientsWrite);
    let audit = session.can(Role::AuditRead);
    let path = format!("/clients/{}", encode(client_id));
    html! {
        @if write {
            a class="button small" href=(path) { "Edit" }
            a class="button small danger" href={ (path) "/delete" }
              hx-get={ (path) "/delete" } hx-target="#dialog" hx-swap="innerHTML" { "Delete" }
        } @else {
            a class="button small" href=(path) { "View" }
        }
        details class="menu" {
            summary aria-label={ "More actions for " (client_id) } { "⋯" }
            ul {
                li { a href=(path) { @if write { "Edit" } @else { "View" } } }
                @if write { li { a href={ (path) "/secret" } { "Set New Secret" } } }
                @if audit { li { a href={ (path) "/history" } { "History" } } }
                @if write { li { a href={ (path) "/delete" } class="danger" { "Delete" } } }
            }
        }
    }
}

/// First and next page, loaded in place with htmx (plain links without it).
fn pager(query: &Listing, page: &ClientPage) -> Markup {
    html! {
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
