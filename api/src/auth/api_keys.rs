//! API keys from configuration: a name, roles and the key's SHA-256 digest — never the key.
//!
//! A key is 256 random bits (`crk_` + base64url), so a fast digest is enough: nothing can be
//! guessed from it, and checking it costs microseconds on every request.
//!
//! Configuration line: `<name> <role>[,<role>…] sha256:<base64url digest>`, one per line (or
//! separated by `;`), `#` starting a comment. `client-registry api-key --name … --roles …`
//! makes a key and prints its line.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use registry_commands::SecretString;
use sha2::{Digest, Sha256};

use super::roles::{Principal, Roles};

/// Prefix of generated keys, so they are recognisable in a leak scan.
pub const KEY_PREFIX: &str = "crk_";

/// SHA-256 of a token.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The keys this service accepts, by digest.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys(HashMap<[u8; 32], Principal>);

impl ApiKeys {
    /// Parses configuration lines.
    ///
    /// # Errors
    /// A message naming the line that is wrong, without repeating any digest.
    pub fn parse(config: &str) -> Result<Self, String> {
        let mut keys = HashMap::new();
        for (number, line) in config
            .split(['\n', ';'])
            .map(|l| l.split('#').next().unwrap_or_default().trim())
            .enumerate()
            .filter(|(_, l)| !l.is_empty())
        {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [name, roles, digest] = parts[..] else {
                return Err(format!(
                    "API key entry {}: expected `<name> <roles> sha256:<digest>`",
                    number + 1
                ));
            };
            let roles = Roles::parse(roles).map_err(|e| format!("API key {name}: {e}"))?;
            let digest = digest
                .strip_prefix("sha256:")
                .and_then(|d| URL_SAFE_NO_PAD.decode(d).ok())
                .and_then(|d| <[u8; 32]>::try_from(d).ok())
                .ok_or_else(|| {
                    format!("API key {name}: the digest must be sha256:<base64url of 32 bytes>")
                })?;
            let principal = Principal {
                name: name.to_owned(),
                roles,
            };
            if keys.insert(digest, principal).is_some() {
                return Err(format!("API key {name}: the same key is configured twice"));
            }
        }
        Ok(Self(keys))
    }

    /// Adds one key by its digest.
    pub fn insert(&mut self, digest: [u8; 32], principal: Principal) {
        self.0.insert(digest, principal);
    }

    /// The principal whose key is `token`.
    pub fn find(&self, token: &str) -> Option<&Principal> {
        self.0.get(&digest(token))
    }

    /// The principal whose key has this SHA-256.
    pub fn find_digest(&self, token_sha256: &[u8; 32]) -> Option<&Principal> {
        self.0.get(token_sha256)
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A new key (to show once) and its configuration line (to store).
pub fn generate(name: &str, roles: Roles) -> (String, String) {
    let token = format!("{KEY_PREFIX}{}", SecretString::generate().expose());
    let line = format!(
        "{name} {roles} sha256:{}",
        URL_SAFE_NO_PAD.encode(digest(&token))
    );
    (token, line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::roles::Role;

    #[test]
    fn a_generated_key_is_found_by_its_configuration_line() {
        let (key, line) = generate("ci-bot", Roles::parse("clients:read").unwrap_or_default());
        assert!(key.starts_with(KEY_PREFIX));
        assert!(!line.contains(&key), "the line never holds the key");
        let keys = ApiKeys::parse(&format!("# comment\n{line}\n")).unwrap_or_default();
        let principal = keys.find(&key).cloned();
        assert_eq!(principal.as_ref().map(|p| p.name.as_str()), Some("ci-bot"));
        assert!(principal.is_some_and(
            |p| p.roles.contains(Role::ClientsRead) && !p.roles.contains(Role::ClientsWrite)
        ));
        assert!(keys.find("crk_wrong").is_none());
    }

    #[test]
    fn malformed_lines_are_refused_with_their_name() {
        assert!(ApiKeys::parse("bot clients:read").is_err());
        assert!(ApiKeys::parse("bot clients:read sha256:short").is_err_and(|e| e.contains("bot")));
        assert!(ApiKeys::parse("bot root sha256:AAAA").is_err_and(|e| e.contains("root")));
    }
}
