//! Clients as code: the document's JSON Schema, the export that writes a document, and
//! reading documents with every error at once.

use axum::body::Body;
use axum::http::{Method, Request};
use registry_tests::{backend_tests, service_client, spa_client, Backend, TestApp, ADMIN_TOKEN};
use serde_json::{json, Value};

backend_tests!(
    the_schema_describes_exactly_the_document,
    the_export_writes_every_client_as_it_is,
);

async fn get(app: &TestApp, path: &str) -> registry_tests::TestResponse {
    app.request(Method::GET, path, None, &[]).await
}

async fn the_schema_describes_exactly_the_document(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = get(&app, "/api/v1/clients/schema.json").await;
    response.assert_status(200);
    assert_eq!(
        response.header("content-type"),
        Some("application/schema+json")
    );
    let schema = response.json();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert!(!schema.to_string().contains("#/components/"), "{schema}");
    assert_eq!(schema["additionalProperties"], false, "{schema}");
    assert_eq!(schema["required"], json!(["clients"]));
    let client = &schema["$defs"]["DocumentClient"];
    assert_eq!(client["additionalProperties"], false, "{client}");
    let mut properties: Vec<&str> = client["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    properties.sort_unstable();
    assert_eq!(
        properties,
        [
            "allowed_cors_origins",
            "allowed_scopes",
            "client_id",
            "client_name",
            "client_secret_env",
            "client_uri",
            "enabled",
            "grant_types",
            "offline_access",
            "post_logout_redirect_uris",
            "redirect_uris",
            "require_client_secret",
            "require_pkce",
        ]
    );
    let mut required: Vec<&str> = client["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["client_id", "client_name"]);
    assert_eq!(client["properties"]["require_pkce"]["default"], true);
    // No secret can be written into a document.
    assert!(client["properties"].get("client_secret").is_none());
    // Without a token: refused like every API route.
    app.send(
        Request::get("/api/v1/clients/schema.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .assert_status(401);
}

async fn the_export_writes_every_client_as_it_is(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let mut spa = spa_client("doc-spa", "Single page");
    spa["allowed_cors_origins"] = json!(["https://spa.example.com"]);
    spa["post_logout_redirect_uris"] = json!(["https://spa.example.com/bye"]);
    app.create_client(&spa).await.assert_status(201);
    let mut worker = service_client("doc-worker", Some("worker-secret-worker-secret"));
    worker["enabled"] = json!(false);
    app.create_client(&worker).await.assert_status(201);
    app.create_client(&spa_client("other", "Other"))
        .await
        .assert_status(201);

    let yaml = get(&app, "/api/v1/clients/export.yaml?search=doc-").await;
    yaml.assert_status(200);
    assert_eq!(yaml.header("content-type"), Some("application/yaml"));
    assert!(yaml.header("x-feed-position").is_some());
    let text = String::from_utf8(yaml.body.clone()).unwrap();
    assert!(!text.contains("worker-secret"), "no secret is exported");
    let document: Value = serde_yaml_ng::from_str(&text).unwrap();
    let clients = document["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 2, "{text}");
    for (exported, id) in clients.iter().zip(["doc-spa", "doc-worker"]) {
        let live = app.get_client(id).await.json();
        assert_eq!(exported["client_id"], id);
        for field in [
            "client_name",
            "require_client_secret",
            "enabled",
            "offline_access",
            "require_pkce",
            "grant_types",
            "redirect_uris",
            "post_logout_redirect_uris",
            "allowed_cors_origins",
            "allowed_scopes",
        ] {
            assert_eq!(exported[field], live[field], "{id} {field}");
        }
    }
    assert!(clients[1].get("client_uri").is_none());
    assert!(document.get("unmanaged").is_none());

    let json_export = get(&app, "/api/v1/clients/export.json?enabled=false").await;
    json_export.assert_status(200);
    assert_eq!(json_export.header("content-type"), Some("application/json"));
    let document = json_export.json();
    assert_eq!(document["clients"].as_array().unwrap().len(), 1);
    assert_eq!(document["clients"][0]["client_id"], "doc-worker");
    get(&app, "/api/v1/clients/export.json?bogus=1")
        .await
        .assert_problem(400, "invalid_query");
    let _ = ADMIN_TOKEN;
}
