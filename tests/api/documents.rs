//! Clients as code: the document's JSON Schema, the export that writes a document, and
//! reading documents with every error at once.

use axum::http::Method;
use registry_tests::{backend_tests, service_client, spa_client, Backend, TestApp, ADMIN_TOKEN};
use serde_json::{json, Value};

backend_tests!(
    the_schema_describes_exactly_the_document,
    the_export_writes_every_client_as_it_is,
    export_then_apply_on_an_empty_store_exports_the_same_document,
    a_plan_shows_exactly_the_field_changes_and_changes_nothing,
    apply_reports_a_concurrent_edit_and_applies_the_rest,
    prune_deletes_only_what_the_document_does_not_name_or_keep,
    a_bad_document_gets_every_error_and_a_changed_plan_is_refused,
    secrets_come_from_the_applier_or_are_generated_once,
    documents_far_larger_than_a_client_plan_and_an_oversized_one_is_a_problem,
    an_apply_run_again_completes_without_writing_anything,
);

/// A pipeline that retries an apply (its first answer lost) gets `complete`, each step marked
/// `already`, and no second event; every event names where it came from without a reason.
async fn an_apply_run_again_completes_without_writing_anything(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    app.create_client(&spa_client("doomed", "Doomed"))
        .await
        .assert_status(201);
    let document = "clients:\n- client_id: again\n  client_name: Again\n  redirect_uris: [https://again.example/cb]\n";
    let plan_body = plan(&app, document, "?prune=true").await.json();
    assert_eq!(plan_body["summary"]["delete"], 1);
    let first = apply(&app, &json!({ "plan": plan_body })).await.json();
    assert_eq!(first["complete"], true, "{first}");
    let (_, metadata) = app.events_of("again").await.pop().unwrap();
    assert!(
        metadata["reason"]
            .as_str()
            .unwrap()
            .starts_with("clients-as-code apply of plan "),
        "{metadata}"
    );
    let second = apply(&app, &json!({ "plan": plan_body })).await.json();
    assert_eq!(second["complete"], true, "{second}");
    assert!(
        second["conflicts"].as_array().unwrap().is_empty(),
        "{second}"
    );
    for step in second["applied"].as_array().unwrap() {
        assert_eq!(step["already"], true, "{second}");
    }
    assert_eq!(app.events_of("again").await.len(), 1);
    assert_eq!(app.events_of("doomed").await.len(), 2);
    // Someone changed it by hand since: a conflict again, not "already".
    app.update_client("again", &spa_client("again", "By hand"), Some(1))
        .await
        .assert_status(200);
    let third = apply(&app, &json!({ "plan": plan_body })).await.json();
    assert_eq!(third["complete"], false, "{third}");
    assert_eq!(third["conflicts"][0]["client_id"], "again");
}

/// The API's other bodies stop at 256 KiB; a document of 2,000 clients (about 700 KB) plans
/// and its plan (larger still) goes back to apply; above 16 MiB the answer is a problem.
async fn documents_far_larger_than_a_client_plan_and_an_oversized_one_is_a_problem(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let clients: Vec<Value> = (0..2000)
        .map(|i| {
            let mut client = spa_client(&format!("bulk-{i:04}"), &format!("Bulk client {i}"));
            client["allowed_scopes"] = json!(["openid", "profile", "email"]);
            client
        })
        .collect();
    let document = serde_json::to_string(&json!({ "clients": clients })).unwrap();
    assert!(document.len() > 256 * 1024, "{}", document.len());
    let planned = app
        .call(Method::POST, "/api/v1/clients/plan")
        .anonymous()
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "application/json")
        .body("", document)
        .send()
        .await;
    planned.assert_status(200);
    let mut plan_body = planned.json();
    assert_eq!(plan_body["summary"]["create"], 2000);
    // Only the first ten steps are applied: the plan goes back whole (its signature covers
    // every step), so a changed plan is refused, not truncated.
    plan_body["steps"].as_array_mut().unwrap().truncate(10);
    apply(&app, &json!({ "plan": plan_body }))
        .await
        .assert_problem(422, "validation_failed");

    let oversized = format!(
        "{{\"clients\": [], \"padding\": \"{}\"}}",
        "x".repeat(17 * 1024 * 1024)
    );
    let refused = app
        .call(Method::POST, "/api/v1/clients/plan")
        .anonymous()
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "application/json")
        .body("", oversized)
        .send()
        .await;
    refused.assert_problem(413, "payload_too_large");
    assert!(
        String::from_utf8_lossy(&refused.body).contains("16777216"),
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
}

