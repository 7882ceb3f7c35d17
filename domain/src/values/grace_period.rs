use chrono::{DateTime, Duration, Utc};

use super::ValueError;

/// How long the previous secrets stay valid after a rotation (its grace period): from none
/// (they stop at once) to 30 days. The one rule both the API and the screens apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GracePeriod(u64);

impl GracePeriod {
    /// The longest grace period, in seconds (30 days).
    pub const MAX_SECONDS: u64 = 30 * 24 * 3600;

    /// A grace period of `seconds`.
    ///
    /// # Errors
    /// A [`ValueError`] when it is longer than [`Self::MAX_SECONDS`].
    pub fn from_seconds(seconds: u64) -> Result<Self, ValueError> {
        if seconds > Self::MAX_SECONDS {
            return Err(ValueError::new(format!(
                "must be at most {} seconds (30 days)",
                Self::MAX_SECONDS
            )));
        }
        Ok(Self(seconds))
    }

    /// A grace period written as a number of seconds (a form field; empty is none).
    ///
    /// # Errors
    /// A [`ValueError`] when it is not a whole number of seconds, or too long.
    pub fn parse(text: &str) -> Result<Self, ValueError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Self(0));
        }
        let seconds = text
            .parse::<u64>()
            .map_err(|_| ValueError::new("must be a whole number of seconds"))?;
        Self::from_seconds(seconds)
    }

    /// Until when the previous secrets stay valid when rotating at `at` (`None`: none).
    pub fn until(self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let seconds = i64::try_from(self.0).unwrap_or(i64::MAX);
        (self.0 > 0).then(|| at + Duration::seconds(seconds))
    }

    /// The length in seconds.
    pub fn seconds(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_to_thirty_days_and_no_more() {
        assert!(GracePeriod::from_seconds(GracePeriod::MAX_SECONDS).is_ok());
        let refused = GracePeriod::from_seconds(GracePeriod::MAX_SECONDS + 1).unwrap_err();
        assert_eq!(refused.0, "must be at most 2592000 seconds (30 days)");
        assert_eq!(
            GracePeriod::parse("").unwrap().until(DateTime::default()),
            None
        );
        assert!(GracePeriod::parse("an hour").is_err());
        assert_eq!(
            GracePeriod::parse("60").unwrap().until(DateTime::default()),
            Some(DateTime::<Utc>::default() + Duration::seconds(60))
        );
    }
}
