//! A client's public keys (`jwks`, `jwks_uri`, RFC 7591 §2): what an identity service checks a
//! `private_key_jwt` assertion (RFC 7523) against.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{has_control, string_value, ValueError};
use crate::client::ValidationErrors;

/// Most keys one JWK Set may hold.
pub const MAX_KEYS: usize = 20;

/// Members that make a JWK a private or symmetric key (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC
/// 8037 §2): a registry of public keys refuses them.
pub const PRIVATE_KEY_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// One public signing key, as kept: the members an identity service needs to verify a
/// signature; any other member a caller sent is left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// The key's id, unique in the set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `sig` when given.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// `RS256`, `PS256`, `ES256` or `EdDSA` when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// RSA modulus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// The curve: `P-256` (EC) or `Ed25519` (OKP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// The public point's x (EC) or the public key (OKP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// The public point's y (EC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
}

/// A JWK Set of public signing keys (RFC 7517 §5): 1–20 keys of type `RSA` (2048–16384 bits,
/// `RS256`/`PS256`), `EC` (`P-256`, `ES256`) or `OKP` (`Ed25519`, `EdDSA`); never a private
/// or symmetric key; each `kid` unique, and every key has one when there are several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// Validates a JWK Set as a caller sent it, recording each violation under `field`
    /// (`jwks.keys[0].d`).
    pub fn parse(raw: &Value, field: &str, errors: &mut ValidationErrors) -> Option<Self> {
        let Some(keys) = raw.get("keys").and_then(Value::as_array) else {
            errors.add(field, "must be a JWK Set: an object with a keys array");
            return None;
        };
        if keys.is_empty() || keys.len() > MAX_KEYS {
            errors.add(
                format!("{field}.keys"),
                format!("must hold 1 to {MAX_KEYS} keys"),
            );
            return None;
        }
        let before = errors.errors().len();
        let parsed: Vec<Jwk> = (keys.iter().enumerate())
            .filter_map(|(i, key)| Jwk::parse(key, &format!("{field}.keys[{i}]"), errors))
            .collect();
        for (i, key) in parsed.iter().enumerate() {
            let path = format!("{field}.keys[{i}].kid");
            match &key.kid {
                None if parsed.len() > 1 => {
                    errors.add(path, "each key of a set with several needs a kid");
                }
                Some(kid) if parsed[..i].iter().any(|k| k.kid.as_ref() == Some(kid)) => {
                    errors.add(path, "must be unique in the set");
                }
                _ => {}
            }
        }
        (errors.errors().len() == before).then_some(Self { keys: parsed })
    }

    /// The ids of its keys (`-` for a key without one), for history and screens.
    pub fn kids(&self) -> Vec<String> {
        (self.keys.iter())
            .map(|k| k.kid.clone().unwrap_or_else(|| "-".to_owned()))
            .collect()
    }
}

impl Jwk {
    fn parse(raw: &Value, path: &str, errors: &mut ValidationErrors) -> Option<Self> {
        let Some(object) = raw.as_object() else {
            errors.add(path, "must be a JSON Web Key (an object)");
            return None;
        };
        let before = errors.errors().len();
        for member in PRIVATE_KEY_MEMBERS {
            if object.contains_key(member) {
                errors.add(
                    format!("{path}.{member}"),
                    "is a private or symmetric key member: register the public key only",
                );
            }
        }
        let text = |member: &str, errors: &mut ValidationErrors| match object.get(member) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 4096 && !has_control(s) => {
                Some(s.clone())
            }
            Some(_) => {
                errors.add(format!("{path}.{member}"), "must be a non-empty string");
                None
            }
        };
        let key = Self {
            kty: text("kty", errors).unwrap_or_default(),
            kid: text("kid", errors),
            use_: text("use", errors),
            alg: text("alg", errors),
            n: text("n", errors),
            e: text("e", errors),
            crv: text("crv", errors),
            x: text("x", errors),
            y: text("y", errors),
        };
        if key.kid.as_ref().is_some_and(|kid| kid.len() > 200) {
            errors.add(format!("{path}.kid"), "must be at most 200 characters");
        }
        if key.use_.as_deref().is_some_and(|u| u != "sig") {
            errors.add(
                format!("{path}.use"),
                "must be sig: these keys sign client assertions",
            );
        }
        key.check_material(path, errors);
        (errors.errors().len() == before).then_some(key)
    }

    /// The key type's own members and algorithm.
    fn check_material(&self, path: &str, errors: &mut ValidationErrors) {
        let (algs, members): (&[&str], &[(&str, Size)]) = match self.kty.as_str() {
            "RSA" => (
                &["RS256", "PS256"],
                &[("n", Size::Between(256, 2048)), ("e", Size::Between(1, 8))],
            ),
            "EC" => (
                &["ES256"],
                &[("x", Size::Exactly(32)), ("y", Size::Exactly(32))],
            ),
            "OKP" => (&["EdDSA", "Ed25519"], &[("x", Size::Exactly(32))]),
            "oct" => {
                errors.add(
                    format!("{path}.kty"),
                    "a symmetric key (oct) is a shared secret: register a public key",
                );
                return;
            }
            _ => {
                errors.add(format!("{path}.kty"), "must be RSA, EC or OKP");
                return;
            }
        };
        let curve = match self.kty.as_str() {
            "EC" => Some("P-256"),
            "OKP" => Some("Ed25519"),
            _ => None,
        };
        if let Some(curve) = curve {
            if self.crv.as_deref() != Some(curve) {
                errors.add(format!("{path}.crv"), format!("must be {curve}"));
            }
        }
        if let Some(alg) = self.alg.as_deref().filter(|alg| !algs.contains(alg)) {
            errors.add(
                format!("{path}.alg"),
                format!(
                    "{alg} is not accepted for a {} key: use {}",
                    self.kty,
                    algs.join(" or ")
                ),
            );
        }
        for (member, size) in members {
            let value = match *member {
                "n" => &self.n,
                "e" => &self.e,
                "x" => &self.x,
                _ => &self.y,
            };
            if let Err(message) = size.check(value.as_deref()) {
                errors.add(format!("{path}.{member}"), message);
            }
        }
    }
}

