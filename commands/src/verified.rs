//! The verification fast path: secrets that passed argon2id once, remembered in this process's
//! memory as keyed digests, so that an identity service presenting the same correct secret on
//! every token request does not pay argon2id each time.
//!
//! - An entry is `HMAC-SHA-256(k, client id, secret id, presented secret)` under a key `k`
//!   drawn at random when the process starts and never stored or shown: the memory holds no
//!   plaintext, and a digest is useless outside this process. Compared in constant time.
//! - Entries are only ever added after a full argon2id success, for the client version that
//!   success was computed on; an entry never outlives its secret's expiry.
//! - Every event of a client removes its entries: this process's own commits at once (before
//!   their answer), other processes' through the feed follower (the bound is the feed's:
//!   `projections::consistency`). A verification that computed on a version older than an
//!   event already seen does not add its entry.
//! - A wrong secret, an unknown client, a disabled one: never found here, so they still cost
//!   a full argon2id verification through the bounded queue (no oracle, the same timing as
//!   before); a correct cached secret never waits behind that queue.
//! - Bounded: at most `capacity` clients; the least recently used is dropped first.
//! - Only trusted while the feed follower listens: when it has not read the feed for
//!   [`LISTENING_WINDOW`] (the database unreachable, the follower stopped), nothing is found
//!   here and every verification pays argon2id against the event store again — another
//!   process's delete can never be missed for longer than that.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::mac::MacKey;

/// Clients whose verified secrets are remembered, unless configured.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// How long after the feed follower last read the feed the memory is still trusted. The
/// follower reads it at least every 1.25 s while healthy (`projections::consistency`).
pub const LISTENING_WINDOW: std::time::Duration = std::time::Duration::from_secs(5);

/// One remembered success.
#[derive(Debug, Clone)]
struct Entry {
    secret_id: String,
    expires_at: Option<DateTime<Utc>>,
    tag: [u8; 32],
}

/// One client's remembered successes.
#[derive(Debug)]
struct Slot {
    /// The client version the successes were computed on.
    version: u64,
    entries: Vec<Entry>,
    /// When it was last used, a key of `Inner::recency`.
    used: u64,
}

#[derive(Debug, Default)]
struct Inner {
    clients: HashMap<String, Slot>,
    /// Clients by last use, oldest first, for eviction.
    recency: BTreeMap<u64, String>,
    ticks: u64,
    /// The highest version each client was seen at by an invalidation (bounded: four times
    /// `capacity`, oldest first out).
    seen: HashMap<String, u64>,
    seen_order: VecDeque<String>,
}

impl Inner {
    fn touch(&mut self, client_id: &str) {
        self.ticks += 1;
        let tick = self.ticks;
        if let Some(slot) = self.clients.get_mut(client_id) {
            self.recency.remove(&slot.used);
            slot.used = tick;
            self.recency.insert(tick, client_id.to_owned());
        }
    }

    fn forget(&mut self, client_id: &str) {
        if let Some(slot) = self.clients.remove(client_id) {
            self.recency.remove(&slot.used);
        }
    }
}

/// A secret found valid: which one, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Its id.
    pub secret_id: String,
    /// When it stops being valid (`None`: it is the current secret).
    pub expires_at: Option<DateTime<Utc>>,
}

/// Secrets verified once, per client, as keyed digests.
#[derive(Debug)]
pub struct VerifiedSecrets {
    key: MacKey,
    capacity: usize,
    inner: Mutex<Inner>,
    /// When the feed follower last read the feed (`None`: not yet).
    listened: Mutex<Option<Instant>>,
}

impl VerifiedSecrets {
    /// An empty memory of at most `capacity` clients (0: remember nothing), under a fresh
    /// random key.
    pub fn new(capacity: usize) -> Self {
        Self {
            key: MacKey::random(),
            capacity,
            inner: Mutex::new(Inner::default()),
            listened: Mutex::new(None),
        }
    }

    /// The feed follower has read the feed: every event up to now was told through
    /// [`Self::invalidate`].
    pub fn listening(&self) {
        if let Ok(mut listened) = self.listened.lock() {
            *listened = Some(Instant::now());
        }
    }

    /// Whether the follower read the feed within [`LISTENING_WINDOW`]: only then is
    /// anything found here.
    pub fn is_listening(&self) -> bool {
        self.listened
            .lock()
            .ok()
            .and_then(|listened| *listened)
            .is_some_and(|at| at.elapsed() < LISTENING_WINDOW)
    }

    fn tag(&self, client_id: &str, secret_id: &str, plaintext: &str) -> [u8; 32] {
        let mut message =
            Vec::with_capacity(client_id.len() + secret_id.len() + plaintext.len() + 2);
        message.extend_from_slice(client_id.as_bytes());
        message.push(0);
        message.extend_from_slice(secret_id.as_bytes());
        message.push(0);
        message.extend_from_slice(plaintext.as_bytes());
        self.key.sign(&message)
    }

    /// The remembered secret of `client_id` that `plaintext` is, if still valid at `at` (and
    /// the feed follower listens).
    pub fn check(&self, client_id: &str, plaintext: &str, at: DateTime<Utc>) -> Option<Hit> {
        if !self.is_listening() {
            return None;
        }
        let entries = {
            let mut inner = self.inner.lock().ok()?;
            let entries = inner.clients.get(client_id)?.entries.clone();
            inner.touch(client_id);
            entries
        };
        // Every entry is compared (no early exit): the time does not say which one matched.
        let mut found = None;
        for entry in entries {
            let expected = self.tag(client_id, &entry.secret_id, plaintext);
            let same = subtle::ConstantTimeEq::ct_eq(&expected[..], &entry.tag[..]);
            let alive = entry.expires_at.is_none_or(|e| e > at);
            if bool::from(same) && alive {
                found = Some(Hit {
                    secret_id: entry.secret_id,
                    expires_at: entry.expires_at,
                });
            }
        }
        found
    }

