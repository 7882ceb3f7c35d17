//! Reading a document reports every problem at once, each with its path
//! (`clients[3].redirect_uris[1]`): the shape of each entry, then the registry's own rules for
//! its settings, then the rules between entries (duplicate ids, an id both managed and
//! unmanaged). A document is read within a budget of bytes and depth (YAML aliases cannot
//! make it expand) and a read whose caller went away stops.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use registry_domain::client::ValidationErrors;
use registry_domain::ClientSettings;

use super::bounded;
pub use super::bounded::{MAX_DEPTH, VALUE_COST};
use super::format::{ClientsDocument, DocumentClient, DocumentFormat};

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

/// Set when dropped: the future that read a document went away (a timeout, a disconnect), so
/// the thread reading it stops at its next value instead of reading on for nobody.
struct CancelOnDrop(std::sync::Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Like [`parse`], off the async runtime's threads and at most two at a time (reading a large
/// document is CPU work: probes and other requests still answer); stops reading when the
/// returned future is dropped.
///
/// # Errors
/// The outer error when the reading thread could not run; the inner one as [`parse`].
pub async fn parse_off_runtime(
    text: Vec<u8>,
    format: DocumentFormat,
) -> anyhow::Result<Result<CheckedDocument, ValidationErrors>> {
    static READERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
    let _permit = READERS.acquire().await?;
    let cancel = CancelOnDrop(std::sync::Arc::new(AtomicBool::new(false)));
    let cancelled = cancel.0.clone();
    Ok(tokio::task::spawn_blocking(move || parse_unless(&text, format, &cancelled)).await?)
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
    let unmanaged = unmanaged_ids(object, &mut errors);
    let entries = client_entries(object, &mut errors);
    let mut clients = Vec::with_capacity(entries.len());
    let mut settings = Vec::with_capacity(entries.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    let unmanaged_set: std::collections::HashSet<&str> =
        unmanaged.iter().map(String::as_str).collect();
    for (index, entry) in entries.iter().enumerate() {
        let at = |field: &str| field_path(index, field);
        let Some(client) = entry_client(entry, &at, &mut errors) else {
            continue;
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
        check_client(&client, &at, &mut errors);
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
    errors.into_result(CheckedDocument {
        document: ClientsDocument { clients, unmanaged },
        settings,
    })
}

/// The `clients` list's entries (none when it is missing or not a list: said in `errors`).
fn client_entries<'a>(
    object: &'a serde_json::Map<String, serde_json::Value>,
    errors: &mut ValidationErrors,
) -> &'a [serde_json::Value] {
    match object.get("clients") {
        Some(serde_json::Value::Array(entries)) => entries.as_slice(),
        Some(_) => {
            errors.add("clients", "must be a list");
            &[]
        }
        None => {
            errors.add("clients", "is required");
            &[]
        }
    }
}

/// `clients[3]`, `clients[3].redirect_uris[1]`: where a field of entry `index` is.
fn field_path(index: usize, field: &str) -> String {
    if field.is_empty() {
        format!("clients[{index}]")
    } else if field.starts_with('[') {
        format!("clients[{index}]{field}")
    } else {
        format!("clients[{index}].{field}")
    }
}

/// The `unmanaged` list: client ids apply never touches.
fn unmanaged_ids(
    object: &serde_json::Map<String, serde_json::Value>,
    errors: &mut ValidationErrors,
) -> Vec<String> {
    let ids: Vec<String> = match object.get("unmanaged") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(list) => serde_json::from_value(list.clone()).unwrap_or_else(|_| {
            errors.add("unmanaged", "must be a list of client ids");
            Vec::new()
        }),
    };
    for (index, id) in ids.iter().enumerate() {
        if registry_domain::values::ClientId::parse(id).is_err() {
            errors.add(format!("unmanaged[{index}]"), "is not a client id");
        }
    }
    ids
}

/// One entry as a client of the document, or `None` (its errors added) when its shape is
/// wrong. A secret is reported (never repeated) and left out, so the rest is still checked.
fn entry_client(
    entry: &serde_json::Value,
    at: &impl Fn(&str) -> String,
    errors: &mut ValidationErrors,
) -> Option<DocumentClient> {
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
    match serde_path_to_error::deserialize(&entry) {
        Ok(client) => Some(client),
        Err(error) => {
            let path = error.path().to_string();
            let field = if path == "." { String::new() } else { path };
            errors.add(at(&field), error.into_inner().to_string());
            None
        }
    }
}

/// The rules of one client that the settings' own rules do not cover: an id that can be
/// registered, and a secret named by a variable only for a confidential client.
fn check_client(
    client: &DocumentClient,
    at: &impl Fn(&str) -> String,
    errors: &mut ValidationErrors,
) {
    if let Err(id_error) = registry_domain::values::ClientId::parse(&client.client_id)
        .and_then(|id| id.check_registrable())
    {
        errors.add(at("client_id"), id_error.to_string());
    }
    let Some(name) = &client.client_secret_env else {
        return;
    };
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
    if !client.settings_input().uses_secret(None) {
        errors.add(
            at("client_secret_env"),
            "only a confidential client (require_client_secret) that does not sign with its keys (private_key_jwt) has a secret",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::format::render;
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
                ..DocumentClient::default()
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
