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
//! - Only trusted while the feed follower listens: unless a read of the feed that began within
//!   [`LISTENING_WINDOW`] found it caught up (the database unreachable, the follower stopped
//!   or stuck behind a projection), nothing is found here and every verification pays
//!   argon2id against the event store again — another process's delete can never be missed
//!   for longer than that.
//! - A verification that began before the memory was cleared (the read model was rebuilt:
//!   events in between were not told one by one) or before a client's last sighting was
//!   dropped from its bounded record does not add its entry.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::mac::MacKey;

/// Clients whose verified secrets are remembered, unless configured.
pub const DEFAULT_CAPACITY: usize = 100_000;

/// How long after the start of the feed follower's last complete read of the feed the memory
/// is still trusted: the bound on how long another process's event may go unheard
/// (`projections::consistency::OTHER_PROCESS_SECRET_BOUND`). A healthy follower reads the
/// feed at least every 1.25 s (a 1 s wait and a 250 ms pause).
pub const LISTENING_WINDOW: Duration = Duration::from_secs(3);

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
    /// When the feed follower's last complete read of the feed began (`None`: not yet).
    listened: Mutex<Option<Instant>>,
    /// Moves whenever what was told may have gaps (the memory cleared, a client's last
    /// sighting dropped): a verification that began before must not add its entry.
    epoch: AtomicU64,
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
            epoch: AtomicU64::new(0),
        }
    }

    /// The feed follower read the feed to its end in a read that began at `as_of`: every
    /// event committed before then was told through [`Self::invalidate`].
    pub fn listening(&self, as_of: Instant) {
        if let Ok(mut listened) = self.listened.lock() {
            if listened.is_none_or(|before| before < as_of) {
                *listened = Some(as_of);
            }
        }
    }

    /// The current epoch: read it before loading the client a verification checks, and give
    /// it to [`Self::remember`].
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
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
    /// an event after `version` was seen meanwhile or the epoch moved since `epoch` (read
    /// before the client was loaded).
    pub fn remember(
        &self,
        client_id: &str,
        version: u64,
        epoch: u64,
        secret: (&str, Option<DateTime<Utc>>),
        plaintext: &str,
    ) {
        let (secret_id, expires_at) = secret;
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
        // Under the lock `clear` and `invalidate` take: an epoch read here is final.
        if self.epoch() != epoch
            || inner
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
                    // A verification of `oldest` under way could no longer tell it is late.
                    self.epoch.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// Forgets every remembered secret; verifications under way will not add theirs.
    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
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
        memory.listening(Instant::now());
        memory
    }

    #[test]
    fn nothing_is_found_until_the_follower_listens() {
        let memory = VerifiedSecrets::new(10);
        memory.remember("svc", 3, 0, ("s1", None), "right-secret-0123456789");
        assert!(memory
            .check("svc", "right-secret-0123456789", at(0))
            .is_none());
        memory.listening(Instant::now());
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
        memory.remember("svc", 3, 0, ("s1", None), "right-secret-0123456789");
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
        memory.remember(
            "svc",
            3,
            0,
            ("s1", Some(at(100))),
            "grace-secret-0123456789",
        );
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
        memory.remember("svc", 3, 0, ("s1", None), "right-secret-0123456789");
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
        memory.remember("svc", 3, 0, ("s1", None), "right-secret-0123456789");
        assert!(memory
            .check("svc", "right-secret-0123456789", at(0))
            .is_none());
        memory.remember("svc", 4, 0, ("s1", None), "right-secret-0123456789");
        assert!(memory
            .check("svc", "right-secret-0123456789", at(0))
            .is_some());
    }

    #[test]
    fn a_verification_that_began_before_a_clear_is_not_remembered() {
        let memory = listening(10);
        let epoch = memory.epoch();
        // The read model was rebuilt while the verification hashed: events may have been
        // skipped, so its answer is not kept.
        memory.clear();
        memory.remember("svc", 3, epoch, ("s1", None), "right-secret-0123456789");
        assert!(memory
            .check("svc", "right-secret-0123456789", at(0))
            .is_none());
        memory.remember(
            "svc",
            3,
            memory.epoch(),
            ("s1", None),
            "right-secret-0123456789",
        );
        assert!(memory
            .check("svc", "right-secret-0123456789", at(0))
            .is_some());
    }

    #[test]
    fn a_read_of_the_feed_that_began_too_long_ago_is_not_listening() {
        let memory = VerifiedSecrets::new(10);
        memory.remember("svc", 3, 0, ("s1", None), "right-secret-0123456789");
        let long_ago = Instant::now().checked_sub(LISTENING_WINDOW + Duration::from_millis(10));
        if let Some(long_ago) = long_ago {
            memory.listening(long_ago);
            assert!(!memory.is_listening());
            assert!(memory
                .check("svc", "right-secret-0123456789", at(0))
                .is_none());
        }
        memory.listening(Instant::now());
        assert!(memory.is_listening());
    }

    #[test]
    fn the_memory_is_bounded_and_drops_the_least_recently_used() {
        let memory = listening(3);
        memory.remember("c0", 1, 0, ("s", None), "secret-0123456789abc");
        for i in 1..10 {
            // c0 is used all along, so it stays.
            assert!(memory.check("c0", "secret-0123456789abc", at(0)).is_some());
            memory.remember(&format!("c{i}"), 1, 0, ("s", None), "secret-0123456789abc");
        }
        assert_eq!(memory.len(), 3);
        assert!(memory.check("c9", "secret-0123456789abc", at(0)).is_some());
        assert!(memory.check("c8", "secret-0123456789abc", at(0)).is_some());
        assert!(memory.check("c0", "secret-0123456789abc", at(0)).is_some());
        assert!(memory.check("c1", "secret-0123456789abc", at(0)).is_none());
    }
}
