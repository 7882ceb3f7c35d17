//! Profile checks: what a client's settings break in a security profile (OAuth 2.1, the OAuth
//! 2.0 Security Best Current Practice RFC 9700, FAPI 2.0), each finding naming the setting at
//! fault and the section of the profile it breaks. A finding is advice to an administrator,
//! not a refusal: the registry accepts every client its own rules accept.
//!
//! Sections: RFC 9700 as published; OAuth 2.1 as numbered in draft-ietf-oauth-v2-1-15/16
//! (unchanged between them for these rules); FAPI 2.0 Security Profile as numbered in its
//! final text, item numbers of §5.3.2 in parentheses. Rules a client cannot break here are
//! not listed: the registry refuses the implicit and password grants outright.
//!
//! Pure, like the rest of the domain: the time and the secrets' creation times are given.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use super::settings::ClientSettings;
use crate::values::{ApplicationType, GrantType, ValueError};

/// A security profile a client can be checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Profile {
    /// The OAuth 2.1 Authorization Framework (draft-ietf-oauth-v2-1).
    #[serde(rename = "oauth2.1")]
    OAuth21,
    /// OAuth 2.0 Security Best Current Practice (RFC 9700, January 2025).
    #[serde(rename = "rfc9700")]
    Rfc9700,
    /// FAPI 2.0 Security Profile (OpenID Foundation, final, February 2025).
    #[serde(rename = "fapi2")]
    Fapi2,
}

impl Profile {
    /// Every profile, in the order the screens offer them.
    pub const ALL: [Self; 3] = [Self::Rfc9700, Self::OAuth21, Self::Fapi2];

    /// Its name in URLs and documents: `oauth2.1`, `rfc9700`, `fapi2`.
    pub fn name(self) -> &'static str {
        match self {
            Self::OAuth21 => "oauth2.1",
            Self::Rfc9700 => "rfc9700",
            Self::Fapi2 => "fapi2",
        }
    }

    /// Its title, for people.
    pub fn title(self) -> &'static str {
        match self {
            Self::OAuth21 => "OAuth 2.1",
            Self::Rfc9700 => "OAuth 2.0 Security BCP (RFC 9700)",
            Self::Fapi2 => "FAPI 2.0 Security Profile",
        }
    }

    /// The profile named `name`.
    ///
    /// # Errors
    /// A [`ValueError`] listing the known names.
    pub fn parse(name: &str) -> Result<Self, ValueError> {
        Self::ALL
            .into_iter()
            .find(|profile| profile.name() == name)
            .ok_or_else(|| ValueError::new("must be one of oauth2.1, rfc9700, fapi2"))
    }
}

/// How strongly the profile asks for what the client's settings do not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// MUST / SHALL: the client does not conform.
    Must,
    /// SHOULD / RECOMMENDED: the client conforms, with a weakness the profile advises against.
    Should,
}

/// One thing a client's settings break in a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// A stable name of the rule (`pkce-not-required`, …), for scripts.
    pub rule: String,
    /// How strongly the profile asks for it.
    pub level: Level,
    /// The document and section the rule comes from, e.g. `RFC 9700 §2.1.1`.
    pub section: String,
    /// The setting at fault, as the API names it (`require_pkce`, `redirect_uris[1]`).
    pub field: String,
    /// What is wrong and what to do, in one sentence.
    pub message: String,
}

/// What the checks need besides the settings.
#[derive(Debug, Clone, Copy)]
pub struct CheckContext<'a> {
    /// Each secret of the client: when it was created and when it stops being accepted
    /// (`None`: a current secret). Only current secrets can be too old: one with an end is
    /// being retired by a rotation.
    pub secrets: &'a [(DateTime<Utc>, Option<DateTime<Utc>>)],
    /// Now.
    pub now: DateTime<Utc>,
    /// A secret older than this is a finding (the registry's configured maximum age).
    pub max_secret_age: Option<Duration>,
}

