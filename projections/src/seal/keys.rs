//! The registry's Ed25519 key that signs tree heads: a PKCS#8 PEM file (configured, or
//! generated at the first start, readable by its owner only), its public key as PEM
//! (SubjectPublicKeyInfo) and its id (the hex SHA-256 of the 32 raw public-key bytes).

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair as _, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};

/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: [u8; 32],
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.key_id())
    }
}

impl SigningKey {
    /// Reads the key at `path`, or makes one there (mode 0600) when there is none. Answers
    /// whether it was generated now.
    ///
    /// # Errors
    /// An unreadable or malformed file, or one that cannot be written.
    pub fn load_or_generate(path: &Path) -> anyhow::Result<(Self, bool)> {
        if let Some(parent) = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty() && !p.is_dir())
        {
            // The owner's only, like the key in it.
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let rng = ring::rand::SystemRandom::new();
        let document = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| anyhow::anyhow!("generating an Ed25519 key failed"))?;
        let generated = if path.exists() {
            false
        } else {
            // Written whole to a file of its own, then linked into place: another process
            // starting at the same moment sees no key or a complete one, never half of one.
            let pem = pem("PRIVATE KEY", document.as_ref());
            let partial = path.with_extension(format!("partial-{}", uuid_like()));
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(&partial)
                .with_context(|| format!("creating {}", partial.display()))?;
            file.write_all(pem.as_bytes())
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing {}", partial.display()))?;
            let linked = std::fs::hard_link(&partial, path);
            let _ = std::fs::remove_file(&partial);
            match linked {
                Ok(()) => true,
                // Another process made it first: use theirs.
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(error) => {
                    return Err(error).with_context(|| format!("creating {}", path.display()))
                }
            }
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok((
            Self::from_pem(&text).with_context(|| path.display().to_string())?,
            generated,
        ))
    }

    /// The key of a PKCS#8 PEM (`openssl genpkey -algorithm ed25519` writes one).
    ///
    /// # Errors
    /// Not a PEM private key of Ed25519.
    pub fn from_pem(text: &str) -> anyhow::Result<Self> {
        let der = unpem(text, "PRIVATE KEY")?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| anyhow::anyhow!("not an Ed25519 private key ({e})"))?;
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| anyhow::anyhow!("an Ed25519 public key is 32 bytes"))?;
        Ok(Self { pair, public })
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }

    /// A secret of this key's own for `purpose` (SHA-256 of the key's Ed25519 signature of
    /// it: deterministic, RFC 8032, and unknowable without the private key). The key file is
    /// kept apart from the database, so what this signs cannot be forged by writing the
    /// database alone.
    pub fn derive_secret(&self, purpose: &str) -> [u8; 32] {
        let signature = self.sign(format!("client-registry derived secret: {purpose}").as_bytes());
        Sha256::digest(&signature).into()
    }

    /// The public key's 32 bytes.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// The key's id.
    pub fn key_id(&self) -> String {
        key_id(&self.public)
    }

    /// The public key as PEM.
    pub fn public_pem(&self) -> String {
        public_pem(&self.public)
    }
}

/// A name no other process picks at the same moment.
fn uuid_like() -> String {
    let mut random = [0u8; 8];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random);
    format!("{}-{}", std::process::id(), u64::from_le_bytes(random))
}

/// The hex SHA-256 of a public key's 32 bytes.
pub fn key_id(public: &[u8; 32]) -> String {
    super::merkle::hex(&Sha256::digest(public).into())
}

/// A public key as PEM (SubjectPublicKeyInfo).
pub fn public_pem(public: &[u8; 32]) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(public);
    pem("PUBLIC KEY", &der)
}

/// A public key from PEM, from the JSON of `/api/v1/audit/key`, or from its base64.
///
/// # Errors
/// None of those.
pub fn parse_public(text: &str) -> anyhow::Result<[u8; 32]> {
    let text = text.trim();
    let raw = if text.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let encoded = value["public_key"]
            .as_str()
            .context("the key document has no public_key")?;
        STANDARD.decode(encoded)?
    } else if text.starts_with("-----BEGIN") {
        let der = unpem(text, "PUBLIC KEY")?;
        der.strip_prefix(&SPKI_PREFIX[..])
            .context("not an Ed25519 public key")?
            .to_vec()
    } else {
        STANDARD.decode(text)?
    };
    raw.try_into()
        .map_err(|_| anyhow::anyhow!("an Ed25519 public key is 32 bytes"))
}

/// Whether `signature` is `public`'s over `message`.
pub fn verify(public: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public)
        .verify(message, signature)
        .is_ok()
}

fn pem(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn unpem(text: &str, label: &str) -> anyhow::Result<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .with_context(|| format!("no {begin} block"))?
        + begin.len();
    let stop = text[start..]
        .find(&end)
        .with_context(|| format!("no {end}"))?
        + start;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Ok(STANDARD.decode(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_signs_reloads_and_verifies() {
        let dir = std::env::temp_dir().join(format!("seal-key-{}", std::process::id()));
        let path = dir.join("nested").join("key.pem");
        let _ = std::fs::remove_dir_all(&dir);
        let (key, generated) = SigningKey::load_or_generate(&path).unwrap();
        assert!(generated);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, generated) = SigningKey::load_or_generate(&path).unwrap();
        assert!(!generated);
        assert_eq!(key.public(), again.public());
        let signature = key.sign(b"tree head");
        assert!(verify(&key.public(), b"tree head", &signature));
        assert!(!verify(&key.public(), b"tree head!", &signature));
        assert_eq!(parse_public(&key.public_pem()).unwrap(), key.public());
        let json = serde_json::json!({"public_key": STANDARD.encode(key.public())}).to_string();
        assert_eq!(parse_public(&json).unwrap(), key.public());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_openssl_key_reads() {
        // `openssl genpkey -algorithm ed25519` (PKCS#8 v1, no public key inside).
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIMwjjh0Y3yg1b8YwLWRYrl6Gg/cvsGbDTz01+MGnAvWN\n-----END PRIVATE KEY-----\n";
        let key = SigningKey::from_pem(pem).unwrap();
        assert!(verify(&key.public(), b"x", &key.sign(b"x")));
    }
}
