//! Keyed digests: HMAC-SHA-256 (RFC 2104, `ring`'s), for what the registry signs and checks
//! itself — plans made to be applied later, sign-in cookies, snapshots of the write model, and
//! secrets already verified once. Tags are compared in constant time.

use ring::hmac;

/// A key for HMAC-SHA-256.
#[derive(Clone)]
pub struct MacKey(hmac::Key);

impl std::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MacKey(…)")
    }
}

impl MacKey {
    /// The key of these bytes.
    pub fn new(bytes: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// A fresh random key (256 bits), e.g. one that lives as long as its process.
    pub fn random() -> Self {
        let secret = crate::secrets::SecretString::generate();
        Self::new(secret.expose().as_bytes())
    }

    /// A key of its own for `purpose`, derived from this one (HMAC(key, purpose)), so that one
    /// stored secret serves several uses without a tag of one being valid for another.
    pub fn derive(&self, purpose: &str) -> Self {
        Self::new(self.sign(purpose.as_bytes()).as_ref())
    }

    /// The tag of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.0, message);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether `tag` is the tag of `message` (constant time).
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.0, message, tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        let key = MacKey::new(b"Jefe");
        let tag = key.sign(b"what do ya want for nothing?");
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(key.verify(b"what do ya want for nothing?", &tag));
        assert!(!key.verify(b"what do ya want for nothing!", &tag));
    }

    #[test]
    fn derived_keys_differ_by_purpose() {
        let key = MacKey::new(b"root");
        assert_ne!(key.derive("a").sign(b"m"), key.derive("b").sign(b"m"));
    }
}
