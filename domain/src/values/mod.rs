//! Validated value types. Each is built only through its `parse` constructor, so a value that
//! exists is valid (STYLE "Types that cannot be wrong").
//!
//! Serde deserialises them through the same constructor (`try_from`). Stored events are read
//! with these types, so a rule may only be *tightened* together with an upcaster that rewrites
//! (or a lenient path that accepts) values already stored.

mod about;
mod client_id;
mod client_name;
mod cors_origin;
mod grace_period;
mod grant_type;
mod jwks;
mod scope;
mod secret;
mod uri;

#[cfg(test)]
mod properties;

pub use about::{ApplicationType, Contact, SoftwareText, TokenEndpointAuthMethod};
pub use client_id::ClientId;
pub use client_name::ClientName;
pub use cors_origin::CorsOrigin;
pub use grace_period::GracePeriod;
pub use grant_type::GrantType;
pub use jwks::{Jwk, Jwks, JwksUri, MAX_KEYS, PRIVATE_KEY_MEMBERS};
pub use scope::Scope;
pub use secret::{earlier_end, SecretHash, SecretRecord};
pub(crate) use uri::is_loopback;
pub use uri::{ClientUri, RedirectUri};

/// Why a single value was refused. The message is safe to show a user and never repeats a
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

impl ValueError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// Implements the string plumbing shared by every validated string type: `AsRef<str>`,
/// `Display`, `TryFrom<String>` through `parse`, `From<T> for String`, and serde through them.
macro_rules! string_value {
    ($name:ident) => {
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::values::ValueError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use string_value;

/// True for characters no identifier, name or URL of ours may contain: C0, DEL and C1
/// controls, and the Unicode bidirectional controls (the embeddings, overrides and isolates
/// U+202A–U+202E and U+2066–U+2069, and the marks U+200E, U+200F, U+061C). The latter make
/// text display in another order than it is stored: `Admin\u{202e}gnp.exe` reads as
/// `Adminexe.png` in a list, an export or a console (the "Trojan Source" trick).
pub(crate) fn has_control(s: &str) -> bool {
    s.chars().any(|c| {
        c.is_control()
            || matches!(
                c,
                '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}'
            )
    })
}
