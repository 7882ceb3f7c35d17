//! Which fields of a client differ between two states, named and valued as the API shows
//! them: the one comparison behind a client's history (what an auditor reads) and a plan of
//! clients as code (what a reviewer reads).

use serde::Serialize;
use serde_json::{Map, Value};

use super::ClientSettings;

/// One field that changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// The field, as the API names it (`secrets` lists secret ids only).
    pub field: String,
    /// Its value before (`null` when unset).
    pub before: Value,
    /// Its value after.
    pub after: Value,
}

/// The fields compared, in the order the API lists them.
pub const FIELDS: [&str; 24] = [
    "client_id",
    "client_name",
    "client_uri",
    "require_client_secret",
    "enabled",
    "offline_access",
    "require_pkce",
    "token_endpoint_auth_method",
    "grant_types",
    "redirect_uris",
    "post_logout_redirect_uris",
    "allowed_cors_origins",
    "allowed_scopes",
    "application_type",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "contacts",
    "software_id",
    "software_version",
    "jwks_uri",
    "jwks",
    "secrets",
    "deleted",
];

fn is_unset(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// The fields of [`FIELDS`] that differ from `before` to `after` (each a JSON object of the
/// client's fields). From nothing (a registration), every field it sets — not `deleted`.
pub fn field_changes(
    before: Option<&Map<String, Value>>,
    after: &Map<String, Value>,
) -> Vec<FieldChange> {
    FIELDS
        .iter()
        .filter_map(|field| {
            let new = after.get(*field).cloned().unwrap_or(Value::Null);
            let old = before
                .and_then(|fields| fields.get(*field).cloned())
                .unwrap_or(Value::Null);
            let changed = match before {
                None => !is_unset(&new) && *field != "deleted",
                Some(_) => old != new,
            };
            changed.then(|| FieldChange {
                field: (*field).to_owned(),
                before: old,
                after: new,
            })
        })
        .collect()
}

/// The settings that differ from `before` (nothing: a registration) to `after`.
pub fn settings_changes(
    before: Option<&ClientSettings>,
    after: &ClientSettings,
) -> Vec<FieldChange> {
    let as_map = |settings: &ClientSettings| match serde_json::to_value(settings) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    field_changes(before.map(as_map).as_ref(), &as_map(after))
}
