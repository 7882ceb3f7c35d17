//! The pages and partials of the screens: one function each, taking typed view data, no SQL
//! and no business rule. Labels are the admin guide's words; every input has a `<label>`,
//! every list field is a `<fieldset>` with a `<legend>`.

use maud::{html, Markup, DOCTYPE};
use registry_projections::{ClientPage, ClientView, HistoryEntry, ListQuery, SortKey};

use crate::form::{
    encode, suggested_origin, ClientForm, FieldErrors, COMMON_SCOPES, GRANT_TYPES, LIST_FIELDS,
};
use crate::session::Session;
use registry_api::auth::Role;

/// The vendored htmx (see `screens/assets/VENDORED.md`).
pub const HTMX: &str = "/assets/htmx-2.0.11.min.js";

mod actions;
mod edit;
mod findings;
mod history;
mod list;
mod registration;

pub use actions::*;
pub use edit::*;
pub use findings::*;
pub use history::*;
pub use list::*;
pub use registration::*;

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
                            @if session.can(Role::RegistrationAdmin) {
                                a href="/registration" { "Dynamic registration" }
                            }
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

/// A short notice at the top of a page.
pub fn notice(text: &str) -> Markup {
    html! { p class="notice" role="status" { (text) } }
}

/// The element id of a field path (`redirect_uris[1]` → `redirect_uris-1`).
pub fn anchor(field: &str) -> String {
    field.replace('[', "-").replace(']', "")
}

pub(super) fn yes_no(value: bool) -> &'static str {
    if value {
        "Yes"
    } else {
        "No"
    }
}