/// Where a rule stands in each profile — RFC 9700, OAuth 2.1, FAPI 2.0 (the order of
/// [`Profile::ALL`]) — its level and section, or `None` where the profile does not have it.
struct Rule {
    name: &'static str,
    sections: [Option<(Level, &'static str)>; 3],
}

impl Rule {
    fn in_profile(&self, profile: Profile) -> Option<(Level, &'static str)> {
        let index = Profile::ALL.iter().position(|p| *p == profile)?;
        self.sections.get(index).copied().flatten()
    }
}

const fn must(section: &'static str) -> Option<(Level, &'static str)> {
    Some((Level::Must, section))
}

const fn should(section: &'static str) -> Option<(Level, &'static str)> {
    Some((Level::Should, section))
}

/// The registry's own rule, in every profile.
const REGISTRY_POLICY: &str = "registry policy (REGISTRY_MAX_SECRET_AGE_DAYS)";

/// A public client (no secret) that uses the authorization code grant without PKCE.
const PKCE_PUBLIC: Rule = Rule {
    name: "pkce-not-required",
    sections: [
        must("RFC 9700 §2.1.1"),
        must("OAuth 2.1 §4.1.1"),
        must("FAPI 2.0 §5.3.2.2 (5)"),
    ],
};

/// A confidential client that uses the authorization code grant without PKCE (OAuth 2.1
/// lets the identity service skip PKCE only for a confidential client it trusts to use the
/// OpenID Connect nonce).
const PKCE_CONFIDENTIAL: Rule = Rule {
    name: "pkce-not-required",
    sections: [
        should("RFC 9700 §2.1.1"),
        should("OAuth 2.1 §7.5.1.1"),
        must("FAPI 2.0 §5.3.2.2 (5)"),
    ],
};

/// An `http` redirect URI (loopback, as the registry allows no other) on a client that is
/// not a native app: a web app, or a client with a secret (RFC 8252 §8.5).
const HTTP_REDIRECT: Rule = Rule {
    name: "http-redirect-uri",
    sections: [
        must("RFC 9700 §2.6"),
        must("OAuth 2.1 §1.5"),
        must("FAPI 2.0 §5.3.2.2 (8)"),
    ],
};

/// A loopback redirect URI naming `localhost` instead of the loopback IP literal.
const LOCALHOST_REDIRECT: Rule = Rule {
    name: "localhost-redirect-uri",
    sections: [
        should("RFC 8252 §8.3"),
        should("OAuth 2.1 §8.4.2"),
        should("RFC 8252 §8.3"),
    ],
};

/// A public client allowed refresh tokens: they must be sender-constrained or rotated, which
/// the registry cannot tell.
const PUBLIC_REFRESH: Rule = Rule {
    name: "public-client-refresh-tokens",
    sections: [must("RFC 9700 §2.2.2"), must("OAuth 2.1 §4.3.1"), None],
};

/// A public client, where the profile admits confidential clients only.
const PUBLIC_CLIENT: Rule = Rule {
    name: "public-client",
    sections: [None, None, must("FAPI 2.0 §5.3.2.1 (3)")],
};

/// Client authentication with a shared secret, where the profile wants keys.
const SHARED_SECRET: Rule = Rule {
    name: "shared-secret-authentication",
    sections: [should("RFC 9700 §2.5"), None, must("FAPI 2.0 §5.3.2.1 (6)")],
};

/// A secret older than the registry's configured maximum age.
const OLD_SECRET: Rule = Rule {
    name: "secret-too-old",
    sections: [
        should(REGISTRY_POLICY),
        should(REGISTRY_POLICY),
        should(REGISTRY_POLICY),
    ],
};

/// Every finding of `settings` in `profile`, in the order of the client's fields.
pub fn findings(
    profile: Profile,
    settings: &ClientSettings,
    context: &CheckContext<'_>,
) -> Vec<Finding> {
    let mut found = Findings {
        profile,
        list: Vec::new(),
    };
    let confidential = settings.require_client_secret;
    if !confidential {
        found.add(&PUBLIC_CLIENT, "require_client_secret", "a public client (no client authentication); the profile admits confidential clients only".to_owned());
    }
    if settings.uses_secret() {
        found.add(&SHARED_SECRET, "token_endpoint_auth_method", "authenticates with a shared secret; use private_key_jwt or mTLS (asymmetric keys) instead".to_owned());
    }
    if settings.grant_types.contains(&GrantType::AuthorizationCode) && !settings.require_pkce {
        let rule = if confidential {
            &PKCE_CONFIDENTIAL
        } else {
            &PKCE_PUBLIC
        };
        found.add(
            rule,
            "require_pkce",
            "the authorization code grant without PKCE; require PKCE (S256)".to_owned(),
        );
    }
    redirect_findings(&mut found, settings);
    if !confidential && settings.offline_access {
        found.add(&PUBLIC_REFRESH, "offline_access", "a public client with refresh tokens: the identity service must rotate them or bind them to the client (DPoP); the registry cannot tell whether it does".to_owned());
    }
    if settings.uses_secret() {
        secret_age_findings(&mut found, context);
    }
    found.list
}

/// The findings of one check, for one profile.
struct Findings {
    profile: Profile,
    list: Vec<Finding>,
}

impl Findings {
    fn add(&mut self, rule: &Rule, field: &str, message: String) {
        if let Some((level, section)) = rule.in_profile(self.profile) {
            self.list.push(Finding {
                rule: rule.name.to_owned(),
                level,
                section: section.to_owned(),
                field: field.to_owned(),
                message,
            });
        }
    }
}

fn redirect_findings(found: &mut Findings, settings: &ClientSettings) {
    for (i, uri) in settings.redirect_uris.iter().enumerate() {
        let Ok(url) = Url::parse(uri.as_ref()) else {
            continue;
        };
        if url.scheme() != "http" {
            continue;
        }
        let field = format!("redirect_uris[{i}]");
        let native = settings.about.application_type == ApplicationType::Native;
        if !native || settings.require_client_secret {
            found.add(&HTTP_REDIRECT, &field, "an http redirect URI: only native apps (application_type: native, public clients) may use loopback http; use https".to_owned());
        }
        if matches!(url.host(), Some(Host::Domain(_))) {
            found.add(&LOCALHOST_REDIRECT, &field, "a loopback redirect URI naming localhost; use 127.0.0.1 or [::1], which cannot be resolved elsewhere".to_owned());
        }
    }
}

fn secret_age_findings(found: &mut Findings, context: &CheckContext<'_>) {
    let Some(max) = context.max_secret_age else {
        return;
    };
    let current = context.secrets.iter().filter(|(_, end)| end.is_none());
    let oldest = current.map(|(created, _)| created).min();
    if let Some(created) = oldest.filter(|created| context.now - **created > max) {
        let days = (context.now - *created).num_days();
        found.add(&OLD_SECRET, "secrets", format!("a secret is {days} days old, more than the registry's maximum of {} days; rotate it", max.num_days()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientSettingsInput;

    fn settings(edit: impl FnOnce(&mut ClientSettingsInput)) -> ClientSettings {
        let mut input = ClientSettingsInput {
            client_name: Some("Portal".to_owned()),
            require_client_secret: true,
            enabled: true,
            require_pkce: true,
            grant_types: vec!["authorization_code".to_owned()],
            redirect_uris: vec!["https://portal.example.com/cb".to_owned()],
            ..ClientSettingsInput::default()
        };
        edit(&mut input);
        ClientSettings::validate(&input).unwrap()
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-06T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn check(profile: Profile, settings: &ClientSettings) -> Vec<(String, Level, String)> {
        let context = CheckContext {
            secrets: &[],
            now: now(),
            max_secret_age: None,
        };
        findings(profile, settings, &context)
            .into_iter()
            .map(|f| (f.rule, f.level, f.field))
            .collect()
    }

    #[test]
    fn a_confidential_web_client_with_pkce_meets_rfc9700_but_for_its_shared_secret() {
        let web = settings(|_| {});
        assert_eq!(
            check(Profile::Rfc9700, &web),
            [(
                "shared-secret-authentication".to_owned(),
                Level::Should,
                "token_endpoint_auth_method".to_owned()
            )]
        );
        assert_eq!(check(Profile::OAuth21, &web), []);
        let fapi = check(Profile::Fapi2, &web);
        assert_eq!(fapi.len(), 1);
        assert_eq!(fapi[0].1, Level::Must, "FAPI 2.0 wants keys, not secrets");
        let keys = settings(|s| {
            s.token_endpoint_auth_method = Some(Some("private_key_jwt".into()));
            s.keys = Some(crate::client::ClientKeysInput {
                jwks_uri: Some("https://app.example.com/jwks.json".into()),
                jwks: None,
            });
        });
        assert_eq!(check(Profile::Fapi2, &keys), [], "keys meet FAPI 2.0");
        assert_eq!(check(Profile::Rfc9700, &keys), []);
    }

    #[test]
    fn pkce_is_a_must_for_public_clients_and_advice_for_confidential_ones_in_rfc9700() {
        let public = settings(|s| {
            s.require_client_secret = false;
            s.require_pkce = false;
        });
        let confidential = settings(|s| s.require_pkce = false);
        let pkce = |found: Vec<(String, Level, String)>| {
            found
                .into_iter()
                .find(|(rule, ..)| rule == "pkce-not-required")
                .map(|(_, level, field)| (level, field))
        };
        assert_eq!(
            pkce(check(Profile::Rfc9700, &public)),
            Some((Level::Must, "require_pkce".to_owned()))
        );
        assert_eq!(
            pkce(check(Profile::Rfc9700, &confidential)),
            Some((Level::Should, "require_pkce".to_owned()))
        );
        assert_eq!(
            pkce(check(Profile::OAuth21, &confidential)).map(|(level, _)| level),
            Some(Level::Should),
            "OAuth 2.1 spares only confidential clients that use the OIDC nonce"
        );
        assert_eq!(
            pkce(check(Profile::Fapi2, &confidential)).map(|(level, _)| level),
            Some(Level::Must),
            "FAPI 2.0 requires PKCE of every client"
        );
        let service = settings(|s| {
            s.require_pkce = false;
            s.grant_types = vec!["client_credentials".to_owned()];
            s.redirect_uris = vec![];
        });
        assert_eq!(
            pkce(check(Profile::OAuth21, &service)),
            None,
            "no code flow, no PKCE"
        );
    }

    #[test]
    fn loopback_http_redirects_are_named_by_position() {
        let client = settings(|s| {
            s.redirect_uris = vec![
                "https://portal.example.com/cb".to_owned(),
                "http://127.0.0.1:8080/cb".to_owned(),
                "http://localhost:8080/cb".to_owned(),
            ];
        });
        let found = check(Profile::Rfc9700, &client);
        let on = |rule: &str| -> Vec<String> {
            found
                .iter()
                .filter(|(r, ..)| r == rule)
                .map(|(.., field)| field.clone())
                .collect()
        };
        assert_eq!(
            on("http-redirect-uri"),
            ["redirect_uris[1]", "redirect_uris[2]"]
        );
        assert_eq!(on("localhost-redirect-uri"), ["redirect_uris[2]"]);
        let native = settings(|s| {
            s.require_client_secret = false;
            s.redirect_uris = vec!["http://127.0.0.1/cb".to_owned()];
            s.about = Some(crate::client::ClientAboutInput {
                application_type: Some("native".to_owned()),
                ..Default::default()
            });
        });
        let spa = settings(|s| {
            s.require_client_secret = false;
            s.redirect_uris = vec!["http://127.0.0.1/cb".to_owned()];
        });
        assert!(
            check(Profile::Rfc9700, &spa)
                .iter()
                .any(|(rule, ..)| rule == "http-redirect-uri"),
            "a web app may not"
        );
        assert!(
            !check(Profile::Rfc9700, &native)
                .iter()
                .any(|(rule, ..)| rule == "http-redirect-uri"),
            "a public (native) client may use loopback http"
        );
    }

    #[test]
    fn public_clients_with_refresh_tokens_and_old_secrets_are_findings() {
        let spa = settings(|s| {
            s.require_client_secret = false;
            s.offline_access = true;
            s.grant_types = vec!["authorization_code".to_owned(), "refresh_token".to_owned()];
        });
        let found = check(Profile::Rfc9700, &spa);
        assert!(found.iter().any(
            |(rule, level, field)| rule == "public-client-refresh-tokens"
                && *level == Level::Must
                && field == "offline_access"
        ));
        assert!(
            check(Profile::Fapi2, &spa)
                .iter()
                .any(|(rule, ..)| rule == "public-client"),
            "FAPI 2.0 admits confidential clients only"
        );

        let created = [
            (now() - Duration::days(400), None),
            (now() - Duration::days(3), None),
        ];
        let context = CheckContext {
            secrets: &created,
            now: now(),
            max_secret_age: Some(Duration::days(365)),
        };
        let old = findings(Profile::Rfc9700, &settings(|_| {}), &context);
        let old: Vec<_> = old.iter().filter(|f| f.rule == "secret-too-old").collect();
        assert_eq!(old.len(), 1);
        assert!(old[0].message.contains("400 days"), "{}", old[0].message);
        let fresh = CheckContext {
            max_secret_age: Some(Duration::days(500)),
            ..context
        };
        // Rotated: the old secret is in its grace period, the new one is young.
        let rotated = [
            (
                now() - Duration::days(400),
                Some(now() + Duration::hours(1)),
            ),
            (now() - Duration::days(1), None),
        ];
        let rotated = CheckContext {
            secrets: &rotated,
            ..context
        };
        assert!(
            !findings(Profile::Rfc9700, &settings(|_| {}), &rotated)
                .iter()
                .any(|f| f.rule == "secret-too-old"),
            "a secret being retired is not too old"
        );
        assert!(!findings(Profile::Rfc9700, &settings(|_| {}), &fresh)
            .iter()
            .any(|f| f.rule == "secret-too-old"));
    }

    #[test]
    fn profiles_are_named_as_in_urls() {
        for profile in Profile::ALL {
            assert_eq!(Profile::parse(profile.name()).unwrap(), profile);
            let json = serde_json::to_value(profile).unwrap();
            assert_eq!(json, profile.name());
        }
        assert!(Profile::parse("fapi1").is_err());
    }
}
