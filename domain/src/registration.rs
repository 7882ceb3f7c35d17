//! Dynamic client registration (RFC 7591): the policy an initial access token admits clients
//! under. An administrator sets it when creating the token; every registration and every
//! later change through the client configuration endpoint (RFC 7592) is checked against it.
//!
//! Pure: the settings come validated by the client's own rules; this adds what the token's
//! policy narrows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::client::findings::{findings, CheckContext, Level, Profile};
use crate::client::{ClientSettings, ValidationErrors};
use crate::values::{is_loopback, ApplicationType, GrantType, Scope, TokenEndpointAuthMethod};

/// Most redirect URI patterns, scopes or name-prefix characters a policy may have.
pub const MAX_PATTERNS: usize = 50;

/// What clients registered with one initial access token may be. An empty list allows what
/// the registry allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationPolicy {
    /// Grant types a client may have.
    #[serde(default)]
    pub grant_types: Vec<GrantType>,
    /// Token endpoint authentication methods a client may use.
    #[serde(default)]
    pub token_endpoint_auth_methods: Vec<TokenEndpointAuthMethod>,
    /// Patterns every redirect URI (after login and after logout) must match: a URI where
    /// `*` stands for one host label or one path segment (`https://*.partner.example/cb`).
    #[serde(default)]
    pub redirect_uri_patterns: Vec<String>,
    /// Scopes a client may request.
    #[serde(default)]
    pub scopes: Vec<Scope>,
    /// A prefix every client name must start with (`Partner: `).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name_prefix: Option<String>,
    /// Whether registered clients start disabled, held until an administrator enables them.
    #[serde(default)]
    pub hold_for_approval: bool,
    /// Refuse a client with a `must` finding of this profile (see the profile checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_findings_of: Option<Profile>,
}

impl RegistrationPolicy {
    /// Checks the policy itself: its patterns are URIs whose wildcards stay inside one host
    /// label or path segment, below a domain of at least two labels; its prefix is printable.
    ///
    /// # Errors
    /// [`ValidationErrors`] naming each bad entry (`redirect_uri_patterns[0]`).
    pub fn check_itself(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if self.redirect_uri_patterns.len() > MAX_PATTERNS {
            errors.add(
                "redirect_uri_patterns",
                format!("must have at most {MAX_PATTERNS} entries"),
            );
        }
        for (i, pattern) in self.redirect_uri_patterns.iter().enumerate() {
            if let Err(message) = check_pattern(pattern) {
                errors.add(format!("redirect_uri_patterns[{i}]"), message);
            }
        }
        if let Some(prefix) = &self.client_name_prefix {
            if prefix.is_empty()
                || prefix.chars().count() > MAX_PATTERNS
                || prefix.chars().any(char::is_control)
            {
                errors.add(
                    "client_name_prefix",
                    format!("must be 1–{MAX_PATTERNS} printable characters"),
                );
            }
        }
        errors.into_result(())
    }

    /// What `settings` break in this policy, each violation naming the client's field.
    /// Redirect URIs of a dynamically registered client are `https`, or, for a native app,
    /// `http` on a loopback address or a private-use scheme, whatever the patterns say.
    pub fn check(&self, settings: &ClientSettings, now: DateTime<Utc>) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        let refused = |what: &str| format!("{what} is not allowed by the registration policy");
        for grant in &settings.grant_types {
            if !self.grant_types.is_empty() && !self.grant_types.contains(grant) {
                errors.add("grant_types", refused(grant.as_str()));
            }
        }
        let method = settings.auth_method();
        if !self.token_endpoint_auth_methods.is_empty()
            && !self.token_endpoint_auth_methods.contains(&method)
        {
            errors.add("token_endpoint_auth_method", refused(method.name()));
        }
        for scope in &settings.allowed_scopes {
            if !self.scopes.is_empty() && !self.scopes.contains(scope) {
                errors.add("scope", refused(&format!("the scope {scope}")));
            }
        }
        if let Some(prefix) = &self.client_name_prefix {
            if !settings.client_name.as_ref().starts_with(prefix.as_str()) {
                errors.add("client_name", format!("must start with {prefix:?}"));
            }
        }
        let native = settings.about.application_type == ApplicationType::Native;
        let lists = [
            ("redirect_uris", &settings.redirect_uris),
            (
                "post_logout_redirect_uris",
                &settings.post_logout_redirect_uris,
            ),
        ];
        for (field, uris) in lists {
            for (i, uri) in uris.iter().enumerate() {
                if let Err(message) = self.check_redirect(uri.as_ref(), native) {
                    errors.add(format!("{field}[{i}]"), message);
                }
            }
        }
        if let Some(profile) = self.refuse_findings_of {
            let context = CheckContext {
                secrets: &[],
                now,
                max_secret_age: None,
            };
            for finding in findings(profile, settings, &context) {
                if finding.level == Level::Must {
                    errors.add(
                        finding.field,
                        format!(
                            "{} ({}; the registration policy refuses {} findings)",
                            finding.message,
                            finding.section,
                            profile.title()
                        ),
                    );
                }
            }
        }
        errors
    }

    fn check_redirect(&self, uri: &str, native: bool) -> Result<(), String> {
        let url = Url::parse(uri).map_err(|_| "must be an absolute URI".to_owned())?;
        // Matched as written, so written as every parser reads it: no `\`, no percent-encoded
        // host, no `..`, a lower-case host (`https://evil%2Ecom\.partner.example/` is evil.com).
        if url.as_str() != uri {
            return Err(format!(
                "must be written in normal form, as {} (a dynamically registered client's redirect URIs are compared as written)",
                url.as_str()
            ));
        }
        let allowed = match url.scheme() {
            "https" => true,
            "http" => native && is_loopback(url.host()),
            _ => native,
        };
        if !allowed {
            return Err(if native {
                "a native app registers https, http on a loopback address or a private-use scheme"
                    .to_owned()
            } else {
                "a dynamically registered web client's redirect URIs use https".to_owned()
            });
        }
        let matched = self.redirect_uri_patterns.is_empty()
            || (self.redirect_uri_patterns.iter()).any(|pattern| matches(pattern, uri));
        if matched {
            Ok(())
        } else {
            Err("matches none of the registration policy's redirect URI patterns".to_owned())
        }
    }
}

