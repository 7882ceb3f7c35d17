//! Client secrets: generated, validated and hashed here, so the domain never sees a plaintext.

use std::fmt;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use std::cell::RefCell;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use registry_domain::values::{SecretHash, SecretRecord, ValueError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use subtle::ConstantTimeEq;

use tokio::sync::oneshot;

/// Shortest client-supplied secret, in characters.
pub const MIN_SECRET_LEN: usize = 16;
/// Longest client-supplied secret, in characters.
pub const MAX_SECRET_LEN: usize = 256;

/// A plaintext secret. Its `Debug` and `Display` never show it; [`Self::expose`] is the only
/// way to read it, for the one response that returns it.
#[derive(Clone)]
pub struct SecretString(String);

impl SecretString {
    /// A new random secret: 256 bits from the OS, base64url without padding (43 characters).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts a caller-supplied secret: 16–256 printable characters, no spaces at the ends.
    ///
    /// # Errors
    /// A [`ValueError`] that never repeats the secret.
    pub fn parse(s: String) -> Result<Self, ValueError> {
        let length = s.chars().count();
        if length < MIN_SECRET_LEN {
            return Err(ValueError(format!(
                "must be at least {MIN_SECRET_LEN} characters"
            )));
        }
        if length > MAX_SECRET_LEN {
            return Err(ValueError(format!(
                "must be at most {MAX_SECRET_LEN} characters"
            )));
        }
        if s.chars().any(char::is_control) || s.trim() != s {
            return Err(ValueError(
                "must not contain control characters or start or end with a space".to_owned(),
            ));
        }
        Ok(Self(s))
    }

    /// The plaintext, for the response that hands it to the caller once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(…)")
    }
}

/// A secret just issued: the record the events keep, and the plaintext for the caller.
#[derive(Debug, Clone)]
pub struct IssuedSecret {
    /// Id, hash and creation time.
    pub record: SecretRecord,
    /// The plaintext.
    pub plaintext: SecretString,
}

type Job = Box<dyn FnOnce() + Send>;

/// Why the hashing threads did not answer.
#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    /// Every hashing thread is busy and the queue is full: try again shortly (503 with
    /// `Retry-After`). Bounding the queue keeps a flood from turning into minutes of waiting
    /// for every later caller.
    #[error("every hashing thread is busy and the queue is full")]
    Busy,
    /// The hashing threads are gone (a server fault).
    #[error("the hashing threads are gone")]
    Gone,
    /// argon2 refused its input (a server fault: the parameters are ours).
    #[error("argon2 failed: {0}")]
    Argon2(String),
}

/// Buckets of the waiting time of hashing jobs, in seconds: 100 µs to 10 s.
const WAIT_BUCKETS: [f64; 12] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// The histogram of the time hashing jobs wait for a thread (the hasher observes it;
/// `/metrics` shows it).
pub fn hash_wait_histogram() -> prometheus::Histogram {
    let options = prometheus::HistogramOpts::new(
        "registry_hashing_wait_seconds",
        "Time argon2id jobs waited for a hashing thread.",
    )
    .buckets(WAIT_BUCKETS.to_vec());
    match prometheus::Histogram::with_opts(options) {
        Ok(histogram) => histogram,
        // Unreachable: the name, help text and buckets are constants checked by a test.
        Err(error) => unreachable!("invalid metric definition: {error}"),
    }
}

/// Hashes and verifies secrets with argon2id (OWASP parameters: m = 19 MiB, t = 2, p = 1,
/// the `argon2` crate's defaults) on a fixed set of threads of its own, so that
/// - a flood of secret operations queues instead of taking every thread of the runtime or
///   growing the blocking pool, and the list endpoint keeps its CPU share;
/// - the queue is bounded: past it, callers are refused at once ([`HashingError::Busy`]);
/// - a job whose caller went away (a client that disconnected or timed out) is dropped when
///   its turn comes, not computed for nobody;
/// - memory stays bounded: each hash needs 19 MiB, and the allocator keeps a freed block in
///   the arena of the thread that used it, so a few long-lived threads hold at most a few
///   such blocks (with tokio's growing blocking pool the server reached ~500 MiB).
#[derive(Clone)]
pub struct SecretHasher {
    jobs: mpsc::SyncSender<Job>,
    queued: Arc<AtomicUsize>,
    skipped: Arc<AtomicUsize>,
    waited: prometheus::Histogram,
}

impl fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHasher")
    }
}

/// Jobs that may wait for a hashing thread, per thread, unless configured.
pub const DEFAULT_QUEUE_PER_THREAD: usize = 32;

impl SecretHasher {
    /// A hasher with `concurrency` threads and room for [`DEFAULT_QUEUE_PER_THREAD`] waiting
    /// jobs per thread. The threads end when the last clone is dropped.
    pub fn new(concurrency: usize) -> Self {
        Self::with_queue(concurrency, concurrency.max(1) * DEFAULT_QUEUE_PER_THREAD)
    }

