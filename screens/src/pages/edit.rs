//! The create and edit form, and the conflict shown instead of saving.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::form::ListField;

pub(super) fn field_errors(errors: &FieldErrors, field: &str) -> Markup {
    html! {
        @for message in errors.of(field) {
            p class="field-error" id={ "error-" (field) } { (message) }
        }
    }
}

pub(super) fn text_input(
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

pub(super) fn checkbox(name: &str, label: &str, checked: bool, hint: Option<&str>) -> Markup {
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
                    @if form.token_endpoint_auth_method.as_deref() != Some("private_key_jwt") {
                        a href={ (action) "/secret" } { "Set New Secret" } " · "
                    }
                    @if session.can(Role::AuditRead) { a href={ (action) "/history" } { "History" } " · " }
                    a href={ (action) "/findings" } { "Profile Checks" } " · "
                    @if registry_domain::values::ClientId::names_document(&form.client_id) {
                        a href={ (action) "/document" } { "Metadata Document" } " · "
                    }
                    a href={ (action) "/delete" } class="danger" { "Delete" }
                }
            }
            @if let Some(banner) = banner { (banner) }
            (error_summary(errors))
            form method="post" action=(action) class="client-form" novalidate {
                input type="hidden" name="csrf" value=(session.csrf_token);
                @if let Some(version) = form.version {
                    input type="hidden" name="version" value=(version);
                }
                (basics(form, errors, editing))
                (options(form, errors))
                (keys(form, errors))
                @for field in &LIST_FIELDS[..4] { (list_field(form, errors, field)) }
                (scopes_help())
                (about(form, errors))
                @if form.about.is_some() { (list_field(form, errors, &LIST_FIELDS[4])) }
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

/// Every error at the top of the form, each a link to its field.
fn error_summary(errors: &FieldErrors) -> Markup {
    html! {
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
    }
}

/// "Basic Information": id, name, URI and (when creating) the secret.
fn basics(form: &ClientForm, errors: &FieldErrors, editing: bool) -> Markup {
    html! {
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
    }
}

/// "Options" and "Allowed Grant Types".
fn options(form: &ClientForm, errors: &FieldErrors) -> Markup {
    html! {
        fieldset {
            legend { "Options" }
            (checkbox("require_client_secret", "Require Client Secret", form.require_client_secret, Some("the client must authenticate with a secret")))
            (checkbox("enabled", "Enabled", form.enabled, Some("the client can be used for authentication")))
            (checkbox("offline_access", "Offline Access (Refresh Tokens)", form.offline_access, Some("the client may request refresh tokens")))
            (checkbox("require_pkce", "Require PKCE", form.require_pkce, Some("authorization code requests must use PKCE")))
            (field_errors(errors, "require_client_secret"))
            (field_errors(errors, "offline_access"))
            (auth_method(form, errors))
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
    }
}

/// "Token Endpoint Authentication": how a confidential client sends its secret.
fn auth_method(form: &ClientForm, errors: &FieldErrors) -> Markup {
    // A form from a page older than this field keeps the client's method: so does this page
    // when it comes back from such a post (an Add, an error).
    let chosen = form
        .token_endpoint_auth_method
        .as_deref()
        .unwrap_or(crate::form::KEEP);
    let keep = form.token_endpoint_auth_method.is_none();
    let choices = [
        ("", "Default"),
        ("client_secret_basic", "client_secret_basic"),
        ("client_secret_post", "client_secret_post"),
        ("private_key_jwt", "private_key_jwt"),
        ("none", "none"),
    ];
    html! {
        div class="field" {
            label for="token_endpoint_auth_method" { "Token Endpoint Authentication" }
            select id="token_endpoint_auth_method" name="token_endpoint_auth_method" {
                @if keep { option value=(crate::form::KEEP) selected { "As it is" } }
                @for (value, label) in choices {
                    option value=(value) selected[value == chosen] { (label) }
                }
            }
            p class="hint" {
                "Default: the secret in HTTP Basic for a confidential client, none for a public one. "
                code { "client_secret_post" } " sends the secret in the request body; "
                code { "private_key_jwt" } " signs with a key of Client Keys, and has no secret."
            }
            (field_errors(errors, "token_endpoint_auth_method"))
        }
    }
}

/// "Client Keys": the public keys a `private_key_jwt` client signs with, by value or by URL.
fn keys(form: &ClientForm, errors: &FieldErrors) -> Markup {
    // Like the description: a page that came back from a post without the section keeps
    // the client's keys by leaving it out.
    let Some(keys) = &form.keys else {
        return html! {};
    };
    let invalid = !errors.of("jwks").is_empty();
    // A private key typed by mistake is not sent back in the page, nor anything refused
    // that might be one.
    let private = keys.may_hold_private_key();
    let typed = if private { "" } else { keys.jwks.as_str() };
    html! {
        fieldset id="keys" {
            legend { "Client Keys" }
            (text_input(errors, "jwks_uri", "JWK Set URI", &keys.jwks_uri, Some("https URL where the client publishes its public keys."), false))
            div class="field" {
                label for="jwks" { "JWK Set" }
                textarea id="jwks" name="jwks" rows="6" spellcheck="false"
                    aria-invalid=[invalid.then_some("true")]
                    aria-describedby=[invalid.then_some("error-jwks")] { (typed) }
                @if private {
                    p class="hint warning" { "What you typed may hold a private key: it is not sent back to the page. Paste the public keys only, as a JWK Set." }
                }
                p class="hint" {
                    "Or the keys themselves, as JSON: " code { "{\"keys\": [...]}" }
                    ". Public RSA, P-256 or Ed25519 keys only."
                }
                (field_errors(errors, "jwks"))
            }
        }
    }
}

/// "About the Application": what RFC 7591 §2 says about the client besides its flows.
fn about(form: &ClientForm, errors: &FieldErrors) -> Markup {
    // A form from a page older than this section keeps the client's description: so does
    // this page when it comes back from such a post, by leaving the section out.
    let Some(about) = form.about.clone() else {
        return html! {};
    };
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    let native = about.application_type.as_deref() == Some("native");
    html! {
        fieldset id="about" {
            legend { "About the Application" }
            div class="field" {
                label for="application_type" { "Application Type" }
                select id="application_type" name="application_type" {
                    option value="web" selected[!native] { "Web" }
                    option value="native" selected[native] { "Native (mobile, desktop, CLI)" }
                }
                (field_errors(errors, "application_type"))
            }
            (text_input(errors, "logo_uri", "Logo URI", &text(&about.logo_uri), None, false))
            (text_input(errors, "tos_uri", "Terms of Service URI", &text(&about.tos_uri), None, false))
            (text_input(errors, "policy_uri", "Privacy Policy URI", &text(&about.policy_uri), None, false))
            (text_input(errors, "software_id", "Software ID", &text(&about.software_id), Some("The same for every instance of the software."), false))
            (text_input(errors, "software_version", "Software Version", &text(&about.software_version), None, false))
        }
    }
}

/// One list field (redirect URIs, origins, scopes…): its entries, each removable with its
/// errors (and a suggested fix), and "Add".
fn list_field(form: &ClientForm, errors: &FieldErrors, field: &ListField) -> Markup {
    html! {
        fieldset id=(anchor(field.name)) {
            legend { (field.label) }
            @if field.name == "allowed_cors_origins" {
                p class="hint" { "Origins only: no path and no trailing slash (e.g. https://myapp.example.com)." }
            }
            (field_errors(errors, field.name))
            @let entries = form.list(field.name);
            @if entries.is_empty() { p class="hint" { "None." } }
            @for (index, value) in entries.iter().enumerate() {
                (list_entry(errors, field, index, value))
            }
            button type="submit" name="action" value={ "add:" (field.name) } class="small" { "Add" }
        }
    }
}

fn list_entry(errors: &FieldErrors, field: &ListField, index: usize, value: &str) -> Markup {
    let path = format!("{}[{index}]", field.name);
    let id = anchor(&path);
    let messages = errors.of(&path);
    html! {
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
}

/// The common scopes, offered while typing and explained.
fn scopes_help() -> Markup {
    html! {
        datalist id="common-scopes" {
            @for (scope, description) in COMMON_SCOPES { option value=(scope) { (description) } }
        }
        details class="scopes-help" {
            summary { "Common scopes" }
            dl { @for (scope, description) in COMMON_SCOPES { dt { code { (scope) } } dd { (description) } } }
        }
    }
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