pub(crate) async fn plan(
    app: &TestApp,
    document: &str,
    query: &str,
) -> registry_tests::TestResponse {
    app.call(Method::POST, &format!("/api/v1/clients/plan{query}"))
        .anonymous()
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "application/yaml")
        .body("", document.to_owned())
        .send()
        .await
}

pub(crate) async fn apply(app: &TestApp, body: &Value) -> registry_tests::TestResponse {
    app.request(Method::POST, "/api/v1/clients/apply", Some(body), &[])
        .await
}

async fn export_yaml(app: &TestApp) -> String {
    let response = get(app, "/api/v1/clients/export.yaml").await;
    response.assert_status(200);
    String::from_utf8(response.body).unwrap()
}

fn step<'a>(plan: &'a Value, client_id: &str) -> &'a Value {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["client_id"] == client_id)
        .unwrap_or_else(|| panic!("no step for {client_id} in {plan}"))
}

async fn export_then_apply_on_an_empty_store_exports_the_same_document(backend: Backend) {
    let source = TestApp::spawn(backend).await;
    let mut spa = spa_client("round-spa", "Round trip: \"quoted\" # not a comment");
    spa["post_logout_redirect_uris"] = json!(["https://spa.example.com/bye"]);
    spa["allowed_cors_origins"] = json!(["https://spa.example.com"]);
    spa["offline_access"] = json!(true);
    spa["grant_types"] = json!(["refresh_token", "authorization_code"]);
    source.create_client(&spa).await.assert_status(201);
    source
        .create_client(&service_client("round-worker", None))
        .await
        .assert_status(201);
    let exported = export_yaml(&source).await;

    let target = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let planned = plan(&target, &exported, "").await;
    planned.assert_status(200);
    let plan_body = planned.json();
    assert_eq!(plan_body["summary"]["create"], 5, "{plan_body}");
    assert_eq!(plan_body["has_changes"], true);
    let applied = apply(
        &target,
        &json!({ "plan": plan_body, "reason": "round trip" }),
    )
    .await;
    applied.assert_status(200);
    let result = applied.json();
    assert_eq!(result["complete"], true, "{result}");
    assert_eq!(result["applied"].as_array().unwrap().len(), 5);
    assert_eq!(
        export_yaml(&target).await,
        exported,
        "export, apply on an empty store, export: the same document"
    );
    // And planning it again changes nothing.
    let again = plan(&target, &exported, "").await.json();
    assert_eq!(again["has_changes"], false, "{again}");
    assert_eq!(again["summary"]["unchanged"], 5);
}

