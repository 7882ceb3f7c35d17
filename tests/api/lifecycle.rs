//! The full life of a client: create → read → list → update → rotate → delete.

use axum::http::Method;
use registry_tests::{backend_tests, service_client, spa_client, Backend, TestApp};
use serde_json::json;

backend_tests!(
    full_lifecycle,
    update_with_if_match,
    no_op_update_writes_no_event,
    public_client_made_confidential_gets_a_secret_once,
    deleted_client_can_be_registered_again,
    get_honours_if_none_match,
    change_reason_and_actor_are_recorded,
    register_fills_in_the_guide_defaults,
    put_needs_every_editable_field,
    patch_changes_only_what_it_names,
);

async fn patch(
    app: &TestApp,
    client_id: &str,
    body: serde_json::Value,
    tag: Option<&str>,
) -> registry_tests::TestResponse {
    let mut call = app
        .call(Method::PATCH, &format!("/api/v1/clients/{client_id}"))
        .body("application/merge-patch+json", body.to_string());
    if let Some(tag) = tag {
        call = call.header("if-match", tag);
    }
    call.send().await
}

async fn register_fills_in_the_guide_defaults(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .create_client(&json!({
            "client_id": "minimal",
            "client_name": "Minimal",
            "redirect_uris": ["https://app.example.com/cb"],
        }))
        .await;
    created.assert_status(201);
    let body = created.json();
    assert_eq!(body["require_client_secret"], true);
    assert!(
        body["client_secret"].is_string(),
        "a confidential default gets a secret"
    );
    assert_eq!(body["enabled"], true);
    assert_eq!(body["offline_access"], false);
    assert_eq!(body["require_pkce"], true);
    assert_eq!(body["grant_types"], json!(["authorization_code"]));
    assert_eq!(body["client_uri"], serde_json::Value::Null);
}

/// `PUT` replaces every editable field, so each must be there: omitting `enabled` must not
/// re-enable a disabled client, nor omitting `require_client_secret` make a public one
/// confidential.
async fn put_needs_every_editable_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut spa = spa_client("spa", "SPA");
    spa["enabled"] = false.into();
    app.create_client(&spa).await.assert_status(201);

    let mut partial = spa.clone();
    let fields = partial.as_object_mut().unwrap();
    fields.remove("enabled");
    fields.remove("require_client_secret");
    fields.remove("client_uri");
    fields.insert("client_name".into(), "Renamed".into());
    let missing = app
        .update_client("spa", &partial, Some(1))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(missing, ["client_uri", "require_client_secret", "enabled"]);
    let unchanged = app.get_client("spa").await;
    assert_eq!(unchanged.etag_version(), Some(1));
    assert_eq!(unchanged.json()["enabled"], false);
    assert_eq!(unchanged.json()["require_client_secret"], false);

    // A fetched client sent back whole is a valid PUT (read-only fields ignored).
    let mut fetched = unchanged.json();
    fetched["client_uri"] = serde_json::Value::Null;
    let updated = app.update_client("spa", &fetched, Some(1)).await;
    updated.assert_status(200);
    assert_eq!(updated.json()["client_uri"], serde_json::Value::Null);
    assert_eq!(updated.json()["enabled"], false);
}

