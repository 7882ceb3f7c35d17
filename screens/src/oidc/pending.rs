//! A sign-in under way: its state, nonce and PKCE verifier in the browser's HMAC-signed,
//! short-lived login cookie (no table), and the answers already taken, so one is used once.

#[allow(clippy::wildcard_imports)]
use super::*;

/// The most sign-in answers remembered as used, per process.
pub(super) const MAX_ANSWERED: usize = 10_000;

/// The states of answered sign-ins, oldest first, until they expire.
#[derive(Debug, Default)]
pub(super) struct Answered {
    order: std::collections::VecDeque<(i64, [u8; 32])>,
    seen: std::collections::HashSet<[u8; 32]>,
}

impl Answered {
    /// Records `state` as answered; `false` if it was already.
    pub(super) fn first_answer(&mut self, state: &str, expires_at: i64, now: i64) -> bool {
        while let Some(&(expires, digest)) = self.order.front() {
            if expires > now && self.order.len() < MAX_ANSWERED {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&digest);
        }
        let digest: [u8; 32] = Sha256::digest(state.as_bytes()).into();
        if !self.seen.insert(digest) {
            return false;
        }
        self.order.push_back((expires_at, digest));
        true
    }
}

/// A sign-in under way: what the callback needs to finish it. Kept by the browser in the
/// login cookie, signed by the registry, not in the database: `/oidc/login` is open to anyone,
/// and must not write a row per request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent to the identity service (the answer must carry it back).
    pub(super) state: String,
    /// The PKCE code verifier.
    pub pkce_verifier: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// Where to go once signed in (a path of this site).
    pub next_path: String,
    /// Unix seconds after which the sign-in is refused.
    pub(super) expires_at: i64,
}

impl PendingLogin {
    /// The cookie value: the sign-in as base64url JSON, a dot, its HMAC-SHA-256.
    pub(super) fn seal(&self, key: &MacKey) -> Result<String, serde_json::Error> {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(self)?);
        let tag = URL_SAFE_NO_PAD.encode(key.sign(payload.as_bytes()));
        Ok(format!("{payload}.{tag}"))
    }

    /// The sign-in of a cookie value signed with `key`, if it is unchanged, not expired at
    /// `now`, and `state` is the one it was started with.
    pub(super) fn open(key: &MacKey, cookie: &str, state: &str, now: i64) -> Option<Self> {
        let (payload, tag) = cookie.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        if !key.verify(payload.as_bytes(), &tag) {
            return None;
        }
        let login: Self = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let same_state = bool::from(subtle::ConstantTimeEq::ct_eq(
            login.state.as_bytes(),
            state.as_bytes(),
        ));
        (same_state && login.expires_at > now).then_some(login)
    }
}

pub(super) fn random() -> String {
    registry_commands::SecretString::generate()
        .expose()
        .to_owned()
}

/// The S256 code challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn code_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}
