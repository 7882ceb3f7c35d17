use std::net::IpAddr;

use url::{Host, Url};

use super::{has_control, string_value, ValueError};

/// The longest accepted URL, in bytes. Browsers and proxies start failing above ~2 KB.
pub const MAX_URL_LEN: usize = 2000;

/// Schemes that execute or embed content instead of naming a location; never a redirect target.
const DANGEROUS_SCHEMES: &[&str] = &["javascript", "data", "file", "vbscript", "blob", "about"];

/// The home page of a client (`client_uri`, RFC 7591 §2): an absolute `https` URL, or `http`
/// on a loopback host; no fragment, no user-info, no wildcard.
///
/// The value is kept exactly as given (after validation): OAuth compares URIs as strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientUri(String);

impl ClientUri {
    /// Validates a client URI.
    ///
    /// # Errors
    /// A [`ValueError`] explaining the first rule the URL breaks.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        check_url(s, false).map(|()| Self(s.to_owned()))
    }
}

/// Where the identity service may send the browser after login or logout (`redirect_uris`,
/// `post_logout_redirect_uris`).
///
/// Rules (RFC 6749 §3.1.2, RFC 8252 §7, OAuth 2.0 Security BCP RFC 9700 §4.1): absolute; no
/// fragment; no user-info; no wildcard; `https`, or `http` only on a loopback host (RFC 8252
/// §7.3); or a private-use scheme for native apps written as a reversed domain name containing a
/// period (RFC 8252 §7.1, e.g. `com.example.app:/callback`). `javascript:`, `data:`, `file:` and
/// friends are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RedirectUri(String);

impl RedirectUri {
    /// Validates a redirect URI.
    ///
    /// # Errors
    /// A [`ValueError`] explaining the first rule the URI breaks.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        check_url(s, true).map(|()| Self(s.to_owned()))
    }
}

string_value!(ClientUri);
string_value!(RedirectUri);

/// True for `localhost`, any `127.0.0.0/8` address and `[::1]` (RFC 8252 §7.3, §8.3).
pub(crate) fn is_loopback(host: Option<Host<&str>>) -> bool {
    match host {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses `s` as an absolute URL with no surrounding spaces, control characters or wildcards.
pub(crate) fn parse_absolute(s: &str) -> Result<Url, ValueError> {
    if s.is_empty() {
        return Err(ValueError::new("must not be empty"));
    }
    if s.len() > MAX_URL_LEN {
        return Err(ValueError::new(format!(
            "must be at most {MAX_URL_LEN} characters"
        )));
    }
    if has_control(s) || s.contains(char::is_whitespace) {
        return Err(ValueError::new(
            "must not contain spaces or control characters",
        ));
    }
    if s.contains('*') {
        return Err(ValueError::new(
            "wildcards (*) are not allowed: list every URL exactly",
        ));
    }
    Url::parse(s).map_err(|_| {
        ValueError::new("must be an absolute URL such as https://app.example.com/callback")
    })
}

fn check_url(s: &str, allow_private_scheme: bool) -> Result<(), ValueError> {
    let url = parse_absolute(s)?;
    let scheme = url.scheme();
    if DANGEROUS_SCHEMES.contains(&scheme) {
        return Err(ValueError::new(format!(
            "the {scheme}: scheme is not allowed"
        )));
    }
    if url.fragment().is_some() || s.contains('#') {
        return Err(ValueError::new("must not contain a fragment (#…)"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ValueError::new(
            "must not contain user information (user:password@)",
        ));
    }
    match scheme {
        "https" => Ok(()),
        "http" if is_loopback(url.host()) => Ok(()),
        "http" => Err(ValueError::new(
            "http is only allowed on a loopback host (localhost, 127.0.0.1, [::1]); use https",
        )),
        _ if !allow_private_scheme => Err(ValueError::new(
            "must use https (or http on a loopback host)",
        )),
        // RFC 8252 §7.1: a private-use scheme is a reversed domain name the app controls.
        _ if scheme.contains('.') => Ok(()),
        _ => Err(ValueError::new(format!(
            "must use https, http on a loopback host, or a private-use scheme written as a \
             reversed domain name such as com.example.app:/callback (found {scheme}:)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect_error(s: &str) -> String {
        match RedirectUri::parse(s) {
            Ok(_) => format!("{s} accepted"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn https_redirect_uri_is_accepted_as_given() {
        let uri = "https://myapp.example.com/callback/";
        assert_eq!(
            RedirectUri::parse(uri).map(String::from),
            Ok(uri.to_owned())
        );
    }

    #[test]
    fn redirect_uri_with_fragment_is_rejected() {
        assert!(redirect_error("https://app.example.com/cb#x").contains("fragment"));
    }

    #[test]
    fn javascript_redirect_uri_is_rejected() {
        assert!(redirect_error("javascript:alert(1)").contains("javascript"));
        assert!(redirect_error("data:text/html,hi").contains("data"));
        assert!(redirect_error("file:///etc/passwd").contains("file"));
    }

    #[test]
    fn http_on_a_public_host_is_rejected_but_loopback_is_accepted() {
        assert!(redirect_error("http://app.example.com/cb").contains("loopback"));
        assert!(RedirectUri::parse("http://127.0.0.1:7777/cb").is_ok());
        assert!(RedirectUri::parse("http://localhost:4200/").is_ok());
        assert!(RedirectUri::parse("http://[::1]:8080/cb").is_ok());
    }

    #[test]
    fn private_use_scheme_needs_a_reversed_domain() {
        assert!(RedirectUri::parse("com.example.app:/oauth2redirect").is_ok());
        assert!(redirect_error("myapp:/cb").contains("reversed domain"));
    }

    #[test]
    fn client_uri_refuses_private_use_schemes() {
        assert!(ClientUri::parse("com.example.app:/home").is_err());
        assert!(ClientUri::parse("https://app.example.com").is_ok());
    }

    #[test]
    fn wildcard_user_info_and_relative_urls_are_rejected() {
        assert!(redirect_error("https://*.example.com/cb").contains("wildcard"));
        assert!(redirect_error("https://user:pw@example.com/cb").contains("user"));
        assert!(redirect_error("/callback").contains("absolute"));
        assert!(redirect_error("https://example.com/a b").contains("spaces"));
    }

    #[test]
    fn overlong_url_is_rejected() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(redirect_error(&long).contains("at most"));
    }
}
