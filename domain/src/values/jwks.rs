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
        // Each key keeps its index in what was sent, so every error names the right one.
        let parsed: Vec<(usize, Jwk)> = (keys.iter().enumerate())
            .filter_map(|(i, key)| {
                Jwk::parse(key, &format!("{field}.keys[{i}]"), errors).map(|k| (i, k))
            })
            .collect();
        let several = keys.len() > 1;
        for (at, (i, key)) in parsed.iter().enumerate() {
            let path = format!("{field}.keys[{i}].kid");
            match &key.kid {
                None if several => errors.add(path, "each key of a set with several needs a kid"),
                Some(kid)
                    if parsed[..at]
                        .iter()
                        .any(|(_, k)| k.kid.as_ref() == Some(kid)) =>
                {
                    errors.add(path, "must be unique in the set");
                }
                _ => {}
            }
        }
        (errors.errors().len() == before).then(|| Self {
            keys: parsed.into_iter().map(|(_, key)| key).collect(),
        })
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
        let mut key = key;
        key.check_material(path, errors);
        (errors.errors().len() == before).then_some(key)
    }

    /// The key type's own members and algorithm; members of other key types are dropped.
    fn check_material(&mut self, path: &str, errors: &mut ValidationErrors) {
        let (algs, curve): (&[&str], Option<&str>) = match self.kty.as_str() {
            "RSA" => (&["RS256", "PS256"], None),
            "EC" => (&["ES256"], Some("P-256")),
            "OKP" => (&["EdDSA", "Ed25519"], Some("Ed25519")),
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
        let found = match self.kty.as_str() {
            "RSA" => {
                (self.crv, self.x, self.y) = (None, None, None);
                check_rsa(self.n.as_deref(), self.e.as_deref())
            }
            "EC" => {
                (self.n, self.e) = (None, None);
                check_p256(self.x.as_deref(), self.y.as_deref())
            }
            _ => {
                (self.n, self.e, self.y) = (None, None, None);
                check_ed25519(self.x.as_deref())
            }
        };
        for (member, message) in found {
            errors.add(format!("{path}.{member}"), message);
        }
    }
}

/// A member's bytes.
fn decode(raw: Option<&str>) -> Result<Vec<u8>, String> {
    let raw = raw.ok_or("is required")?;
    URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| "must be base64url without padding".to_owned())
}

/// An RSA public key: a modulus of 2048–16384 bits, odd; an exponent of at least 65537, odd
/// (e = 1 would make every signature verify).
fn check_rsa(n: Option<&str>, e: Option<&str>) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    match decode(n) {
        Err(message) => found.push(("n", message)),
        Ok(bytes) => {
            let significant: Vec<u8> = bytes.into_iter().skip_while(|b| *b == 0).collect();
            let bits = significant.first().map_or(0, |top| {
                (significant.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
            });
            if !(2048..=16384).contains(&bits) {
                found.push(("n", format!("must be 2048–16384 bits (is {bits})")));
            } else if significant.last().is_some_and(|b| b % 2 == 0) {
                found.push(("n", "is not an RSA modulus (even)".to_owned()));
            }
        }
    }
    match decode(e) {
        Err(message) => found.push(("e", message)),
        Ok(bytes) => {
            let significant: Vec<u8> = bytes.into_iter().skip_while(|b| *b == 0).collect();
            let value = (significant.len() <= 8).then(|| {
                significant
                    .iter()
                    .fold(0u64, |v, b| (v << 8) | u64::from(*b))
            });
            if value.is_none_or(|e| e < 65_537 || e % 2 == 0) {
                found.push((
                    "e",
                    "must be an odd exponent of at least 65537 (AQAB)".to_owned(),
                ));
            }
        }
    }
    found
}

