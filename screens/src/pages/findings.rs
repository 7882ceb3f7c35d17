//! A client's profile checks: what its settings break in OAuth 2.1, RFC 9700 or FAPI 2.0.

#[allow(clippy::wildcard_imports)]
use super::*;
use registry_domain::client::findings::{Finding, Level, Profile};

/// The findings of `client` in `profile`, with the other profiles one click away.
pub fn findings(
    session: &Session,
    client: &ClientView,
    profile: Profile,
    found: &[Finding],
) -> Markup {
    let path = format!("/clients/{}", encode(&client.client_id));
    layout(
        Some(session),
        "Profile checks",
        html! {
            h1 { "Profile checks of " code { (client.client_id) } }
            nav class="profiles" aria-label="Profiles" {
                @for other in Profile::ALL {
                    @if other == profile {
                        a class="button primary" href={ (path) "/findings?profile=" (other.name()) } aria-current="page" { (other.title()) }
                    } @else {
                        a class="button" href={ (path) "/findings?profile=" (other.name()) } { (other.title()) }
                    }
                }
            }
            @if found.is_empty() {
                p class="notice" role="status" { "No findings: the client's settings meet " (profile.title()) "." }
            } @else {
                p class="count" { (found.len()) " finding" @if found.len() != 1 { "s" } " in " (profile.title()) ", at version " (client.version) "." }
                ul class="findings" {
                    @for finding in found {
                        li {
                            @match finding.level {
                                Level::Must => span class="badge off" { "Must" },
                                Level::Should => span class="badge warn" { "Should" },
                            }
                            " " code { (finding.field) }
                            p { (finding.message) }
                            p class="meta" { (finding.section) " · " code { (finding.rule) } }
                        }
                    }
                }
            }
            p class="hint" { "Findings are advice: the registry accepts every client its own rules accept." }
            p { a class="button" href=(path) { "Back to the client" } }
        },
    )
}
