//! The clients-as-code document: one YAML or JSON file with a top-level `clients` array (each
//! entry with exactly the API's field names) and an optional `unmanaged` list of client ids
//! that apply never touches. No secret is ever written in it: a confidential client may name
//! one by reference (`client_secret_env: NAME`), resolved where the file is applied.
//!
//! Reading a document reports every problem at once, each with its path
//! (`clients[3].redirect_uris[1]`): the shape of each entry, then the registry's own rules for
//! its settings, then the rules between entries (duplicate ids, an id both managed and
//! unmanaged).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use registry_domain::client::ValidationErrors;
use registry_domain::{ClientSettings, ClientSettingsInput};
use registry_projections::ClientView;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A document of clients.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientsDocument {
    /// The clients this document manages, each as the API describes it.
    pub clients: Vec<DocumentClient>,
    /// Client ids that apply never changes or deletes, even with prune (e.g. clients managed
    /// by hand or by another pipeline).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged: Vec<String>,
}

fn yes() -> bool {
    true
}

fn authorization_code() -> Vec<String> {
    vec!["authorization_code".to_owned()]
}

/// One client of a document: the API's fields, the guide's defaults where one is left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentClient {
    /// Unique id: 1–128 of `A-Z a-z 0-9 - . _ ~`.
    #[schema(example = "data-refinery-studio")]
    pub client_id: String,
    /// Display name (1–200 characters).
    pub client_name: String,
    /// Base URL of the client application (`https`, or `http` on loopback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// Confidential client that authenticates with a secret. Default `true`.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub require_client_secret: bool,
    /// For a confidential client: the environment variable holding its secret where the
    /// document is applied (used when the client is created). Never the secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z_][A-Za-z0-9_]*$", example = "STUDIO_CLIENT_SECRET")]
    pub client_secret_env: Option<String>,
    /// Whether the client can be used for authentication. Default `true`.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub enabled: bool,
    /// Allow refresh tokens. Default `false`.
    #[serde(default)]
    #[schema(default = false)]
    pub offline_access: bool,
    /// Require PKCE for the authorization code grant. Default `true`.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub require_pkce: bool,
    /// Allowed grant types. Default `["authorization_code"]`.
    #[serde(default = "authorization_code")]
    #[schema(default = json!(["authorization_code"]))]
    pub grant_types: Vec<String>,
    /// Where to redirect after login.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Where to redirect after logout.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Origins allowed to call the identity service from a browser.
    #[serde(default)]
    pub allowed_cors_origins: Vec<String>,
    /// Scopes the client may request.
    #[serde(default)]
    pub allowed_scopes: Vec<String>,
}

impl DocumentClient {
    /// The settings this entry asks for, as a command takes them.
    pub fn settings_input(&self) -> ClientSettingsInput {
        ClientSettingsInput {
            client_name: Some(self.client_name.clone()),
            client_uri: self.client_uri.clone(),
            require_client_secret: self.require_client_secret,
            enabled: self.enabled,
            offline_access: self.offline_access,
            require_pkce: self.require_pkce,
            grant_types: self.grant_types.clone(),
            redirect_uris: self.redirect_uris.clone(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            allowed_cors_origins: self.allowed_cors_origins.clone(),
            allowed_scopes: self.allowed_scopes.clone(),
        }
    }

    /// A registered client as a document entry (what applies back to it).
    pub fn of(view: &ClientView) -> Self {
        let s = &view.settings;
        let strings = |values: Vec<String>| values;
        Self {
            client_id: view.client_id.clone(),
            client_name: s.client_name.to_string(),
            client_uri: s.client_uri.as_ref().map(ToString::to_string),
            require_client_secret: s.require_client_secret,
            client_secret_env: None,
            enabled: s.enabled,
            offline_access: s.offline_access,
            require_pkce: s.require_pkce,
            grant_types: strings(
                s.grant_types
                    .iter()
                    .map(|g| g.as_str().to_owned())
                    .collect(),
            ),
            redirect_uris: s.redirect_uris.iter().map(ToString::to_string).collect(),
            post_logout_redirect_uris: s
                .post_logout_redirect_uris
                .iter()
                .map(ToString::to_string)
                .collect(),
            allowed_cors_origins: s
                .allowed_cors_origins
                .iter()
                .map(ToString::to_string)
                .collect(),
            allowed_scopes: s.allowed_scopes.iter().map(ToString::to_string).collect(),
        }
    }
}

/// The serialisation of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl DocumentFormat {
    /// The media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Yaml => "application/yaml",
            Self::Json => "application/json",
        }
    }

    /// The format of a request body with this `Content-Type` (YAML by default: JSON is
    /// YAML too).
    pub fn of_content_type(content_type: Option<&str>) -> Option<Self> {
        let essence = content_type
            .unwrap_or("application/yaml")
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/json" => Some(Self::Json),
            "application/yaml" | "application/x-yaml" | "text/yaml" | "text/x-yaml" => {
                Some(Self::Yaml)
            }
            _ => None,
        }
    }
}

