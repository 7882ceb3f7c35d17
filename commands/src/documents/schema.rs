//! The JSON Schema (2020-12) of a clients document, generated from the types it is read with.

use utoipa::ToSchema;

use super::format::{ClientsDocument, DocumentClient};

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
