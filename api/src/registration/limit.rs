//! How fast registrations are admitted: a token bucket per client address and one for all
//! of them, in this process's memory. A flood from one address is cut to its rate; a flood
//! from many to the total; each refusal says when to retry.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Most addresses remembered; past it, the fullest buckets (idle addresses) are forgotten.
const MAX_ADDRESSES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes one token after refilling at `per_second` up to `capacity`; else the seconds
    /// until one is there.
    fn take(&mut self, now: Instant, capacity: f64, per_second: f64) -> Result<(), u64> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // At least a second: a client told 0 would come back at once.
            let wait = ((1.0 - self.tokens) / per_second).ceil();
            Err(if wait.is_finite() && wait >= 1.0 {
                wait as u64
            } else {
                1
            })
        }
    }
}

/// The registration rate limits.
#[derive(Debug)]
pub struct RateLimiter {
    per_address: f64,
    total: f64,
    state: Mutex<(Bucket, HashMap<IpAddr, Bucket>)>,
}

impl RateLimiter {
    /// `per_minute` registrations a minute from one address (and as a burst), ten times that
    /// from all addresses together.
    pub fn new(per_minute: u32) -> Self {
        let per_address = f64::from(per_minute.max(1));
        let total = per_address * 10.0;
        let now = Instant::now();
        Self {
            per_address,
            total,
            state: Mutex::new((
                Bucket {
                    tokens: total,
                    at: now,
                },
                HashMap::new(),
            )),
        }
    }

    /// Admits one registration from `address` (`None`: unknown, counted as one address; an
    /// IPv6 address by its /64, what one host usually holds), or says in how many seconds to
    /// retry.
    ///
    /// # Errors
    /// The seconds until a registration from it would be admitted.
    pub fn admit_address(&self, address: Option<IpAddr>) -> Result<(), u64> {
        let now = Instant::now();
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (_, addresses) = &mut *state;
        let (capacity, rate) = (self.per_address, self.per_address / 60.0);
        if addresses.len() >= MAX_ADDRESSES {
            // Forget the idle (full) buckets; an address being held back keeps its own.
            addresses.retain(|_, bucket| {
                let mut probe = *bucket;
                probe.take(now, capacity, rate).is_err() || probe.tokens + 1.0 < capacity
            });
        }
        let key = match address {
            Some(IpAddr::V6(v6)) => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::from(segments)
            }
            Some(v4) => v4,
            None => IpAddr::from([0, 0, 0, 0]),
        };
        let bucket = addresses.entry(key).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.take(now, capacity, rate)
    }

    /// Admits one registration of all addresses together, or says when to retry.
    ///
    /// # Errors
    /// The seconds until a registration would be admitted.
    pub fn admit_total(&self) -> Result<(), u64> {
        let now = Instant::now();
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.0.take(now, self.total, self.total / 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_gets_its_burst_then_waits_and_others_are_not_held_up() {
        let limiter = RateLimiter::new(5);
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        for _ in 0..5 {
            assert_eq!(limiter.admit_address(a), Ok(()));
        }
        let wait = limiter.admit_address(a).unwrap_err();
        assert!((1..=12).contains(&wait), "{wait}");
        assert_eq!(limiter.admit_address(b), Ok(()));
        // One IPv6 host's /64 is one address.
        let v6 = |last: u16| Some(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]));
        for i in 0..5 {
            assert_eq!(limiter.admit_address(v6(i)), Ok(()));
        }
        assert!(limiter.admit_address(v6(99)).is_err());
    }

    #[test]
    fn all_addresses_together_get_ten_times_one() {
        let limiter = RateLimiter::new(2);
        let admitted = (0..100u8)
            .filter(|i| {
                limiter
                    .admit_address(Some(IpAddr::from([10, 0, 1, *i])))
                    .is_ok()
            })
            .filter(|_| limiter.admit_total().is_ok())
            .count();
        assert_eq!(admitted, 20);
    }
}