/// Whether `uri` matches `pattern`, where `*` stands for one or more characters of a host
/// label (in the host) or of a path segment (after it). Exact otherwise.
pub fn matches(pattern: &str, uri: &str) -> bool {
    let host_end = |s: &str| {
        s.find("://").map_or(0, |start| {
            s[start + 3..]
                .find('/')
                .map_or(s.len(), |end| start + 3 + end)
        })
    };
    glob(pattern.as_bytes(), uri.as_bytes(), 0, host_end(uri))
}

fn glob(pattern: &[u8], text: &[u8], at: usize, host_end: usize) -> bool {
    match pattern.split_first() {
        None => text.len() == at,
        Some((b'*', rest)) => {
            let stops: &[u8] = if at < host_end {
                b"./:@?#\\%"
            } else {
                b"/?#\\"
            };
            let mut end = at;
            while end < text.len() && !stops.contains(&text[end]) {
                end += 1;
                if glob(rest, text, end, host_end) {
                    return true;
                }
            }
            false
        }
        Some((c, rest)) => text.get(at) == Some(c) && glob(rest, text, at + 1, host_end),
    }
}

/// A pattern is an absolute URI (its `*` replaced for parsing) with no fragment; each `*` is a
/// whole host label or a whole path segment (so matching never backtracks); a wildcard in the
/// host stands below at least two literal labels (`*.partner.example`, never `*.com`).
fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.len() > 2000 || pattern.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must be at most 2000 characters, without spaces".to_owned());
    }
    let bytes = pattern.as_bytes();
    let whole = (0..bytes.len()).filter(|i| bytes[*i] == b'*').all(|i| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + 1).copied();
        matches!(before, Some(b'/' | b'.'))
            && matches!(after, None | Some(b'/' | b'.' | b':' | b'?'))
    });
    if !whole {
        return Err("each * must be a whole host label or a whole path segment".to_owned());
    }
    let url = Url::parse(&pattern.replace('*', "w"))
        .map_err(|_| "must be an absolute URI, * standing for a host label or a path segment")?;
    if url.fragment().is_some() || pattern.split("://").next().is_some_and(|s| s.contains('*')) {
        return Err("must have no fragment and no * in its scheme".to_owned());
    }
    let host = pattern
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .unwrap_or_default();
    if let Some(star) = host.rfind('*') {
        let literal = host[star + 1..].split(':').next().unwrap_or_default();
        if literal.split('.').filter(|label| !label.is_empty()).count() < 2 {
            return Err(
                "a * in the host must stand below a domain of two labels or more".to_owned(),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientSettingsInput;

    #[test]
    fn a_star_stands_for_one_label_or_one_segment() {
        let p = "https://*.partner.example/cb/*";
        assert!(matches(p, "https://app.partner.example/cb/one"));
        assert!(
            !matches(p, "https://a.b.partner.example/cb/one"),
            "one label"
        );
        assert!(!matches(p, "https://evil.example/.partner.example/cb/x"));
        assert!(
            !matches(p, "https://app.partner.example/cb/one/two"),
            "one segment"
        );
        assert!(!matches(p, "https://app.partner.example.evil/cb/x"));
        assert!(matches("https://app.example/cb", "https://app.example/cb"));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example/cb2"
        ));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example/cb?x=1"
        ));
        assert!(!matches(p, "https://evil%2Ecom\\.partner.example/cb/x"));
    }

    #[test]
    fn redirect_uris_not_in_normal_form_are_refused_before_matching() {
        let policy = RegistrationPolicy {
            redirect_uri_patterns: vec!["https://*.partner.example/cb/*".into()],
            ..RegistrationPolicy::default()
        };
        for sneaky in [
            "https://evil%2Ecom\\.partner.example/cb/x",
            "https://app.partner.example/cb/../../admin",
            "https://app.partner.example/cb/%2e%2e/x",
            "https://APP.partner.example/cb/x",
        ] {
            assert!(policy.check_redirect(sneaky, false).is_err(), "{sneaky}");
        }
        assert!(policy
            .check_redirect("https://app.partner.example/cb/x", false)
            .is_ok());
    }

    #[test]
    fn patterns_are_checked() {
        let policy = |p: &str| RegistrationPolicy {
            redirect_uri_patterns: vec![p.to_owned()],
            ..RegistrationPolicy::default()
        };
        assert!(policy("https://*.partner.example/cb")
            .check_itself()
            .is_ok());
        assert!(policy("https://app.example/cb/*").check_itself().is_ok());
        for bad in [
            "https://*.com/cb",
            "https://*/cb",
            "*://app.example/cb",
            "https://a.example/#*",
            "not a uri",
            "https://a*.example.com/cb",
            "https://app.example/*a*a*a*b",
        ] {
            assert!(policy(bad).check_itself().is_err(), "{bad}");
        }
    }

    fn settings(edit: impl FnOnce(&mut ClientSettingsInput)) -> ClientSettings {
        let mut input = ClientSettingsInput {
            client_name: Some("Partner: CLI".into()),
            require_client_secret: false,
            enabled: true,
            require_pkce: true,
            grant_types: vec!["authorization_code".into()],
            redirect_uris: vec!["https://app.partner.example/cb".into()],
            allowed_scopes: vec!["openid".into()],
            ..ClientSettingsInput::default()
        };
        edit(&mut input);
        ClientSettings::validate(&input).expect("valid")
    }

    fn fields(policy: &RegistrationPolicy, settings: &ClientSettings) -> Vec<String> {
        let at = DateTime::from_timestamp(1_790_000_000, 0).expect("a time");
        let errors = policy.check(settings, at);
        errors.errors().iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn a_policy_narrows_grants_methods_scopes_names_and_redirects() {
        let policy = RegistrationPolicy {
            grant_types: vec![GrantType::AuthorizationCode],
            token_endpoint_auth_methods: vec![TokenEndpointAuthMethod::None],
            redirect_uri_patterns: vec!["https://*.partner.example/cb".into()],
            scopes: vec![Scope::parse("openid").expect("scope")],
            client_name_prefix: Some("Partner: ".into()),
            ..RegistrationPolicy::default()
        };
        assert_eq!(fields(&policy, &settings(|_| {})), Vec::<String>::new());
        let broken = settings(|s| {
            s.client_name = Some("Other".into());
            s.require_client_secret = true;
            s.grant_types.push("client_credentials".into());
            s.redirect_uris = vec!["https://evil.example/cb".into()];
            s.allowed_scopes.push("octo_api".into());
        });
        assert_eq!(
            fields(&policy, &broken),
            [
                "grant_types",
                "token_endpoint_auth_method",
                "scope",
                "client_name",
                "redirect_uris[0]"
            ]
        );
        // Without patterns a web client still registers https only; a native app its loopback.
        let open = RegistrationPolicy::default();
        let http = settings(|s| s.redirect_uris = vec!["http://127.0.0.1:8080/cb".into()]);
        assert_eq!(fields(&open, &http), ["redirect_uris[0]"]);
        let native = settings(|s| {
            s.redirect_uris = vec![
                "http://127.0.0.1:8080/cb".into(),
                "com.example.app:/cb".into(),
            ];
            s.about = Some(crate::client::ClientAboutInput {
                application_type: Some("native".into()),
                ..Default::default()
            });
        });
        assert_eq!(fields(&open, &native), Vec::<String>::new());
    }

    #[test]
    fn a_policy_can_refuse_the_must_findings_of_a_profile() {
        let policy = RegistrationPolicy {
            refuse_findings_of: Some(Profile::OAuth21),
            ..RegistrationPolicy::default()
        };
        let without_pkce = settings(|s| s.require_pkce = false);
        assert_eq!(fields(&policy, &without_pkce), ["require_pkce"]);
        assert_eq!(fields(&policy, &settings(|_| {})), Vec::<String>::new());
    }
}
