//! What RFC 7591 §2 says about a client besides how it authenticates: the kind of
//! application, who to contact, and the software it is.

use serde::{Deserialize, Serialize};

use super::{has_control, string_value, ValueError};

/// The kind of application (`application_type`, OpenID Connect Dynamic Client Registration
/// §2): a `web` application (the default) or a `native` one (mobile, desktop, CLI) — which
/// alone may use private-use URI schemes for its redirect URIs (RFC 8252 §7.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplicationType {
    /// A web application (the default).
    #[default]
    Web,
    /// A native application.
    Native,
}

impl ApplicationType {
    /// Parses `web` or `native`.
    ///
    /// # Errors
    /// A [`ValueError`] for anything else.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        match s {
            "web" => Ok(Self::Web),
            "native" => Ok(Self::Native),
            _ => Err(ValueError::new("must be web or native")),
        }
    }

    /// Whether it is the default, `web` (stored events leave it out then).
    pub fn is_web(&self) -> bool {
        *self == Self::Web
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Native => "native",
        }
    }
}

/// How the client authenticates at the token endpoint (`token_endpoint_auth_method`, RFC 7591
/// §2) with its shared secret, or that it does not (`none`: a public client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// The secret in HTTP Basic authentication (RFC 6749 §2.3.1), the default.
    ClientSecretBasic,
    /// The secret in the request body.
    ClientSecretPost,
    /// A JWT signed with one of the client's keys (`jwks`, `jwks_uri`; RFC 7523 §2.2): a
    /// confidential client without a shared secret.
    PrivateKeyJwt,
    /// No authentication: a public client.
    None,
}

impl TokenEndpointAuthMethod {
    /// Parses `client_secret_basic`, `client_secret_post`, `private_key_jwt` or `none`.
    ///
    /// # Errors
    /// A [`ValueError`] for anything else.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        match s {
            "client_secret_basic" => Ok(Self::ClientSecretBasic),
            "client_secret_post" => Ok(Self::ClientSecretPost),
            "private_key_jwt" => Ok(Self::PrivateKeyJwt),
            "none" => Ok(Self::None),
            _ => Err(ValueError::new(
                "must be client_secret_basic, client_secret_post, private_key_jwt or none",
            )),
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    /// What a client uses when it does not say: the secret in Basic authentication when it
    /// has one, else none.
    pub fn default_for(require_client_secret: bool) -> Self {
        if require_client_secret {
            Self::ClientSecretBasic
        } else {
            Self::None
        }
    }
}

/// A way to reach the people responsible for the client (`contacts`, RFC 7591 §2): an e-mail
/// address, `local@domain`, at most 254 characters, no spaces or control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Contact(String);

impl Contact {
    /// The longest accepted address (RFC 5321's path limit less the brackets).
    pub const MAX_LEN: usize = 254;

    /// Validates an e-mail address.
    ///
    /// # Errors
    /// A [`ValueError`] naming the rule broken.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.len() > Self::MAX_LEN {
            return Err(ValueError::new(format!(
                "must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        if has_control(s) || s.contains(char::is_whitespace) {
            return Err(ValueError::new(
                "must not contain spaces or control characters",
            ));
        }
        match s.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.is_empty()
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.') =>
            {
                Ok(Self(s.to_owned()))
            }
            _ => Err(ValueError::new(
                "must be an e-mail address (name@example.com)",
            )),
        }
    }
}

/// A software identifier or version (`software_id`, `software_version`, RFC 7591 §2): chosen
/// by the client's developer, the same for every instance of the software; 1–200 characters,
/// no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SoftwareText(String);

impl SoftwareText {
    /// The longest accepted value, in characters.
    pub const MAX_LEN: usize = 200;

    /// Validates a software identifier or version.
    ///
    /// # Errors
    /// A [`ValueError`] when blank, too long or with a control character.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.trim().is_empty() {
            return Err(ValueError::new("must not be blank"));
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(ValueError::new(format!(
                "must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        if has_control(s) {
            return Err(ValueError::new("must not contain control characters"));
        }
        Ok(Self(s.to_owned()))
    }
}

string_value!(Contact);
string_value!(SoftwareText);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_email_addresses() {
        assert!(Contact::parse("ops@example.com").is_ok());
        assert!(Contact::parse("first.last+registry@sub.example.org").is_ok());
        for bad in [
            "",
            "ops",
            "@example.com",
            "ops@",
            "a@b@c",
            "ops @example.com",
            "ops@.com",
        ] {
            assert!(Contact::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Contact::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn application_types_are_web_or_native() {
        assert_eq!(
            ApplicationType::parse("native"),
            Ok(ApplicationType::Native)
        );
        assert!(ApplicationType::parse("Web").is_err());
        assert_eq!(
            serde_json::to_value(ApplicationType::Native).unwrap(),
            "native"
        );
    }

    #[test]
    fn software_texts_are_bounded_and_printable() {
        assert!(SoftwareText::parse("4NRB1-0XZABZI9E6-5SM3R").is_ok());
        assert!(SoftwareText::parse(" ").is_err());
        assert!(SoftwareText::parse("2.1\n").is_err());
        assert!(SoftwareText::parse(&"x".repeat(201)).is_err());
    }
}