async fn a_plan_shows_exactly_the_field_changes_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let mut changing = spa_client("changing", "Before");
    changing["allowed_scopes"] = json!(["openid"]);
    app.create_client(&changing).await.assert_status(201);
    app.create_client(&spa_client("steady", "Steady"))
        .await
        .assert_status(201);
    // The store as a document, then two edits and one new client.
    let mut document: Value = serde_yaml_ng::from_str(&export_yaml(&app).await).unwrap();
    let clients = document["clients"].as_array_mut().unwrap();
    let changing = clients
        .iter_mut()
        .find(|c| c["client_id"] == "changing")
        .unwrap();
    changing["client_name"] = json!("After");
    changing["allowed_scopes"] = json!(["openid", "profile"]);
    clients.push(json!({
        "client_id": "brand-new",
        "client_name": "New",
        "redirect_uris": ["https://new.example.com/cb"],
    }));
    let document = serde_yaml_ng::to_string(&document).unwrap();
    let before = app.get_json("/api/v1/events?after=0&limit=1000").await;
    let planned = plan(&app, &document, "").await;
    planned.assert_status(200);
    let plan_body = planned.json();
    // Planning wrote no event.
    let after = app.get_json("/api/v1/events?after=0&limit=1000").await;
    assert_eq!(after["events"], before["events"]);
    let update = step(&plan_body, "changing");
    assert_eq!(update["action"], "update");
    assert_eq!(update["planned_version"], 1);
    assert_eq!(
        update["changes"],
        json!([
            {"field": "client_name", "before": "Before", "after": "After"},
            {"field": "allowed_scopes", "before": ["openid"], "after": ["openid", "profile"]},
        ]),
        "{plan_body}"
    );
    let unchanged = step(&plan_body, "steady");
    assert_eq!(unchanged["action"], "unchanged", "{plan_body}");
    assert!(unchanged.get("changes").is_none());
    let create = step(&plan_body, "brand-new");
    assert_eq!(create["action"], "create");
    assert_eq!(create["planned_version"], 0);
    assert!(create["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["field"] == "client_name" && c["after"] == "New"));
    assert_eq!(
        plan_body["summary"],
        json!({"create": 1, "update": 1, "delete": 0, "unchanged": 1})
    );
    assert_eq!(app.events_of("changing").await.len(), 1);
    app.get_client("brand-new").await.assert_status(404);
}

async fn apply_reports_a_concurrent_edit_and_applies_the_rest(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    for id in ["raced", "calm"] {
        app.create_client(&spa_client(id, "Before"))
            .await
            .assert_status(201);
    }
    let document = export_yaml(&app).await.replace("Before", "After");
    let plan_body = plan(&app, &document, "").await.json();
    assert_eq!(plan_body["summary"]["update"], 2, "{plan_body}");
    // Someone edits one client between plan and apply.
    app.update_client("raced", &spa_client("raced", "Edited by hand"), Some(1))
        .await
        .assert_status(200);
    let applied = app
        .request(
            Method::POST,
            "/api/v1/clients/apply",
            Some(&json!({ "plan": plan_body })),
            &[("x-change-reason", "commit 4f2a9c1")],
        )
        .await;
    applied.assert_status(200);
    let result = applied.json();
    assert_eq!(result["complete"], false);
    assert_eq!(result["conflicts"][0]["client_id"], "raced", "{result}");
    assert_eq!(result["conflicts"][0]["planned_version"], 1);
    assert!(result["conflicts"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("version 2"));
    assert_eq!(result["applied"][0]["client_id"], "calm");
    assert_eq!(
        app.get_client("raced").await.json()["client_name"],
        "Edited by hand"
    );
    assert_eq!(app.get_client("calm").await.json()["client_name"], "After");
    let events = app.events_of("calm").await;
    let (_, metadata) = events.last().unwrap();
    assert_eq!(metadata["reason"], "commit 4f2a9c1", "{metadata}");
    assert_eq!(metadata["actor"], "admin");
}

async fn prune_deletes_only_what_the_document_does_not_name_or_keep(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    for id in ["kept", "hand-made", "stale"] {
        app.create_client(&spa_client(id, "Some client"))
            .await
            .assert_status(201);
    }
    let kept = export_yaml(&app).await;
    let only_kept: Value = serde_yaml_ng::from_str(&kept).unwrap();
    let mut document = json!({"clients": [], "unmanaged": ["hand-made"]});
    document["clients"] = json!([only_kept["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == "kept")
        .unwrap()]);
    let text = serde_yaml_ng::to_string(&document).unwrap();
    let without = plan(&app, &text, "").await.json();
    assert_eq!(without["summary"]["delete"], 0, "no prune, no delete");
    let pruned = plan(&app, &text, "?prune=true").await.json();
    assert_eq!(
        pruned["summary"],
        json!({"create": 0, "update": 0, "delete": 1, "unchanged": 1}),
        "{pruned}"
    );
    let doomed = step(&pruned, "stale");
    assert_eq!(doomed["action"], "delete");
    assert_eq!(doomed["planned_version"], 1);
    let result = apply(&app, &json!({ "plan": pruned, "reason": "prune" }))
        .await
        .json();
    assert_eq!(result["complete"], true, "{result}");
    app.get_client("stale").await.assert_status(404);
    app.get_client("hand-made").await.assert_status(200);
    app.get_client("kept").await.assert_status(200);
}

async fn a_bad_document_gets_every_error_and_a_changed_plan_is_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let bad = "clients:\n\
               - client_id: one\n  client_name: ''\n  redirect_uris: [https://a.example/cb, 'not a url']\n\
               - client_id: two\n  client_name: Two\n  allowed_cors_origins: ['https://two.example/']\n  redirect_uris: [https://two.example/cb]\n\
               - client_id: one\n  client_name: Dup\n  redirect_uris: [https://a.example/cb]\n  client_secret: hunter2hunter2hunter2\n";
    let refused = plan(&app, bad, "").await;
    let fields = refused.assert_problem(422, "validation_failed");
    for expected in [
        "clients[0].client_name",
        "clients[0].redirect_uris[1]",
        "clients[1].allowed_cors_origins[0]",
        "clients[2].client_id",
        "clients[2].client_secret",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected} in {fields:?}"
        );
    }
    assert!(!String::from_utf8_lossy(&refused.body).contains("hunter2"));
    app.call(Method::POST, "/api/v1/clients/plan")
        .anonymous()
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-type", "text/plain")
        .body("", "clients: []")
        .send()
        .await
        .assert_problem(415, "unsupported_media_type");

    let good = "clients:\n- client_id: fine\n  client_name: Fine\n  redirect_uris: [https://fine.example/cb]\n";
    let mut plan_body = plan(&app, good, "").await.json();
    // Reviewed one thing, asked to run another: refused, nothing written.
    plan_body["steps"][0]["desired"]["client_name"] = json!("Something else");
    let tampered = apply(&app, &json!({ "plan": plan_body })).await;
    assert_eq!(tampered.assert_problem(422, "validation_failed"), ["plan"]);
    app.get_client("fine").await.assert_status(404);
    // A plan of another registry's store is refused too.
    let other = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let foreign = plan(&other, good, "").await.json();
    apply(&app, &json!({ "plan": foreign }))
        .await
        .assert_problem(422, "validation_failed");
    app.get_client("fine").await.assert_status(404);
}