    /// Remembers that `plaintext` is secret `secret_id` of `client_id` at `version`, unless
    /// an event after `version` was seen meanwhile.
    pub fn remember(
        &self,
        client_id: &str,
        version: u64,
        secret_id: &str,
        expires_at: Option<DateTime<Utc>>,
        plaintext: &str,
    ) {
        if self.capacity == 0 {
            return;
        }
        let entry = Entry {
            secret_id: secret_id.to_owned(),
            expires_at,
            tag: self.tag(client_id, secret_id, plaintext),
        };
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner
            .seen
            .get(client_id)
            .is_some_and(|&seen| seen > version)
        {
            return;
        }
        let slot = inner
            .clients
            .entry(client_id.to_owned())
            .or_insert_with(|| Slot {
                version,
                entries: Vec::new(),
                used: 0,
            });
        if slot.version != version {
            slot.version = version;
            slot.entries.clear();
        }
        slot.entries.retain(|e| e.secret_id != entry.secret_id);
        slot.entries.push(entry);
        inner.touch(client_id);
        while inner.clients.len() > self.capacity {
            let Some((_, oldest)) = inner.recency.pop_first() else {
                break;
            };
            inner.clients.remove(&oldest);
        }
    }

    /// Forgets what was remembered of `client_id` before `version` (an event at `version`
    /// happened: a change, a rotation, a delete).
    pub fn invalidate(&self, client_id: &str, version: u64) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if inner
            .clients
            .get(client_id)
            .is_some_and(|slot| slot.version < version)
        {
            inner.forget(client_id);
        }
        let seen = inner.seen.entry(client_id.to_owned()).or_insert(0);
        let first = *seen == 0;
        *seen = (*seen).max(version);
        if first {
            inner.seen_order.push_back(client_id.to_owned());
            let bound = self.capacity.max(1).saturating_mul(4);
            while inner.seen_order.len() > bound {
                if let Some(oldest) = inner.seen_order.pop_front() {
                    inner.seen.remove(&oldest);
                }
            }
        }
    }

    /// Forgets every remembered secret.
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.clients.clear();
            inner.recency.clear();
        }
    }

    /// Clients with remembered secrets now.
    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.clients.len()).unwrap_or(0)
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening(capacity: usize) -> VerifiedSecrets {
        let memory = VerifiedSecrets::new(capacity);
        memory.listening();
        memory
    }

    #[test]
    fn nothing_is_found_until_the_follower_listens() {
        let memory = VerifiedSecrets::new(10);
        memory.remember("svc", 3, "s1", None, "right-secret-0123456789");
        assert!(memory
            .check("svc", "right-secret-0123456789", at(0))
            .is_none());
        memory.listening();
        assert!(memory
            .check("svc", "right-secret-0123456789", at(0))
            .is_some());
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn only_the_remembered_plaintext_of_that_client_is_found() {
        let memory = listening(10);
        memory.remember("svc", 3, "s1", None, "right-secret-0123456789");
        assert!(memory
            .check("svc", "right-secret-0123456789", at(0))
            .is_some());
        assert!(memory
            .check("svc", "wrong-secret-0123456789", at(0))
            .is_none());
        assert!(memory
            .check("other", "right-secret-0123456789", at(0))
            .is_none());
    }

    #[test]
    fn an_expired_secret_is_not_found() {
        let memory = listening(10);
        memory.remember("svc", 3, "s1", Some(at(100)), "grace-secret-0123456789");
        assert!(memory
            .check("svc", "grace-secret-0123456789", at(99))
            .is_some());
        assert!(memory
            .check("svc", "grace-secret-0123456789", at(100))
            .is_none());
    }

    #[test]
    fn an_event_forgets_the_client_and_a_late_success_is_not_remembered() {
        let memory = listening(10);
        memory.remember("svc", 3, "s1", None, "right-secret-0123456789");
        memory.invalidate("svc", 3);
        assert!(
            memory
                .check("svc", "right-secret-0123456789", at(0))
                .is_some(),
            "seen already"
        );
        memory.invalidate("svc", 4);
        assert!(memory
            .check("svc", "right-secret-0123456789", at(0))
            .is_none());
        // A verification that loaded version 3 before the event at 4 finishes afterwards.
        memory.remember("svc", 3, "s1", None, "right-secret-0123456789");
        assert!(memory
            .check("svc", "right-secret-0123456789", at(0))
            .is_none());
        memory.remember("svc", 4, "s1", None, "right-secret-0123456789");
        assert!(memory
            .check("svc", "right-secret-0123456789", at(0))
            .is_some());
    }

    #[test]
    fn the_memory_is_bounded_and_drops_the_least_recently_used() {
        let memory = listening(3);
        memory.remember("c0", 1, "s", None, "secret-0123456789abc");
        for i in 1..10 {
            // c0 is used all along, so it stays.
            assert!(memory.check("c0", "secret-0123456789abc", at(0)).is_some());
            memory.remember(&format!("c{i}"), 1, "s", None, "secret-0123456789abc");
        }
        assert_eq!(memory.len(), 3);
        assert!(memory.check("c9", "secret-0123456789abc", at(0)).is_some());
        assert!(memory.check("c8", "secret-0123456789abc", at(0)).is_some());
        assert!(memory.check("c0", "secret-0123456789abc", at(0)).is_some());
        assert!(memory.check("c1", "secret-0123456789abc", at(0)).is_none());
    }
}