/// A P-256 public point: 32-byte coordinates of a point on the curve (checked by using it in a
/// key agreement, which refuses any other point).
fn check_p256(x: Option<&str>, y: Option<&str>) -> Vec<(&'static str, String)> {
    let (x, y) = match (decode(x), decode(y)) {
        (Ok(x), Ok(y)) if x.len() == 32 && y.len() == 32 => (x, y),
        (x, y) => {
            let size = |member, decoded: Result<Vec<u8>, String>| match decoded {
                Ok(bytes) if bytes.len() == 32 => None,
                Ok(_) => Some((member, "must be 32 bytes".to_owned())),
                Err(message) => Some((member, message)),
            };
            return [size("x", x), size("y", y)].into_iter().flatten().collect();
        }
    };
    let point: Vec<u8> = [&[4u8][..], &x, &y].concat();
    let rng = ring::rand::SystemRandom::new();
    let on_curve =
        ring::agreement::EphemeralPrivateKey::generate(&ring::agreement::ECDH_P256, &rng)
            .ok()
            .and_then(|mine| {
                let theirs =
                    ring::agreement::UnparsedPublicKey::new(&ring::agreement::ECDH_P256, &point);
                ring::agreement::agree_ephemeral(mine, &theirs, |_| ()).ok()
            })
            .is_some();
    if on_curve {
        Vec::new()
    } else {
        vec![("x", "x and y are not a point of P-256".to_owned())]
    }
}

/// The encodings of the Ed25519 points of small order (the sign bit masked), as libsodium
/// blocks them: with one of these as the public key, a forged signature verifies.
const SMALL_ORDER: [[u8; 32]; 7] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