    /// A hasher with `concurrency` threads and at most `queue` jobs waiting for one.
    pub fn with_queue(concurrency: usize, queue: usize) -> Self {
        let (sender, receiver) = mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(std::sync::Mutex::new(receiver));
        for i in 0..concurrency.max(1) {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    let job = match receiver.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a hashing thread");
            }
        }
        Self {
            jobs: sender,
            queued: Arc::new(AtomicUsize::new(0)),
            skipped: Arc::new(AtomicUsize::new(0)),
            waited: hash_wait_histogram(),
        }
    }

    /// How long jobs waited for a thread (to register with the other metrics).
    pub fn wait_histogram(&self) -> prometheus::Histogram {
        self.waited.clone()
    }

    /// Jobs waiting for a hashing thread now.
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Jobs dropped since start-up because their caller had gone away before their turn.
    pub fn skipped(&self) -> usize {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Runs `work` on a hashing thread, in the caller's span, unless the caller is gone by
    /// the time a thread is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let (reply, answer) = oneshot::channel();
        let span = tracing::Span::current();
        let queued = self.queued.clone();
        let skipped = self.skipped.clone();
        let waited = self.waited.clone();
        let enqueued = std::time::Instant::now();
        let job: Job = Box::new(move || {
            queued.fetch_sub(1, Ordering::Relaxed);
            waited.observe(enqueued.elapsed().as_secs_f64());
            if reply.is_closed() {
                skipped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let _entered = span.enter();
            let _ = reply.send(work());
        });
        self.queued.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = self.jobs.try_send(job) {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            return Err(match error {
                mpsc::TrySendError::Full(_) => HashingError::Busy,
                mpsc::TrySendError::Disconnected(_) => HashingError::Gone,
            });
        }
        answer.await.map_err(|_| HashingError::Gone)
    }

    /// Hashes `plaintext` into a new [`SecretRecord`] created at `at`.
    ///
    /// # Errors
    /// [`HashingError::Busy`] when the queue is full; a server fault otherwise.
    pub async fn issue(
        &self,
        plaintext: SecretString,
        at: DateTime<Utc>,
    ) -> Result<IssuedSecret, HashingError> {
        let to_hash = plaintext.clone();
        let hash = self
            .run(move || phc_hash(to_hash.expose().as_bytes()))
            .await?
            .map_err(|e| HashingError::Argon2(e.to_string()))?;
        Ok(IssuedSecret {
            record: SecretRecord {
                secret_id: uuid::Uuid::now_v7().to_string(),
                hash: SecretHash::parse(&hash).map_err(|e| HashingError::Argon2(e.0))?,
                created_at: at,
                expires_at: None,
                valid_until: None,
            },
            plaintext,
        })
    }

    /// Whether `plaintext` matches one of `hashes`, compared in constant time. Every hash is checked (no early exit); with no hash at all (unknown,
    /// deleted, disabled or public client) a dummy hash with the same parameters is checked
    /// and the answer is `false`, so the time taken does not tell whether the client exists.
    ///
    /// # Errors
    /// [`HashingError::Busy`] when the queue is full; [`HashingError::Gone`].
    pub async fn verify(
        &self,
        plaintext: String,
        hashes: Vec<SecretHash>,
    ) -> Result<bool, HashingError> {
        Ok(self.verify_which(plaintext, hashes).await?.is_some())
    }

    /// Like [`Self::verify`], saying which of `hashes` matched (the last, if several did).
    ///
    /// # Errors
    /// As [`Self::verify`].
    pub async fn verify_which(
        &self,
        plaintext: String,
        hashes: Vec<SecretHash>,
    ) -> Result<Option<usize>, HashingError> {
        self.run(move || {
            let matches = |hash: &str| phc_verify(plaintext.as_bytes(), hash);
            if hashes.is_empty() {
                let _ = matches(dummy_hash());
                return None;
            }
            hashes
                .iter()
                .enumerate()
                .fold(None, |found, (index, hash)| {
                    if matches(hash.as_ref()) {
                        Some(index)
                    } else {
                        found
                    }
                })
        })
        .await
    }
}

thread_local! {
    /// The argon2 working memory (19 MiB with our parameters) of a hashing thread, reused by
    /// every hash it computes: allocating it per hash left freed blocks scattered over the
    /// allocator's arenas (the server grew by ~350 MiB over 48 confidential registrations).
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

fn hash_into(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let needed = argon2.params().block_count();
        if memory.len() < needed {
            memory.resize(needed, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..needed])
    })
}

/// An argon2id PHC string of `password` with a fresh 16-byte salt and our parameters.
fn phc_hash(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let argon2 = Argon2::default();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_buffer = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_buffer)?;
    let mut out = [0u8; 32];
    hash_into(&argon2, password, salt_bytes, &mut out)?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params())?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the argon2id PHC string `phc` (its own parameters and salt),
