use super::{string_value, ValueError};

/// The unique, immutable, case-sensitive identifier of a client (`client_id`, RFC 6749 §2.2).
///
/// 1–128 characters from the URI-unreserved set (RFC 3986 §2.3: `A-Z a-z 0-9 - . _ ~`), so it
/// can sit in a URL path, a query string or a Basic-auth header without escaping; or the
/// `https` URL of a client ID metadata document (draft-ietf-oauth-client-id-metadata-document
/// §3), which only the registry's resolver registers (see [`Self::is_document_url`]).
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
        if s.starts_with("https://") {
            return check_document_url(s).map(|()| Self(s.to_owned()));
        }
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

    /// Whether this id is the URL of a client ID metadata document: the client is what the
    /// document at that address says, fetched by the registry, never written by hand.
    pub fn is_document_url(&self) -> bool {
        self.0.starts_with("https://")
    }

    /// Whether `id` is a valid client id that is a document URL (see [`Self::is_document_url`]).
    pub fn names_document(id: &str) -> bool {
        Self::parse(id).is_ok_and(|id| id.is_document_url())
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

/// The longest client id that is a document URL, in bytes.
pub const MAX_DOCUMENT_URL_LEN: usize = 255;

/// The draft's rules for a client identifier URL (§3): `https`, a path, no dot segments, no
/// fragment, no user name or password. Stricter here: a host name (an IP literal would bypass
/// the fetcher's address checks), no query, and written in its normal form, so that one
/// document has exactly one id.
fn check_document_url(s: &str) -> Result<(), ValueError> {
    if s.len() > MAX_DOCUMENT_URL_LEN {
        return Err(ValueError::new(format!(
            "as a metadata document URL, must be at most {MAX_DOCUMENT_URL_LEN} characters"
        )));
    }
    let url = url::Url::parse(s)
        .map_err(|e| ValueError::new(format!("is not a valid metadata document URL: {e}")))?;
    let rule = if !matches!(url.host(), Some(url::Host::Domain(_))) {
        Some("must name its host by a domain name, not an address")
    } else if !url.username().is_empty() || url.password().is_some() {
        Some("must not contain a user name or password")
    } else if url.fragment().is_some() {
        Some("must not contain a fragment")
    } else if url.query().is_some() {
        Some("must not contain a query")
    } else if url.path() == "/" {
        Some("must contain a path (the document's, e.g. https://app.example.com/client.json)")
    } else if url.as_str() != s {
        Some("must be written in its normal form (lower-case host, no default port, no dot segments)")
    } else {
        None
    };
    rule.map_or(Ok(()), |rule| {
        Err(ValueError::new(format!(
            "as a metadata document URL, {rule}"
        )))
    })
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
    fn a_metadata_document_url_is_an_id_in_its_normal_form_only() {
        let id = ClientId::parse("https://app.example.com/oauth/client.json").unwrap();
        assert!(id.is_document_url());
        assert!(!ClientId::parse("app").unwrap().is_document_url());
        assert!(ClientId::parse("https://app.example.com:8443/c").is_ok());
        for bad in [
            "https://app.example.com/",
            "https://app.example.com",
            "https://App.example.com/c",
            "https://app.example.com:443/c",
            "https://app.example.com/a/../c",
            "https://app.example.com/c#x",
            "https://app.example.com/c?x=1",
            "https://user:pw@app.example.com/c",
            "https://127.0.0.1/c",
            "https://[::1]/c",
            "https://app.example.com/a b",
            "http://app.example.com/c",
        ] {
            assert!(ClientId::parse(bad).is_err(), "{bad} accepted");
        }
        let long = format!("https://app.example.com/{}", "a".repeat(240));
        assert!(ClientId::parse(&long).is_err());
    }

    #[test]
    fn client_ids_differing_in_case_are_different() {
        assert_ne!(ClientId::parse("App").ok(), ClientId::parse("app").ok());
    }
}