/// A document read and checked: its clients with their validated settings.
#[derive(Debug, Clone)]
pub struct CheckedDocument {
    /// The document as written (defaults filled in).
    pub document: ClientsDocument,
    /// The validated settings of each client, in document order.
    pub settings: Vec<ClientSettings>,
}

/// How much the values of a document may take, in bytes as they are counted here: each value
/// costs [`VALUE_COST`] plus the text of each string (keys included). A document without
/// aliases stays far below this; one whose aliases copy large anchors (a 1 MB string under
/// an anchor and 10,000 aliases to it would be 10 GB) is refused when its expansion reaches
/// it, before the copy that would pass it is made.
pub fn expansion_limit(text_len: usize) -> usize {
    text_len.saturating_mul(8).saturating_add(1024 * 1024)
}

/// What one value costs against [`expansion_limit`], besides its text.
pub const VALUE_COST: usize = 32;

/// How deeply values may nest (a document needs 4 levels: document, clients, a client, a list).
pub const MAX_DEPTH: usize = 32;

/// Reads a document.
///
/// # Errors
/// Every problem found, each with its path; a syntax error alone when the text cannot be read
/// at all (`path` is then `document`).
pub fn parse(text: &[u8], format: DocumentFormat) -> Result<CheckedDocument, ValidationErrors> {
    parse_unless(text, format, &AtomicBool::new(false))
}

/// Like [`parse`], stopping as soon as `cancelled` is set (its caller went away: a request that
/// timed out must not keep a thread busy reading for nobody).
///
/// # Errors
/// As [`parse`]; a cancelled read is a `document` error.
pub fn parse_unless(
    text: &[u8],
    format: DocumentFormat,
    cancelled: &AtomicBool,
) -> Result<CheckedDocument, ValidationErrors> {
    let value = read_value(text, format, cancelled)?;
    check(&value)
}

/// The JSON value of a YAML or JSON text, read within [`expansion_limit`] and [`MAX_DEPTH`],
/// refusing a key given twice in one mapping (the last one would silently win over the one a
/// reviewer read), and stopping when `cancelled` is set.
///
/// # Errors
/// A `document` error saying why the text cannot be read.
pub fn read_value(
    text: &[u8],
    format: DocumentFormat,
    cancelled: &AtomicBool,
) -> Result<serde_json::Value, ValidationErrors> {
    let budget = bounded::Budget::new(expansion_limit(text.len()), cancelled);
    let seed = bounded::Bounded { budget: &budget };
    let syntax = |name: &str, e: &dyn std::fmt::Display| {
        let mut errors = ValidationErrors::default();
        errors.add("document", format!("is not valid {name}: {e}"));
        errors
    };
    match format {
        DocumentFormat::Json => {
            let mut deserializer = serde_json::Deserializer::from_slice(text);
            serde::de::DeserializeSeed::deserialize(seed, &mut deserializer)
                .and_then(|value| deserializer.end().map(|()| value))
                .map_err(|e| syntax("JSON", &e))
        }
        DocumentFormat::Yaml => serde::de::DeserializeSeed::deserialize(
            seed,
            serde_yaml_ng::Deserializer::from_slice(text),
        )
        .map_err(|e| syntax("YAML", &e)),
    }
}