/// How long a key member must be, in bytes once decoded.
#[derive(Clone, Copy)]
enum Size {
    Exactly(usize),
    Between(usize, usize),
}

impl Size {
    fn check(self, raw: Option<&str>) -> Result<(), String> {
        let raw = raw.ok_or("is required")?;
        let bytes = URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| "must be base64url without padding")?;
        // An RSA modulus may carry one leading zero byte.
        let len = bytes.iter().skip_while(|b| **b == 0).count();
        match self {
            Self::Exactly(n) if bytes.len() != n => Err(format!("must be {n} bytes")),
            Self::Between(min, max) if len < min || len > max => Err(if min >= 256 {
                format!("must be {}–{} bits", min * 8, max * 8)
            } else {
                format!("must be {min}–{max} bytes")
            }),
            _ => Ok(()),
        }
    }
}

/// Where the client publishes its public keys (`jwks_uri`): an `https` URL with a host and
/// no fragment, at most 2,000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JwksUri(String);

impl JwksUri {
    /// Validates a JWK Set URL.
    ///
    /// # Errors
    /// A [`ValueError`] naming the rule broken.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        if s.len() > 2000 || has_control(s) {
            return Err(ValueError::new(
                "must be at most 2000 characters, without control characters",
            ));
        }
        let url = url::Url::parse(s).map_err(|_| ValueError::new("must be an absolute URL"))?;
        if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
            return Err(ValueError::new("must be an https URL"));
        }
        if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
            return Err(ValueError::new(
                "must not have a fragment or user information",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

string_value!(JwksUri);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn b64(len: usize) -> String {
        URL_SAFE_NO_PAD.encode(vec![7u8; len])
    }

    fn fields(raw: Value) -> Vec<String> {
        let mut errors = ValidationErrors::default();
        let parsed = Jwks::parse(&raw, "jwks", &mut errors);
        assert_eq!(parsed.is_some(), errors.is_empty());
        errors.errors().iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn public_keys_of_the_three_types_are_kept_without_extra_members() {
        let raw = json!({"keys": [
            {"kty": "RSA", "kid": "r", "alg": "PS256", "n": b64(256), "e": "AQAB", "x5t": "drop"},
            {"kty": "EC", "kid": "e", "crv": "P-256", "x": b64(32), "y": b64(32), "use": "sig"},
            {"kty": "OKP", "kid": "o", "crv": "Ed25519", "x": b64(32), "alg": "EdDSA"},
        ]});
        let mut errors = ValidationErrors::default();
        let jwks = Jwks::parse(&raw, "jwks", &mut errors).expect("valid");
        assert_eq!(jwks.kids(), ["r", "e", "o"]);
        let back = serde_json::to_value(&jwks).expect("json");
        assert!(back["keys"][0].get("x5t").is_none());
        assert_eq!(back["keys"][1]["use"], "sig");
    }

    #[test]
    fn private_symmetric_weak_and_duplicate_keys_are_named() {
        let rsa = json!({"kty": "RSA", "kid": "a", "n": b64(256), "e": "AQAB", "d": "secret"});
        assert_eq!(fields(json!({"keys": [rsa]})), ["jwks.keys[0].d"]);
        let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert_eq!(
            fields(json!({"keys": [oct]})),
            ["jwks.keys[0].k", "jwks.keys[0].kty"]
        );
        let weak = json!({"kty": "RSA", "n": b64(128), "e": "AQAB"});
        assert_eq!(fields(json!({"keys": [weak]})), ["jwks.keys[0].n"]);
        let ec = |kid: &str| json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(32), "y": b64(32)});
        assert_eq!(
            fields(json!({"keys": [ec("k"), ec("k")]})),
            ["jwks.keys[1].kid"]
        );
        let anon = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(32)});
        assert_eq!(
            fields(json!({"keys": [anon.clone(), anon]})),
            ["jwks.keys[0].kid", "jwks.keys[1].kid"]
        );
        let hs = json!({"kty": "EC", "crv": "P-384", "x": b64(48), "y": b64(48), "alg": "HS256"});
        assert_eq!(
            fields(json!({"keys": [hs]})),
            [
                "jwks.keys[0].crv",
                "jwks.keys[0].alg",
                "jwks.keys[0].x",
                "jwks.keys[0].y"
            ]
        );
        assert_eq!(fields(json!({"keys": []})), ["jwks.keys"]);
        assert_eq!(fields(json!([1])), ["jwks"]);
        assert_eq!(
            fields(json!({"keys": [{"kty": "RSA", "n": "!!", "e": 3}]})),
            ["jwks.keys[0].e", "jwks.keys[0].n", "jwks.keys[0].e"]
        );
    }

    #[test]
    fn jwks_uris_are_https() {
        assert!(JwksUri::parse("https://app.example.com/.well-known/jwks.json").is_ok());
        for bad in [
            "http://app.example.com/jwks",
            "https://app.example.com/jwks#k",
            "https://user@app.example.com/jwks",
            "jwks.json",
        ] {
            assert!(JwksUri::parse(bad).is_err(), "{bad}");
        }
    }
}
