use super::uri::{is_loopback, parse_absolute};
use super::{string_value, ValueError};

/// An origin allowed to call the identity service from a browser (`allowed_cors_origins`):
/// `scheme://host[:port]` exactly as a browser sends it in the `Origin` header (RFC 6454 §6.2) —
/// no path, query, fragment or trailing slash, lowercase host, no default port.
///
/// `https`, or `http` on a loopback host, as for redirect URIs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CorsOrigin(String);

impl CorsOrigin {
    /// Validates an origin. When the input names an origin but is not written the way browsers
    /// send it, the error shows the corrected form.
    ///
    /// # Errors
    /// A [`ValueError`] explaining what is wrong, with the origin to use instead where one exists.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let url = parse_absolute(s)?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(url.host()) => {}
            "http" => return Err(ValueError::new(
                "http is only allowed on a loopback host (localhost, 127.0.0.1, [::1]); use https",
            )),
            _ => {
                return Err(ValueError::new(
                    "must be an https (or loopback http) origin",
                ))
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ValueError::new(
                "must not contain user information (user:password@)",
            ));
        }
        let origin = url.origin().ascii_serialization();
        if s == origin {
            return Ok(Self(origin));
        }
        let rest = s
            .split_once("://")
            .map(|(_, after)| after.find(['/', '?', '#']).map_or("", |i| &after[i..]))
            .unwrap_or_default();
        let message = if rest == "/" {
            format!("must not have a trailing slash: use \"{origin}\"")
        } else if !rest.is_empty() {
            format!("must be scheme://host[:port] only, without path, query or fragment: use \"{origin}\"")
        } else {
            format!("must be written as a browser sends it: use \"{origin}\"")
        };
        Err(ValueError::new(message))
    }
}

string_value!(CorsOrigin);

#[cfg(test)]
mod tests {
    use super::*;

    fn error(s: &str) -> String {
        match CorsOrigin::parse(s) {
            Ok(_) => format!("{s} accepted"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn cors_origin_from_the_guide_is_accepted() {
        assert!(CorsOrigin::parse("https://myapp.example.com").is_ok());
        assert!(CorsOrigin::parse("http://localhost:4200").is_ok());
        assert!(CorsOrigin::parse("https://app.example.com:8443").is_ok());
    }

    #[test]
    fn cors_origin_with_trailing_slash_is_rejected_with_the_fix() {
        let message = error("https://myapp.example.com/");
        assert!(message.contains("trailing slash"), "{message}");
        assert!(
            message.contains("\"https://myapp.example.com\""),
            "{message}"
        );
    }

    #[test]
    fn cors_origin_with_a_path_is_rejected_with_the_fix() {
        let message = error("https://myapp.example.com/app?x=1");
        assert!(message.contains("without path"), "{message}");
        assert!(
            message.contains("\"https://myapp.example.com\""),
            "{message}"
        );
    }

    #[test]
    fn cors_origin_with_default_port_or_uppercase_host_shows_browser_form() {
        assert!(error("https://App.Example.com").contains("\"https://app.example.com\""));
        assert!(error("https://app.example.com:443").contains("\"https://app.example.com\""));
    }

    #[test]
    fn cors_origin_over_plain_http_on_a_public_host_is_rejected() {
        assert!(error("http://app.example.com").contains("loopback"));
    }

    #[test]
    fn wildcard_cors_origin_is_rejected() {
        assert!(error("https://*.example.com").contains("wildcard"));
        assert!(CorsOrigin::parse("*").is_err());
    }
}
