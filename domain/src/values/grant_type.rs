use std::fmt;

use serde::{Deserialize, Serialize};

use super::ValueError;

/// An OAuth 2.0 grant type a client may use (`grant_types`, RFC 7591 §2). Ordered as the guide
/// lists them; lists of grant types are kept in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GrantType {
    /// Web applications with browser-based login (RFC 6749 §4.1).
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// Service-to-service authentication without a user (RFC 6749 §4.4).
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    /// Devices and CLI tools without a browser (RFC 8628).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    /// Refreshing expired access tokens (RFC 6749 §6).
    #[serde(rename = "refresh_token")]
    RefreshToken,
}

impl GrantType {
    /// Every grant type, in canonical order.
    pub const ALL: [Self; 4] = [
        Self::AuthorizationCode,
        Self::ClientCredentials,
        Self::DeviceCode,
        Self::RefreshToken,
    ];

    /// The registered name of the grant type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::RefreshToken => "refresh_token",
        }
    }

    /// Parses a registered grant type name.
    ///
    /// # Errors
    /// A [`ValueError`] listing the supported names.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|g| g.as_str()).collect();
                ValueError::new(format!(
                    "is not a supported grant type; use one of {}",
                    names.join(", ")
                ))
            })
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grant_type_of_the_guide_round_trips() {
        for g in GrantType::ALL {
            assert_eq!(GrantType::parse(g.as_str()), Ok(g));
            let json = serde_json::to_string(&g).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", g.as_str()));
        }
    }

    #[test]
    fn implicit_and_password_grants_are_not_supported() {
        assert!(GrantType::parse("implicit").is_err());
        assert!(GrantType::parse("password").is_err());
    }
}
