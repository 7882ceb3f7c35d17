use super::{has_control, string_value, ValueError};

/// The display name of a client (`client_name`, RFC 7591 §2): trimmed, 1–200 characters, no
/// control characters. Any script is welcome.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientName(String);

impl ClientName {
    /// The longest accepted name, in characters (after trimming).
    pub const MAX_LEN: usize = 200;

    /// Trims and validates a client name.
    ///
    /// # Errors
    /// A [`ValueError`] when it is blank, longer than [`Self::MAX_LEN`] characters or holds a
    /// control character (newline, tab, NUL, …).
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(ValueError::new("is required and must not be blank"));
        }
        if trimmed.chars().count() > Self::MAX_LEN {
            return Err(ValueError::new(format!(
                "must be at most {} characters",
                Self::MAX_LEN
            )));
        }
        if has_control(trimmed) {
            return Err(ValueError::new(
                "must not contain control characters (newlines, tabs, bidirectional overrides, …)",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

string_value!(ClientName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_name_is_trimmed() {
        assert_eq!(
            ClientName::parse("  Data Refinery Studio ").map(String::from),
            Ok("Data Refinery Studio".to_owned())
        );
    }

    #[test]
    fn client_name_in_any_script_is_accepted() {
        assert!(ClientName::parse("Łódź 東京 Ωmega").is_ok());
    }

    #[test]
    fn client_name_with_bidirectional_controls_is_rejected() {
        for spoof in [
            "Admin\u{202e}gnp.exe",
            "a\u{202a}b",
            "a\u{2066}b\u{2069}",
            "x\u{200f}y",
            "x\u{61c}y",
        ] {
            assert!(ClientName::parse(spoof).is_err(), "{spoof:?}");
        }
        assert!(
            ClientName::parse("مرحبا بالعالم").is_ok(),
            "right-to-left text itself is fine"
        );
    }

    #[test]
    fn blank_client_name_is_rejected() {
        assert!(ClientName::parse("   ").is_err());
    }

    #[test]
    fn client_name_with_newline_is_rejected() {
        assert!(ClientName::parse("a\nb").is_err());
    }

    #[test]
    fn client_name_of_201_characters_is_rejected() {
        assert!(ClientName::parse(&"é".repeat(200)).is_ok());
        assert!(ClientName::parse(&"é".repeat(201)).is_err());
    }
}
