//! A client's profile checks: what its settings break in OAuth 2.1, RFC 9700 or FAPI 2.0.

#[allow(clippy::wildcard_imports)]
use super::*;
use registry_api::clients::findings::FindingsReport;
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

/// Every client with findings in `profile`: the registry at a glance.
pub fn findings_report(
    session: &Session,
    profile: Profile,
    must_only: bool,
    report: &FindingsReport,
) -> Markup {
    let link = |profile: Profile, must_only: bool| {
        format!(
            "/findings?profile={}{}",
            profile.name(),
            if must_only { "&level=must" } else { "" }
        )
    };
    layout(
        Some(session),
        "Profile checks",
        html! {
            h1 { "Profile checks" }
            nav class="profiles" aria-label="Profiles" {
                @for other in Profile::ALL {
                    @if other == profile {
                        a class="button primary" href=(link(other, must_only)) aria-current="page" { (other.title()) }
                    } @else {
                        a class="button" href=(link(other, must_only)) { (other.title()) }
                    }
                }
            }
            p {
                @if must_only {
                    "Clients that do not conform. " a href=(link(profile, false)) { "Show every finding" }
                } @else {
                    "Every finding. " a href=(link(profile, true)) { "Only clients that do not conform" }
                }
            }
            p class="count" {
                (report.clients.len()) " of " (report.checked) " clients with findings in " (profile.title()) "."
            }
            @if report.clients.is_empty() {
                p class="notice" role="status" { "No findings." }
            } @else {
                ul class="findings" {
                    @for client in &report.clients {
                        li {
                            a href={ "/clients/" (encode(&client.client_id)) "/findings?profile=" (profile.name()) } {
                                code { (client.client_id) }
                            }
                            " " (client.client_name)
                            p class="meta" {
                                @for (i, finding) in client.findings.iter().enumerate() {
                                    @if i > 0 { " · " }
                                    (finding.rule) " (" code { (finding.field) } ")"
                                }
                            }
                        }
                    }
                }
            }
            p class="hint" { "Findings are advice: the registry accepts every client its own rules accept." }
        },
    )
}
