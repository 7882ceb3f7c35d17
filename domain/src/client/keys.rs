//! The client's public keys (`jwks` or `jwks_uri`, RFC 7591 §2), replaced together: what a
//! `private_key_jwt` client (RFC 7523) signs its assertions with.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::errors::ValidationErrors;
use crate::values::{Jwks, JwksUri};

/// The client's keys as a caller sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientKeysInput {
    /// A JWK Set, by value.
    pub jwks: Option<Value>,
    /// Where the client publishes its JWK Set.
    pub jwks_uri: Option<String>,
}

/// The client's public keys: by value or by reference, never both (RFC 7591 §2). Stored
/// flattened into the settings; an unset field is left out of stored events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientKeys {
    /// Its public keys, by value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Jwks>,
    /// Where it publishes them (`https`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<JwksUri>,
}

impl ClientKeys {
    /// Validates `input`, adding each violation to `errors`.
    pub(super) fn parse(input: &ClientKeysInput, errors: &mut ValidationErrors) -> Self {
        let jwks = (input.jwks.as_ref()).and_then(|raw| Jwks::parse(raw, "jwks", errors));
        let jwks_uri = (input.jwks_uri.as_deref()).and_then(|raw| {
            JwksUri::parse(raw)
                .map_err(|e| errors.add("jwks_uri", e.0))
                .ok()
        });
        if input.jwks.is_some() && input.jwks_uri.is_some() {
            errors.add(
                "jwks_uri",
                "give the keys by value (jwks) or by reference (jwks_uri), not both (RFC 7591 §2)",
            );
        }
        Self { jwks, jwks_uri }
    }

    /// Whether it has keys.
    pub fn is_empty(&self) -> bool {
        self.jwks.is_none() && self.jwks_uri.is_none()
    }

    /// The raw form (what a caller would send to keep them).
    pub fn input(&self) -> ClientKeysInput {
        ClientKeysInput {
            jwks: (self.jwks.as_ref()).and_then(|jwks| serde_json::to_value(jwks).ok()),
            jwks_uri: self.jwks_uri.as_ref().map(ToString::to_string),
        }
    }
}
