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
);

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
