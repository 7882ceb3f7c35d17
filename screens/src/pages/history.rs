//! A client's history (each change, field by field) and the client as of a version.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn value_text(value: &serde_json::Value) -> String {
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

pub(super) fn changes_list(entry: &HistoryEntry) -> Markup {
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
                dt { "Token Endpoint Authentication" } dd { code { (settings.auth_method().name()) } }
                @if let Some(uri) = &settings.keys.jwks_uri { dt { "JWK Set URI" } dd { (uri) } }
                @if let Some(jwks) = &settings.keys.jwks { dt { "Keys" } dd { (list(jwks.kids())) } }
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