/// `PATCH` with a JSON Merge Patch changes only the fields it names, with the same
/// validation, `If-Match` and history as `PUT`.
async fn patch_changes_only_what_it_names(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut web = spa_client("web", "Web");
    web["require_client_secret"] = true.into();
    let created = app.create_client(&web).await;
    created.assert_status(201);

    let disabled = patch(&app, "web", json!({"enabled": false}), None).await;
    disabled.assert_status(200);
    assert_eq!(disabled.etag_version(), Some(2));
    let body = disabled.json();
    assert_eq!(body["enabled"], false);
    assert_eq!(body["client_name"], "Web");
    assert_eq!(body["redirect_uris"], web["redirect_uris"]);
    assert_eq!(
        body["secrets"],
        created.json()["secrets"],
        "secrets untouched"
    );
    let history = app.get_json("/api/v1/clients/web/history").await;
    let changes = &history["events"][1]["changes"];
    assert_eq!(changes.as_array().unwrap().len(), 1, "{changes}");
    assert_eq!(changes[0]["field"], "enabled");

    // null removes an optional field; lists are replaced whole.
    let patched = patch(
        &app,
        "web",
        json!({"client_uri": null, "allowed_scopes": ["openid"]}),
        Some("\"2\""),
    )
    .await;
    patched.assert_status(200);
    assert_eq!(patched.json()["client_uri"], serde_json::Value::Null);
    assert_eq!(patched.json()["allowed_scopes"], json!(["openid"]));

    // Stale If-Match: 412, nothing written.
    patch(&app, "web", json!({"enabled": true}), Some("\"2\""))
        .await
        .assert_problem(412, "precondition_failed");
    // Invalid values, required fields removed, secrets and unknown fields: 422, all named.
    let fields = patch(
        &app,
        "web",
        json!({"client_name": null, "redirect_uris": ["https://x.example.com/cb#frag"], "client_secret": "0123456789abcdef0123"}),
        None,
    )
    .await
    .assert_problem(422, "validation_failed");
    assert!(fields.contains(&"client_name".to_owned()), "{fields:?}");
    assert!(fields.contains(&"client_secret".to_owned()), "{fields:?}");
    let fields = patch(&app, "web", json!({"redirect_uri": []}), None)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(fields, ["redirect_uri"]);
    patch(&app, "web", json!({"enabled": "no"}), None)
        .await
        .assert_problem(422, "validation_failed");
    patch(&app, "nobody", json!({"enabled": false}), None)
        .await
        .assert_problem(404, "client_not_found");
    assert_eq!(app.get_client("web").await.etag_version(), Some(3));

    // Making it public through PATCH revokes its secrets, as PUT does.
    let public = patch(&app, "web", json!({"require_client_secret": false}), None).await;
    public.assert_status(200);
    assert_eq!(public.json()["secrets"], json!([]));
}

async fn full_lifecycle(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let created = app
        .create_client(&spa_client("studio", "Data Refinery Studio"))
        .await;
    created.assert_status(201);
    assert_eq!(created.header("location"), Some("/api/v1/clients/studio"));
    assert_eq!(created.etag_version(), Some(1));
    let body = created.json();
    assert_eq!(body["client_id"], "studio");
    assert_eq!(body["require_pkce"], true, "guide default");
    assert_eq!(body["enabled"], true, "guide default");
    assert_eq!(body["offline_access"], false, "guide default");
    assert_eq!(body["version"], 1);
    assert!(
        body.get("client_secret").is_none(),
        "public clients get no secret"
    );

    let fetched = app.get_client("studio").await;
    fetched.assert_status(200);
    assert_eq!(fetched.etag_version(), Some(1));
    assert_eq!(
        fetched.json()["redirect_uris"],
        json!(["https://studio.example.com/callback"])
    );

    let listed = app.list_clients("search=studio").await;
    listed.assert_status(200);
    assert_eq!(
        listed.json()["total"],
        2,
        "ours and the default octo-data-refinery-studio"
    );

    let mut change = spa_client("studio", "Studio (renamed)");
    change["enabled"] = json!(false);
    let updated = app.update_client("studio", &change, None).await;
    updated.assert_status(200);
    assert_eq!(updated.etag_version(), Some(2));
    assert_eq!(updated.json()["client_name"], "Studio (renamed)");
    assert_eq!(updated.json()["enabled"], false);
    assert_eq!(
        app.get_client("studio").await.json()["client_name"],
        "Studio (renamed)"
    );

    // A confidential client: generated secret returned once, then rotated.
    let service = app.create_client(&service_client("billing", None)).await;
    service.assert_status(201);
    let first_secret = service.json()["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(first_secret.len(), 43);
    let first_id = service.json()["secrets"][0]["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fetched = app.get_client("billing").await.json();
    assert!(
        fetched.get("client_secret").is_none(),
        "the plaintext is shown only once"
    );
    assert_eq!(fetched["secrets"][0]["secret_id"], first_id.as_str());
    assert!(fetched["secrets"][0].get("hash").is_none());

    let rotated = app.rotate_secret("billing", None).await;
    rotated.assert_status(200);
    let rotation = rotated.json();
    assert_ne!(rotation["secret_id"], first_id.as_str());
    assert_eq!(rotation["client_secret"].as_str().unwrap().len(), 43);
    assert_eq!(rotation["version"], 2);
    let secrets = app.get_client("billing").await.json()["secrets"].clone();
    assert_eq!(
        secrets.as_array().unwrap().len(),
        1,
        "the previous secret stopped working"
    );
    assert_eq!(secrets[0]["secret_id"], rotation["secret_id"]);

    app.delete_client("studio").await.assert_status(204);
    app.get_client("studio")
        .await
        .assert_problem(404, "client_not_found");
    let ids: Vec<String> = app.list_clients("limit=500").await.json()["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(!ids.contains(&"studio".to_owned()));
    assert!(ids.contains(&"billing".to_owned()));
    app.delete_client("studio")
        .await
        .assert_problem(404, "client_not_found");
}

async fn update_with_if_match(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("app", "App"))
        .await
        .assert_status(201);
    let stale = app
        .update_client("app", &spa_client("app", "B"), Some(7))
        .await;
    stale.assert_problem(412, "precondition_failed");
    assert_eq!(app.get_client("app").await.json()["client_name"], "App");
    let fresh = app
        .update_client("app", &spa_client("app", "B"), Some(1))
        .await;
    fresh.assert_status(200);
    assert_eq!(fresh.etag_version(), Some(2));
    let weak = app
        .request(
            Method::DELETE,
            "/api/v1/clients/app",
            None,
            &[("if-match", "W/\"2\"")],
        )
        .await;
    weak.assert_status(204);
}

async fn no_op_update_writes_no_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("app", "App"))
        .await
        .assert_status(201);
    // A fetched client sent back as it is: read-only fields are accepted and ignored.
    let fetched = app.get_client("app").await.json();
    let same = app.update_client("app", &fetched, Some(1)).await;
    same.assert_status(200);
    assert_eq!(same.etag_version(), Some(1));
    assert_eq!(app.events_of("app").await.len(), 1);
}