/// The document in `value`, checked.
fn check(value: &serde_json::Value) -> Result<CheckedDocument, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let Some(object) = value.as_object() else {
        errors.add("document", "must be a mapping with a `clients` list");
        return Err(errors);
    };
    for key in object.keys() {
        if key != "clients" && key != "unmanaged" {
            errors.add(
                key.clone(),
                "is not a field of a document (clients, unmanaged)",
            );
        }
    }
    let unmanaged: Vec<String> = match object.get("unmanaged") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(list) => match serde_json::from_value(list.clone()) {
            Ok(ids) => ids,
            Err(_) => {
                errors.add("unmanaged", "must be a list of client ids");
                Vec::new()
            }
        },
    };
    let entries = match object.get("clients") {
        Some(serde_json::Value::Array(entries)) => entries.as_slice(),
        Some(_) => {
            errors.add("clients", "must be a list");
            &[]
        }
        None => {
            errors.add("clients", "is required");
            &[]
        }
    };
    let mut clients = Vec::with_capacity(entries.len());
    let mut settings = Vec::with_capacity(entries.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    let unmanaged_set: std::collections::HashSet<&str> =
        unmanaged.iter().map(String::as_str).collect();
    for (index, entry) in entries.iter().enumerate() {
        let at = |field: &str| {
            if field.is_empty() {
                format!("clients[{index}]")
            } else if field.starts_with('[') {
                format!("clients[{index}]{field}")
            } else {
                format!("clients[{index}].{field}")
            }
        };
        // A secret is reported (never repeated) and left out, so the rest is still checked.
        let mut entry = entry.clone();
        if let Some(object) = entry.as_object_mut() {
            for secret in ["client_secret", "secret", "secrets"] {
                if object.remove(secret).is_some() {
                    errors.add(
                        at(secret),
                        "a document never holds a secret: name it with client_secret_env",
                    );
                }
            }
        }
        let client: DocumentClient = match serde_path_to_error::deserialize(&entry) {
            Ok(client) => client,
            Err(error) => {
                let path = error.path().to_string();
                let field = if path == "." { String::new() } else { path };
                errors.add(at(&field), error.into_inner().to_string());
                continue;
            }
        };
        if let Some(first) = seen.insert(client.client_id.clone(), index) {
            errors.add(
                at("client_id"),
                format!("{} is already at clients[{first}]", client.client_id),
            );
        }
        if unmanaged_set.contains(client.client_id.as_str()) {
            errors.add(
                at("client_id"),
                "is listed as unmanaged: a client is either managed here or not",
            );
        }
        if let Err(id_error) = registry_domain::values::ClientId::parse(&client.client_id)
            .and_then(|id| id.check_registrable())
        {
            errors.add(at("client_id"), id_error.to_string());
        }
        if let Some(name) = &client.client_secret_env {
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                errors.add(
                    at("client_secret_env"),
                    "must be an environment variable name",
                );
            }
            if !client.require_client_secret {
                errors.add(
                    at("client_secret_env"),
                    "only a confidential client (require_client_secret) has a secret",
                );
            }
        }
        match ClientSettings::validate(&client.settings_input()) {
            Ok(valid) => settings.push(valid),
            Err(invalid) => {
                for error in invalid.errors() {
                    errors.add(at(&error.field), error.message.clone());
                }
            }
        }
        clients.push(client);
    }
    for (index, id) in unmanaged.iter().enumerate() {
        if registry_domain::values::ClientId::parse(id).is_err() {
            errors.add(format!("unmanaged[{index}]"), "is not a client id");
        }
    }
    errors.into_result(CheckedDocument {
        document: ClientsDocument { clients, unmanaged },
        settings,
    })
}

