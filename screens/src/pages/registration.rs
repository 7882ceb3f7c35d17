//! Dynamic registration's initial access tokens: the list with a form to make one, the one
//! made (its token shown once), and one token's policy with the clients it registered.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::registration::TokenForm;
use registry_api::registration::tokens::TokenResponse;

const GRANTS: [&str; 4] = [
    "authorization_code",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
    "refresh_token",
];
const METHODS: [&str; 4] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

fn when(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn uses(token: &TokenResponse) -> String {
    match token.max_uses {
        Some(max) => format!("{} of {max}", token.uses),
        None => format!("{} (no limit)", token.uses),
    }
}

/// Every token, and the form to make one (with what was typed and its errors).
pub fn registration(
    session: &Session,
    tokens: &[TokenResponse],
    form: &TokenForm,
    errors: &FieldErrors,
) -> Markup {
    layout(
        Some(session),
        "Dynamic registration",
        html! {
            h1 { "Dynamic registration" }
            p { "Applications register themselves at " code { "POST /register" } " (RFC 7591) with an initial access token made here; each token admits a number of registrations until it expires, under its policy." }
            @if tokens.is_empty() {
                p class="empty" { "No initial access token yet." }
            } @else {
                div class="table-wrap" {
                    table class="clients" {
                        thead { tr { th { "Token" } th { "Description" } th { "Expires" } th { "Used" } th { "State" } th { span class="visually-hidden" { "Actions" } } } }
                        tbody {
                            @for token in tokens {
                                tr {
                                    td class="id" data-label="Token" { a href={ "/registration/" (encode(&token.token_id)) } { code { (token.token_id) } } }
                                    td data-label="Description" { (token.description) }
                                    td data-label="Expires" { (when(&token.expires_at)) }
                                    td data-label="Used" { (uses(token)) }
                                    td data-label="State" {
                                        @if token.usable { span class="badge on" { "Usable" } }
                                        @else if token.revoked_at.is_some() { span class="badge off" { "Revoked" } }
                                        @else { span class="badge off" { "Spent or expired" } }
                                    }
                                    td class="actions" {
                                        @if token.revoked_at.is_none() {
                                            form method="post" action={ "/registration/" (encode(&token.token_id)) "/revoke" } {
                                                input type="hidden" name="csrf" value=(session.csrf_token);
                                                button type="submit" class="small danger" { "Revoke" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            (new_token(session, form, errors))
        },
    )
}

fn new_token(session: &Session, form: &TokenForm, errors: &FieldErrors) -> Markup {
    let all: Vec<&String> = errors.0.values().flatten().collect();
    html! {
        h2 id="new" { "New initial access token" }
        @if !all.is_empty() {
            div class="errors" role="alert" {
                p { "The token was not made. Please correct:" }
                ul { @for (field, messages) in &errors.0 { @for message in messages { li { code { (field) } ": " (message) } } } }
            }
        }
        form method="post" action="/registration" class="client-form" novalidate {
            input type="hidden" name="csrf" value=(session.csrf_token);
            fieldset {
                legend { "Token" }
                (text_input(errors, "description", "Description", &form.description, Some("Who holds it, what for."), false))
                (text_input(errors, "days", "Valid for (days)", &form.days, None, false))
                (field_errors(errors, "expires_in"))
                (text_input(errors, "max_uses", "Registrations it admits", &form.max_uses, Some("Empty: any number until it expires."), false))
            }
            fieldset {
                legend { "Policy" }
                p class="hint" { "What the clients it admits may be. Nothing checked: whatever the registry allows." }
                p { strong { "Grant types" } }
                @for grant in GRANTS {
                    div class="check" {
                        input type="checkbox" id={ "grant-" (grant) } name="grant_types" value=(grant) checked[form.grant_types.iter().any(|g| g == grant)];
                        label for={ "grant-" (grant) } { code { (grant) } }
                    }
                }
                (field_errors(errors, "policy.grant_types"))
                p { strong { "Authentication methods" } }
                @for method in METHODS {
                    div class="check" {
                        input type="checkbox" id={ "method-" (method) } name="methods" value=(method) checked[form.methods.iter().any(|m| m == method)];
                        label for={ "method-" (method) } { code { (method) } }
                    }
                }
                div class="field" {
                    label for="patterns" { "Redirect URI patterns" }
                    textarea id="patterns" name="patterns" rows="3" spellcheck="false" { (form.patterns) }
                    p class="hint" { "One per line; " code { "*" } " stands for one host label or one path segment: " code { "https://*.partner.example/callback" } "." }
                }
                (text_input(errors, "scopes", "Scopes", &form.scopes, Some("Space-separated; also what a client that asks for none gets."), false))
                (text_input(errors, "name_prefix", "Client name prefix", &form.name_prefix, None, false))
                (checkbox("hold", "Hold for approval", form.hold, Some("registered clients start disabled, and each change they make holds them again")))
                div class="field" {
                    label for="refuse" { "Refuse clients with findings of" }
                    select id="refuse" name="refuse" {
                        option value="" selected[form.refuse.is_empty()] { "No profile" }
                        @for profile in registry_domain::client::findings::Profile::ALL {
                            option value=(profile.name()) selected[form.refuse == profile.name()] { (profile.title()) }
                        }
                    }
                }
            }
            div class="buttons" {
                button type="submit" class="primary" { "Make the token" }
            }
        }
    }
}

/// The token just made: shown this once.
pub fn registration_created(session: &Session, token: &TokenResponse) -> Markup {
    let plaintext = token.initial_access_token.as_deref().unwrap_or_default();
    let admits = match token.max_uses {
        Some(1) => "one registration".to_owned(),
        Some(max) => format!("{max} registrations"),
        None => "any number of registrations".to_owned(),
    };
    layout(
        Some(session),
        "New initial access token",
        html! {
            h1 { "Initial access token " code { (token.token_id) } }
            div class="secret-box" role="alert" {
                p class="warning" {
                    strong { "Copy this token now." }
                    " It is shown only once: the registry keeps only a digest of it."
                }
                label for="secret" { "Initial access token" }
                div class="secret-row" {
                    input id="secret" readonly value=(plaintext) spellcheck="false" autocomplete="off";
                    button type="button" class="primary" data-copy="#secret" { "Copy" }
                }
            }
            p { "Give it to the application's developers: they send it as " code { "Authorization: Bearer" } " to " code { "POST /register" } ". It admits " (admits) " until " (when(&token.expires_at)) "." }
            p { a class="button" href="/registration" { "Done" } }
        },
    )
}

/// One token: its policy and the clients it registered.
pub fn registration_token(session: &Session, token: &TokenResponse) -> Markup {
    let list = |values: &[String]| {
        if values.is_empty() {
            "any".to_owned()
        } else {
            values.join(", ")
        }
    };
    let policy = &token.policy;
    layout(
        Some(session),
        "Initial access token",
        html! {
            h1 { "Initial access token " code { (token.token_id) } }
            dl class="view" {
                dt { "Description" } dd { (token.description) }
                dt { "Made by" } dd { (token.created_by) ", " (when(&token.created_at)) }
                dt { "Expires" } dd { (when(&token.expires_at)) }
                dt { "Used" } dd { (uses(token)) }
                dt { "Grant types" } dd { (list(&policy.grant_types)) }
                dt { "Authentication methods" } dd { (list(&policy.token_endpoint_auth_methods)) }
                dt { "Redirect URI patterns" } dd { (list(&policy.redirect_uri_patterns)) }
                dt { "Scopes" } dd { (list(&policy.scopes)) }
                dt { "Client name prefix" } dd { (policy.client_name_prefix.clone().unwrap_or_else(|| "—".to_owned())) }
                dt { "Hold for approval" } dd { (yes_no(policy.hold_for_approval)) }
                dt { "Refuses findings of" } dd { (policy.refuse_findings_of.clone().unwrap_or_else(|| "—".to_owned())) }
            }
            h2 { "Clients it registered" }
            @match &token.registered_clients {
                Some(ids) if !ids.is_empty() => {
                    ul { @for id in ids { li { a href={ "/clients/" (encode(id)) } { code { (id) } } } } }
                    p { a href={ "/clients?registered_by=" (encode(&token.token_id)) } { "Show them in the client list" } }
                }
                _ => p class="empty" { "None." },
            }
            p { a class="button" href="/registration" { "Back to the tokens" } }
        },
    )
}