async fn public_client_made_confidential_gets_a_secret_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("app", "App"))
        .await
        .assert_status(201);
    let mut confidential = spa_client("app", "App");
    confidential["require_client_secret"] = json!(true);
    let updated = app.update_client("app", &confidential, None).await;
    updated.assert_status(200);
    let body = updated.json();
    assert_eq!(body["client_secret"].as_str().map(str::len), Some(43));
    assert_eq!(body["secrets"].as_array().map(Vec::len), Some(1));
    // The same settings again: it already has a secret, so nothing happens.
    let again = app.update_client("app", &confidential, None).await.json();
    assert!(again.get("client_secret").is_none());
    assert_eq!(again["version"], 2);
}

async fn deleted_client_can_be_registered_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("app", "First life"))
        .await
        .assert_status(201);
    app.delete_client("app").await.assert_status(204);
    let again = app.create_client(&service_client("app", None)).await;
    again.assert_status(201);
    assert_eq!(again.etag_version(), Some(3), "the stream continues");
    assert_eq!(again.json()["client_name"], "Billing worker");
    assert_eq!(again.json()["redirect_uris"], json!([]));
    let types: Vec<String> = app
        .events_of("app")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        types,
        ["ClientRegistered", "ClientDeleted", "ClientRegistered"]
    );
}

async fn get_honours_if_none_match(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("app", "App"))
        .await
        .assert_status(201);
    let cached = app
        .request(
            Method::GET,
            "/api/v1/clients/app",
            None,
            &[("if-none-match", "\"1\"")],
        )
        .await;
    cached.assert_status(304);
    assert!(cached.body.is_empty());
    let stale = app
        .request(
            Method::GET,
            "/api/v1/clients/app",
            None,
            &[("if-none-match", "\"0\"")],
        )
        .await;
    stale.assert_status(200);
}

async fn change_reason_and_actor_are_recorded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .request(
            Method::POST,
            "/api/v1/clients",
            Some(&spa_client("app", "App")),
            &[
                ("x-change-reason", "ticket OPS-42"),
                ("x-request-id", "req-abc.1"),
            ],
        )
        .await;
    response.assert_status(201);
    assert_eq!(response.header("x-request-id"), Some("req-abc.1"));
    let events = app.events_of("app").await;
    let metadata = &events[0].1;
    assert_eq!(metadata["actor"], "admin");
    assert_eq!(metadata["reason"], "ticket OPS-42");
    assert_eq!(metadata["request_id"], "req-abc.1");
    assert!(metadata["event_id"]
        .as_str()
        .is_some_and(|id| id.len() == 36));
    assert!(metadata["recorded_at"].is_string());
    // The body cannot choose the actor.
    let mut body = spa_client("other", "Other");
    body["actor"] = json!("mallory");
    app.create_client(&body)
        .await
        .assert_problem(422, "validation_failed");
}
