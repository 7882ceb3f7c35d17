//! Set New Secret, the secret shown once, and delete with its confirmation.

#[allow(clippy::wildcard_imports)]
use super::*;

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

/// What the delete dialog shows.
#[derive(Debug, Clone, Copy)]
pub struct DeleteDialog<'a> {
    /// The client.
    pub client: &'a ClientView,
    /// When it last passed secret verification (Unix seconds), as far as the registry knows.
    pub last_authenticated: Option<i64>,
    /// Now (Unix seconds).
    pub now: i64,
    /// Why the last attempt was refused.
    pub error: Option<&'a str>,
}

/// The delete confirmation: names the client, repeats the guide's warning, wants the id typed.
/// A partial (in the dialog) or a whole page.
pub fn delete_confirmation(session: &Session, dialog: &DeleteDialog<'_>) -> Markup {
    let DeleteDialog {
        client,
        last_authenticated,
        now,
        error,
    } = *dialog;
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
pub fn delete_page(session: &Session, dialog: &DeleteDialog<'_>) -> Markup {
    layout(
        Some(session),
        "Delete client",
        delete_confirmation(session, dialog),
    )
}
