use super::{string_value, ValueError};

/// A scope the client may request (`allowed_scopes`). Any RFC 6749 §3.3 scope-token is
/// accepted; the guide's common ones are `openid`, `profile`, `email`, `role`, `octo_api` and
/// `octo_api.read_only`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope(String);

impl Scope {
    /// The longest accepted scope, in characters.
    pub const MAX_LEN: usize = 200;

    /// Validates a scope token: `1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3), i.e.
    /// printable ASCII without space, `"` or `\`.
    ///
    /// # Errors
    /// A [`ValueError`] when it is empty, too long or holds another character.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() {
            return Err(ValueError::new("must not be empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(ValueError::new(format!(
                "must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        if let Some(bad) = s.chars().find(|c| !is_scope_char(*c)) {
            return Err(ValueError::new(format!(
                "must be a scope token (RFC 6749 §3.3): printable ASCII without spaces, \" or \\ \
                 (found {bad:?})"
            )));
        }
        Ok(Self(s.to_owned()))
    }
}

fn is_scope_char(c: char) -> bool {
    matches!(c, '\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E')
}

string_value!(Scope);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_scopes_are_accepted() {
        for ok in [
            "openid",
            "profile",
            "email",
            "role",
            "octo_api",
            "octo_api.read_only",
            "api:read",
        ] {
            assert!(Scope::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn malformed_scope_is_rejected() {
        for bad in ["open id", "a\"b", "a\\b", "", "scöpe"] {
            assert!(Scope::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