/// Writes a document.
///
/// # Errors
/// Serialisation failures (none are expected).
pub fn render(document: &ClientsDocument, format: DocumentFormat) -> anyhow::Result<String> {
    Ok(match format {
        DocumentFormat::Json => {
            let mut text = serde_json::to_string_pretty(document)?;
            text.push('\n');
            text
        }
        DocumentFormat::Yaml => serde_yaml_ng::to_string(document)?,
    })
}

/// The JSON Schema (2020-12) of a document, from the same types the registry reads it with.
pub fn json_schema() -> serde_json::Value {
    use utoipa::PartialSchema as _;
    let mut definitions = Vec::new();
    <ClientsDocument as ToSchema>::schemas(&mut definitions);
    <DocumentClient as ToSchema>::schemas(&mut definitions);
    let root = serde_json::to_value(ClientsDocument::schema()).unwrap_or_default();
    let mut defs = serde_json::Map::new();
    defs.insert(
        "DocumentClient".to_owned(),
        serde_json::to_value(DocumentClient::schema()).unwrap_or_default(),
    );
    for (name, schema) in definitions {
        defs.entry(name)
            .or_insert_with(|| serde_json::to_value(schema).unwrap_or_default());
    }
    let mut schema = serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "/api/v1/clients/schema.json",
        "title": "client-registry clients document",
        "description": "Clients as code: the document `client-registry clients plan|apply` and \
                        /api/v1/clients/plan take, and /api/v1/clients/export.yaml writes.",
    });
    if let (Some(target), serde_json::Value::Object(root)) = (schema.as_object_mut(), root) {
        target.extend(root);
        target.insert("$defs".to_owned(), serde_json::Value::Object(defs));
    }
    let text = schema
        .to_string()
        .replace("#/components/schemas/", "#/$defs/");
    serde_json::from_str(&text).unwrap_or_default()
}

/// A JSON value read within a budget of bytes and depth, refusing duplicate keys.
mod bounded {
    use std::cell::Cell;
    use std::fmt;
    use std::sync::atomic::{AtomicBool, Ordering};

