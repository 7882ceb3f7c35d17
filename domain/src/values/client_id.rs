use super::{string_value, ValueError};

/// The unique, immutable, case-sensitive identifier of a client (`client_id`, RFC 6749 §2.2).
///
/// 1–128 characters from the URI-unreserved set (RFC 3986 §2.3: `A-Z a-z 0-9 - . _ ~`), so it
/// can sit in a URL path, a query string or a Basic-auth header without escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    /// The longest accepted client id, in characters.
    pub const MAX_LEN: usize = 128;

    /// Validates a client id.
    ///
    /// # Errors
    /// A [`ValueError`] when it is empty, longer than [`Self::MAX_LEN`] or has a character
    /// outside `A-Z a-z 0-9 - . _ ~`.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.is_empty() {
            return Err(ValueError::new("is required"));
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(ValueError::new(format!(
                "must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        if let Some(bad) = s.chars().find(|c| !is_unreserved(*c)) {
            return Err(ValueError::new(format!(
                "may only contain letters A-Z a-z, digits and - . _ ~ (found {bad:?})"
            )));
        }
        Ok(Self(s.to_owned()))
    }

    /// Ids a new client may not take: fixed addresses beside `/clients/{client_id}` in the API
    /// and on the screens (`/api/v1/clients/plan`, `/clients/new`, …). A client registered
    /// under one could never be read or edited there. Compared exactly (ids are
    /// case-sensitive, and so are the routes).
    pub const RESERVED: [&'static str; 8] = [
        "new",
        "plan",
        "apply",
        "schema.json",
        "export.xlsx",
        "export.pdf",
        "export.yaml",
        "export.json",
    ];

    /// Whether a new client may be registered under this id.
    ///
    /// # Errors
    /// A [`ValueError`] naming the reserved ids when it is one of [`Self::RESERVED`].
    pub fn check_registrable(&self) -> Result<(), ValueError> {
        if Self::RESERVED.contains(&self.0.as_str()) {
            return Err(ValueError::new(format!(
                "is reserved (the registry's own addresses use {}): choose another id",
                Self::RESERVED.join(", ")
            )));
        }
        Ok(())
    }
}

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

string_value!(ClientId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_the_routes_use_cannot_be_registered() {
        for reserved in ClientId::RESERVED {
            let id = ClientId::parse(reserved).unwrap();
            let error = id.check_registrable().unwrap_err();
            assert!(error.0.contains("reserved"), "{reserved}");
        }
        assert!(ClientId::parse("New").unwrap().check_registrable().is_ok());
        assert!(ClientId::parse("plans")
            .unwrap()
            .check_registrable()
            .is_ok());
    }

    #[test]
    fn client_id_from_the_guide_is_accepted() {
        assert!(ClientId::parse("octo-idenityServices-swagger").is_ok());
        assert!(ClientId::parse("a.b_c~d-1").is_ok());
    }

    #[test]
    fn client_id_with_space_slash_or_unicode_is_rejected() {
        for bad in ["my app", "a/b", "ünï", "a%20b", ""] {
            assert!(ClientId::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn client_id_longer_than_128_characters_is_rejected() {
        assert!(ClientId::parse(&"a".repeat(128)).is_ok());
        assert!(ClientId::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn client_ids_differing_in_case_are_different() {
        assert_ne!(ClientId::parse("App").ok(), ClientId::parse("app").ok());
    }
}