async fn secrets_come_from_the_applier_or_are_generated_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let document = "clients:\n\
        - client_id: given\n  client_name: Given\n  client_secret_env: GIVEN_SECRET\n  grant_types: [client_credentials]\n\
        - client_id: generated\n  client_name: Generated\n  grant_types: [client_credentials]\n\
        - client_id: public\n  client_name: Public\n  require_client_secret: false\n  redirect_uris: [https://p.example/cb]\n";
    let plan_body = plan(&app, document, "").await.json();
    assert_eq!(
        step(&plan_body, "given")["desired"]["client_secret_env"],
        "GIVEN_SECRET"
    );
    apply(
        &app,
        &json!({ "plan": plan_body, "secrets": {"public": "not-for-a-public-client"} }),
    )
    .await
    .assert_problem(422, "validation_failed");
    let result = apply(
        &app,
        &json!({ "plan": plan_body, "secrets": {"given": "given-secret-given-secret"} }),
    )
    .await
    .json();
    assert_eq!(result["complete"], true, "{result}");
    let issued = result["secrets"].as_array().unwrap();
    assert_eq!(issued.len(), 1, "only the generated one is shown: {result}");
    assert_eq!(issued[0]["client_id"], "generated");
    let generated = issued[0]["client_secret"].as_str().unwrap().to_owned();
    for (client_id, secret) in [
        ("given", "given-secret-given-secret"),
        ("generated", generated.as_str()),
    ] {
        let verified = app
            .request(
                Method::POST,
                &format!("/api/v1/clients/{client_id}/secret/verify"),
                Some(&json!({ "client_secret": secret })),
                &[],
            )
            .await
            .json();
        assert_eq!(verified["valid"], true, "{client_id}");
    }
    assert!(!app
        .dump_tables()
        .await
        .contains("given-secret-given-secret"));
}

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
            "application_type",
            "client_id",
            "client_name",
            "client_secret_env",
            "client_uri",
            "contacts",
            "enabled",
            "grant_types",
            "jwks",
            "jwks_uri",
            "logo_uri",
            "offline_access",
            "policy_uri",
            "post_logout_redirect_uris",
            "redirect_uris",
            "require_client_secret",
            "require_pkce",
            "software_id",
            "software_version",
            "token_endpoint_auth_method",
            "tos_uri",
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
    app.call(Method::GET, "/api/v1/clients/schema.json")
        .anonymous()
        .send()
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
}