    use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Number, Value};

    use super::{MAX_DEPTH, VALUE_COST};

    /// What is left to spend.
    pub(super) struct Budget<'a> {
        bytes: Cell<usize>,
        depth: Cell<usize>,
        cancelled: &'a AtomicBool,
    }

    impl<'a> Budget<'a> {
        pub(super) fn new(bytes: usize, cancelled: &'a AtomicBool) -> Self {
            Self {
                bytes: Cell::new(bytes),
                depth: Cell::new(0),
                cancelled,
            }
        }
    }

    #[derive(Clone, Copy)]
    pub(super) struct Bounded<'a> {
        pub(super) budget: &'a Budget<'a>,
    }

    impl Bounded<'_> {
        /// Pays for one value holding `text` bytes of text, before it is built.
        fn spend<E: de::Error>(self, text: usize) -> Result<(), E> {
            if self.budget.cancelled.load(Ordering::Relaxed) {
                return Err(E::custom("reading stopped: the request ended"));
            }
            let cost = VALUE_COST.saturating_add(text);
            match self.budget.bytes.get().checked_sub(cost) {
                Some(left) => {
                    self.budget.bytes.set(left);
                    Ok(())
                }
                None => Err(E::custom(
                    "expands to far more than it is long (YAML aliases of large values?): \
                     refused",
                )),
            }
        }

        /// Enters a list or mapping.
        fn enter<E: de::Error>(self) -> Result<(), E> {
            self.spend(0)?;
            let depth = self.budget.depth.get() + 1;
            if depth > MAX_DEPTH {
                return Err(E::custom(format!(
                    "nests deeper than {MAX_DEPTH} levels: refused"
                )));
            }
            self.budget.depth.set(depth);
            Ok(())
        }

        fn leave(self) {
            self.budget
                .depth
                .set(self.budget.depth.get().saturating_sub(1));
        }
    }

    impl<'de> DeserializeSeed<'de> for Bounded<'_> {
        type Value = Value;

        fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Bounded<'_> {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
            self.spend(0)?;
            Ok(Value::Bool(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
            self.spend(0)?;
            Ok(Value::Number(v.into()))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
            self.spend(0)?;
            Ok(Value::Number(v.into()))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
            self.spend(0)?;
            Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
            self.spend(v.len())?;
            Ok(Value::String(v.to_owned()))
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
            self.spend(v.len())?;
            Ok(Value::String(v))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
            self.spend(0)?;
            Ok(Value::Null)
        }

        fn visit_none<E: de::Error>(self) -> Result<Value, E> {
            self.visit_unit()
        }

        fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(self)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            self.enter()?;
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(self)? {
                items.push(item);
            }
            self.leave();
            Ok(Value::Array(items))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            self.enter()?;
            let mut members = Map::new();
            while let Some(key) = map.next_key_seed(self)? {
                let key = match key {
                    Value::String(key) => key,
                    other => other.to_string(),
                };
                let value = map.next_value_seed(self)?;
                if members.contains_key(&key) {
                    return Err(de::Error::custom(format!(
                        "the key {key:?} appears twice in one mapping"
                    )));
                }
                members.insert(key, value);
            }
            self.leave();
            Ok(Value::Object(members))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &ValidationErrors) -> Vec<&str> {
        errors.errors().iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_document_with_defaults_reads_as_the_api_would() {
        let checked = parse(
            b"clients:\n- client_id: cli\n  client_name: A CLI\n  require_client_secret: false\n  grant_types: [urn:ietf:params:oauth:grant-type:device_code]\n",
            DocumentFormat::Yaml,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let client = &checked.document.clients[0];
        assert!(client.enabled && client.require_pkce && !client.offline_access);
        assert_eq!(checked.settings.len(), 1);
        assert!(checked.document.unmanaged.is_empty());
    }

    #[test]
    fn every_error_of_every_client_comes_at_once_with_its_path() {
        let text = br#"{
          "clients": [
            {"client_id": "ok", "client_name": "Fine", "redirect_uris": ["https://a.example/cb"]},
            {"client_id": "bad", "client_name": "", "redirect_uris": ["https://a.example/cb", "not a url"]},
            {"client_id": "typo", "client_name": "T", "redirect_uri": []},
            {"client_id": "ok", "client_name": "Again", "redirect_uris": ["https://a.example/cb"]},
            {"client_id": "secret", "client_name": "S", "client_secret": "hunter2-hunter2-hunter2"},
            {"client_id": "pub", "client_name": "P", "require_client_secret": false,
             "client_secret_env": "PUB_SECRET", "redirect_uris": ["https://a.example/cb"]},
            {"client_id": "hand-made", "client_name": "H", "redirect_uris": ["https://a.example/cb"]}
          ],
          "unmanaged": ["hand-made", "not valid!"],
          "extra": 1
        }"#;
        let errors = parse(text, DocumentFormat::Json).err().unwrap_or_default();
        let found = fields(&errors);
        for expected in [
            "extra",
            "clients[1].client_name",
            "clients[1].redirect_uris[1]",
            "clients[2]",
            "clients[3].client_id",
            "clients[4].client_secret",
            "clients[5].client_secret_env",
            "clients[6].client_id",
            "unmanaged[1]",
        ] {
            assert!(
                found.iter().any(|f| f.starts_with(expected)),
                "{expected} missing from {found:?}"
            );
        }
        assert!(
            !found.iter().any(|f| f.starts_with("clients[0]")),
            "{found:?}"
        );
        assert!(
            !errors.to_string().contains("hunter2"),
            "no secret is repeated"
        );
    }

    #[test]
    fn what_is_not_a_document_says_so() {
        for (text, format) in [
            (&b"clients: [unclosed"[..], DocumentFormat::Yaml),
            (b"[1, 2]", DocumentFormat::Json),
            (b"{}", DocumentFormat::Json),
            (b"clients: 3", DocumentFormat::Yaml),
        ] {
            assert!(parse(text, format).is_err());
        }
    }

    #[test]
    fn an_alias_bomb_is_refused_before_it_expands() {
        // Nine levels of ten aliases each: 10^9 strings if expanded.
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let previous = format!("*a{}", level - 1);
            bomb.push_str(&format!(
                "a{level}: &a{level} [{}]\n",
                [previous.as_str(); 10].join(", ")
            ));
        }
        bomb.push_str("clients: []\n");
        let errors = parse(bomb.as_bytes(), DocumentFormat::Yaml).unwrap_err();
        assert!(
            errors.errors()[0].message.contains("expands to far more"),
            "{errors:?}"
        );
        // A document that uses an alias sensibly still reads.
        let shared = "clients:\n\
            - client_id: a\n  client_name: A\n  redirect_uris: &uris [https://a.example/cb]\n\
            - client_id: b\n  client_name: B\n  redirect_uris: *uris\n";
        let read = parse(shared.as_bytes(), DocumentFormat::Yaml).unwrap();
        assert_eq!(
            read.document.clients[1].redirect_uris,
            ["https://a.example/cb"]
        );
    }

    #[test]
    fn aliases_of_a_large_value_are_refused_by_the_bytes_they_copy() {
        // 1 MB under an anchor, 10,000 aliases: 10 GB if expanded; a few hundred nodes.
        let mut bomb = format!("big: &big \"{}\"\ncopies:\n", "x".repeat(1024 * 1024));
        for _ in 0..10_000 {
            bomb.push_str("  - *big\n");
        }
        bomb.push_str("clients: []\n");
        let errors = parse(bomb.as_bytes(), DocumentFormat::Yaml).unwrap_err();
        assert_eq!(fields(&errors), ["document"]);
        assert!(
            errors.to_string().contains("expands to far more"),
            "{errors}"
        );
    }

    #[test]
    fn values_nested_too_deep_are_refused() {
        let deep = format!("{{\"clients\": {}{}}}", "[".repeat(40), "]".repeat(40));
        let errors = parse(deep.as_bytes(), DocumentFormat::Json).unwrap_err();
        assert!(errors.to_string().contains("deeper than 32"), "{errors}");
    }

    #[test]
    fn a_cancelled_read_stops() {
        let errors =
            parse_unless(b"clients: []", DocumentFormat::Yaml, &AtomicBool::new(true)).unwrap_err();
        assert!(errors.to_string().contains("reading stopped"), "{errors}");
    }

    #[test]
    fn a_key_given_twice_is_refused_not_overwritten() {
        for (text, format) in [
            (
                &b"clients: []\nclients:\n- client_id: x\n  client_name: X\n"[..],
                DocumentFormat::Yaml,
            ),
            (
                br#"{"clients": [{"client_id": "a", "client_name": "A", "client_name": "B"}]}"#,
                DocumentFormat::Json,
            ),
        ] {
            let errors = parse(text, format).unwrap_err();
            assert!(
                errors.errors()[0].message.contains("appears twice"),
                "{errors:?}"
            );
        }
    }

    #[test]
    fn a_document_renders_and_reads_back_the_same() {
        let document = ClientsDocument {
            clients: vec![DocumentClient {
                client_id: "svc".to_owned(),
                client_name: "Service: \"quoted\" # not a comment".to_owned(),
                client_uri: None,
                require_client_secret: true,
                client_secret_env: Some("SVC_SECRET".to_owned()),
                enabled: true,
                offline_access: false,
                require_pkce: true,
                grant_types: vec!["client_credentials".to_owned()],
                redirect_uris: Vec::new(),
                post_logout_redirect_uris: Vec::new(),
                allowed_cors_origins: Vec::new(),
                allowed_scopes: vec!["octo_api".to_owned()],
            }],
            unmanaged: vec!["octo-cli".to_owned()],
        };
        for format in [DocumentFormat::Yaml, DocumentFormat::Json] {
            let text = render(&document, format).unwrap_or_default();
            let read = parse(text.as_bytes(), format).unwrap_or_else(|e| panic!("{e}: {text}"));
            assert_eq!(read.document, document);
        }
    }
}