/// An Ed25519 public key: 32 bytes, not a point of small order.
fn check_ed25519(x: Option<&str>) -> Vec<(&'static str, String)> {
    match decode(x) {
        Err(message) => vec![("x", message)],
        Ok(bytes) if bytes.len() != 32 => vec![("x", "must be 32 bytes".to_owned())],
        Ok(mut bytes) => {
            bytes[31] &= 0x7f;
            if SMALL_ORDER.iter().any(|weak| weak[..] == bytes[..]) {
                vec![(
                    "x",
                    "is a point of small order, not a public key".to_owned(),
                )]
            } else {
                Vec::new()
            }
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
        // The identity service fetches it: never an address or a name inside its network.
        let public_name = match url.host() {
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name.contains('.')
                    && !name.ends_with(".localhost")
                    && !name.ends_with(".local")
                    && !name.ends_with(".internal")
            }
            _ => false,
        };
        if !public_name {
            return Err(ValueError::new(
                "must name a public host: not an IP address, localhost, a single-label, .local or .internal name",
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

    /// A 2048-bit odd modulus (its factors do not matter here).
    fn modulus(top: u8, len: usize) -> String {
        let mut n = vec![0xc1u8; len];
        n[0] = top;
        URL_SAFE_NO_PAD.encode(n)
    }

    /// RFC 7517 Appendix A.1's P-256 point and RFC 8037 Appendix A.2's Ed25519 key.
    const EC_X: &str = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
    const EC_Y: &str = "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM";
    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn fields(raw: Value) -> Vec<String> {
        let mut errors = ValidationErrors::default();
        let parsed = Jwks::parse(&raw, "jwks", &mut errors);
        assert_eq!(parsed.is_some(), errors.is_empty());
        errors.errors().iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn public_keys_of_the_three_types_are_kept_without_extra_members() {
        let raw = json!({"keys": [
            {"kty": "RSA", "kid": "r", "alg": "PS256", "n": modulus(0xc1, 256), "e": "AQAB", "x5t": "drop", "x": "foreign"},
            {"kty": "EC", "kid": "e", "crv": "P-256", "x": EC_X, "y": EC_Y, "use": "sig", "n": "foreign"},
            {"kty": "OKP", "kid": "o", "crv": "Ed25519", "x": ED_X, "alg": "EdDSA", "y": "foreign"},
        ]});
        let mut errors = ValidationErrors::default();
        let jwks = Jwks::parse(&raw, "jwks", &mut errors).expect("valid");
        assert_eq!(jwks.kids(), ["r", "e", "o"]);
        let back = serde_json::to_value(&jwks).expect("json");
        assert!(back["keys"][0].get("x5t").is_none());
        assert!(back["keys"][0].get("x").is_none(), "another type's member");
        assert!(back["keys"][1].get("n").is_none());
        assert!(back["keys"][2].get("y").is_none());
        assert_eq!(back["keys"][1]["use"], "sig");
    }

    #[test]
    fn private_symmetric_weak_and_duplicate_keys_are_named() {
        let rsa =
            json!({"kty": "RSA", "kid": "a", "n": modulus(0xc1, 256), "e": "AQAB", "d": "secret"});
        assert_eq!(fields(json!({"keys": [rsa]})), ["jwks.keys[0].d"]);
        let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert_eq!(
            fields(json!({"keys": [oct]})),
            ["jwks.keys[0].k", "jwks.keys[0].kty"]
        );
        let weak = json!({"kty": "RSA", "n": b64(128), "e": "AQAB"});
        assert_eq!(fields(json!({"keys": [weak]})), ["jwks.keys[0].n"]);
        let ec = |kid: &str| json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": EC_X, "y": EC_Y});
        assert_eq!(
            fields(json!({"keys": [ec("k"), ec("k")]})),
            ["jwks.keys[1].kid"]
        );
        let anon = json!({"kty": "OKP", "crv": "Ed25519", "x": ED_X});
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
    fn keys_anyone_could_sign_with_are_refused() {
        let rsa = |n: String, e: &str| json!({"keys": [{"kty": "RSA", "n": n, "e": e}]});
        assert_eq!(
            fields(rsa(modulus(0xc1, 256), "AQ")),
            ["jwks.keys[0].e"],
            "e = 1"
        );
        assert_eq!(
            fields(rsa(modulus(0xc1, 256), "Aw")),
            ["jwks.keys[0].e"],
            "e = 3"
        );
        assert_eq!(
            fields(rsa(modulus(0x7f, 256), "AQAB")),
            ["jwks.keys[0].n"],
            "2047 bits"
        );
        let mut even = vec![0xc1u8; 256];
        even[255] = 0xc2;
        assert_eq!(
            fields(rsa(URL_SAFE_NO_PAD.encode(even), "AQAB")),
            ["jwks.keys[0].n"]
        );
        let off_curve =
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": b64(32), "y": b64(32)}]});
        assert_eq!(fields(off_curve), ["jwks.keys[0].x"]);
        let identity = URL_SAFE_NO_PAD.encode({
            let mut x = [0u8; 32];
            x[0] = 1;
            x
        });
        let small = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": identity}]});
        assert_eq!(fields(small), ["jwks.keys[0].x"]);
        // Errors name the key as sent, also after a key that failed.
        let bad = json!({"kty": "EC"});
        let ec = |kid: &str| json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": EC_X, "y": EC_Y});
        let named = fields(json!({"keys": [bad, ec("k"), ec("k")]}));
        assert_eq!(named.last().map(String::as_str), Some("jwks.keys[2].kid"));
    }

    #[test]
    fn jwks_uris_are_https() {
        assert!(JwksUri::parse("https://app.example.com/.well-known/jwks.json").is_ok());
        for bad in [
            "http://app.example.com/jwks",
            "https://app.example.com/jwks#k",
            "https://user@app.example.com/jwks",
            "jwks.json",
            "https://127.0.0.1/jwks",
            "https://[::1]/jwks",
            "https://10.0.0.5/jwks",
            "https://localhost/jwks",
            "https://intranet/jwks",
            "https://keys.corp.internal/jwks",
        ] {
            assert!(JwksUri::parse(bad).is_err(), "{bad}");
        }
    }
}