/// compared in constant time.
fn phc_verify(password: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(params), Some(salt), Some(expected)) =
        (Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return false;
    }
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut salt_buffer = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buffer) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    hash_into(&argon2, password, salt_bytes, &mut out).is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

/// An argon2id hash with the production parameters, of nothing anyone knows; checked when
/// there is no real hash so that "no such client" costs the same as "wrong secret".
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| phc_hash(SecretString::generate().expose().as_bytes()).unwrap_or_default())
}

/// A stand-in record for dry-running a command through the aggregate's rules before paying
/// for argon2: the rules look at whether a secret is present, never at its hash. Never stored.
pub(crate) fn dry_run_record(at: DateTime<Utc>) -> Result<SecretRecord, ValueError> {
    Ok(SecretRecord {
        secret_id: "dry-run".to_owned(),
        hash: SecretHash::parse("$argon2id$v=19$m=19456,t=2,p=1$ZHJ5cnVu$ZHJ5cnVu")?,
        created_at: at,
        expires_at: None,
        valid_until: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_256_bit_url_safe_and_distinct() {
        let a = SecretString::generate();
        let b = SecretString::generate();
        assert_eq!(a.expose().len(), 43);
        assert!(a
            .expose()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a.expose(), b.expose());
    }

    #[test]
    fn short_secret_is_rejected_without_echoing_it() {
        let error = SecretString::parse("hunter2".to_owned()).err().map(|e| e.0);
        assert_eq!(error.as_deref(), Some("must be at least 16 characters"));
    }

    #[test]
    fn debug_never_shows_the_plaintext() {
        let secret = SecretString::parse("correct horse battery staple".to_owned());
        assert!(!format!("{secret:?}").contains("horse"));
    }

    #[tokio::test]
    async fn verify_accepts_only_the_right_plaintext() {
        let hasher = SecretHasher::new(1);
        let issued = hasher
            .issue(SecretString::generate(), DateTime::<Utc>::default())
            .await
            .unwrap();
        let hashes = vec![issued.record.hash.clone()];
        let right = issued.plaintext.expose().to_owned();
        assert!(hasher.verify(right.clone(), hashes.clone()).await.unwrap());
        assert!(!hasher.verify(format!("{right}x"), hashes).await.unwrap());
        assert!(!hasher.verify(right, Vec::new()).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_of_callers_that_went_away_are_dropped_not_computed() {
        let hasher = SecretHasher::with_queue(1, 64);
        let issued = hasher
            .issue(SecretString::generate(), DateTime::<Utc>::default())
            .await
            .unwrap();
        let hashes = vec![issued.record.hash.clone()];
        // The one thread is busy until released.
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = oneshot::channel::<()>();
        let busy = hasher.clone();
        let blocker = tokio::spawn(async move {
            busy.run(move || {
                let _ = started.send(());
                wait.recv().is_ok()
            })
            .await
        });
        running.await.unwrap();
        // 32 callers enqueue a verification and go away before their turn.
        for _ in 0..32 {
            let abandoned = hasher.verify("wrong-secret-0123456789".into(), hashes.clone());
            let _ = tokio::time::timeout(std::time::Duration::ZERO, abandoned).await;
        }
        assert_eq!(hasher.queue_depth(), 32);
        release.send(()).unwrap();
        assert!(blocker.await.unwrap().unwrap());
        // The genuine caller after them is answered, and none of theirs was computed.
        let right = issued.plaintext.expose().to_owned();
        assert!(hasher.verify(right, hashes).await.unwrap());
        assert_eq!(hasher.skipped(), 32);
        assert_eq!(hasher.queue_depth(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once() {
        let hasher = SecretHasher::with_queue(1, 2);
        let mut waiting = Vec::new();
        for _ in 0..8 {
            let hasher = hasher.clone();
            waiting.push(tokio::spawn(async move {
                hasher
                    .verify("a-secret-0123456789".into(), Vec::new())
                    .await
            }));
        }
        let mut busy = 0;
        let mut answered = 0;
        for task in waiting {
            match task.await.unwrap() {
                Err(HashingError::Busy) => busy += 1,
                Ok(false) => answered += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(busy >= 1, "8 callers, 1 thread, 2 places: some are refused");
        assert!(answered >= 1);
        assert_eq!(busy + answered, 8);
    }

    #[tokio::test]
    async fn issued_secret_is_an_argon2id_hash_of_the_plaintext() {
        let issued = SecretHasher::new(1)
            .issue(SecretString::generate(), DateTime::<Utc>::default())
            .await
            .unwrap();
        let hash = issued.record.hash.as_ref();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!hash.contains(issued.plaintext.expose()));
        // Checked with the argon2 crate's own verifier, independently of ours.
        use argon2::PasswordVerifier;
        let parsed = PasswordHash::new(hash).unwrap();
        assert!(Argon2::default()
            .verify_password(issued.plaintext.expose().as_bytes(), &parsed)
            .is_ok());
    }
}
