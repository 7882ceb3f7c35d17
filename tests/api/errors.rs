//! Every error status the API promises, as problem+json, and nothing half-written.

use axum::http::Method;
use registry_tests::{backend_tests, spa_client, Backend, TestApp};
use serde_json::json;

backend_tests!(
    every_validation_error_is_reported_at_once,
    malformed_bodies_and_headers_are_400,
    missing_or_wrong_token_is_401,
    unknown_clients_routes_and_methods,
    duplicate_id_is_409,
    stale_if_match_is_412,
    oversized_body_is_413,
    non_json_body_is_415,
    client_id_cannot_change_and_put_takes_no_secret,
    refused_commands_write_nothing,
);

async fn every_validation_error_is_reported_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({
        "client_id": "bad id",
        "client_name": " ",
        "client_uri": "ftp://files.example.com",
        "require_client_secret": false,
        "grant_types": ["client_credentials", "implicit", "refresh_token"],
        "redirect_uris": ["https://a.example.com/cb#frag", "javascript:alert(1)", "http://public.example.com/cb", "http://127.0.0.1:7777/cb"],
        "allowed_cors_origins": ["https://a.example.com/", "https://b.example.com/path"],
        "allowed_scopes": ["openid", "bad scope"],
    });
    let fields = app
        .create_client(&body)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(
        fields,
        [
            "client_id",
            "client_name",
            "client_uri",
            "grant_types[1]",
            "redirect_uris[0]",
            "redirect_uris[1]",
            "redirect_uris[2]",
            "allowed_cors_origins[0]",
            "allowed_cors_origins[1]",
            "allowed_scopes[1]",
            "grant_types",
            "grant_types",
        ]
    );
    let problem = app.create_client(&body).await.json();
    let cors = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["field"] == "allowed_cors_origins[0]")
        .unwrap()
        .clone();
    assert!(
        cors["message"]
            .as_str()
            .unwrap()
            .contains("\"https://a.example.com\""),
        "the corrected origin is shown: {cors}"
    );

    // Wrong JSON types are named too.
    let fields = app
        .create_client(&json!({"client_id": "x", "client_name": "X", "enabled": "yes"}))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(fields, ["enabled"]);
    let fields = app
        .create_client(&json!({"client_id": "x", "client_name": "X", "redirect_uri": ["https://a.example.com/cb"]}))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(
        fields,
        ["redirect_uri"],
        "a misspelt field is not silently dropped"
    );
    // A short given secret is refused without being echoed.
    let response = app
        .create_client(&registry_tests::service_client("svc", Some("hunter2")))
        .await;
    let fields = response.assert_problem(422, "validation_failed");
    assert_eq!(fields, ["client_secret"]);
    assert!(!String::from_utf8_lossy(&response.body).contains("hunter2"));
}

async fn malformed_bodies_and_headers_are_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let raw = |body: &'static str| {
        app.call(Method::POST, "/api/v1/clients")
            .body("application/json", body)
            .send()
    };
    raw("{\"client_id\": ")
        .await
        .assert_problem(400, "malformed_json");
    raw("").await.assert_problem(400, "malformed_json");
    raw("{} x").await.assert_problem(400, "malformed_json");
    let fields = raw("[1, 2]").await.assert_problem(422, "validation_failed");
    assert_eq!(fields, ["body"], "valid JSON, but not an object");
    app.create_client(&spa_client("app", "App"))
        .await
        .assert_status(201);
    let response = app
        .request(
            Method::PUT,
            "/api/v1/clients/app",
            Some(&spa_client("app", "B")),
            &[("if-match", "3")],
        )
        .await;
    response.assert_problem(400, "invalid_header");
    let too_long = "r".repeat(600);
    app.request(
        Method::DELETE,
        "/api/v1/clients/app",
        None,
        &[("x-change-reason", too_long.as_str())],
    )
    .await
    .assert_problem(400, "invalid_header");
    app.get_client("app").await.assert_status(200);
}

async fn missing_or_wrong_token_is_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (method, path) in [
        (Method::GET, "/api/v1/clients"),
        (Method::POST, "/api/v1/clients"),
        (Method::GET, "/api/v1/clients/octo-cli"),
        (Method::PUT, "/api/v1/clients/octo-cli"),
        (Method::DELETE, "/api/v1/clients/octo-cli"),
        (Method::POST, "/api/v1/clients/octo-cli/secret"),
    ] {
        let response = app.call(method.clone(), path).anonymous().send().await;
        response.assert_problem(401, "unauthorized");
        assert_eq!(
            response.header("www-authenticate"),
            Some("Bearer realm=\"client-registry\"")
        );
        let response = app.call(method, path).bearer("not-the-token").send().await;
        response.assert_problem(401, "unauthorized");
        assert!(response
            .header("www-authenticate")
            .is_some_and(|v| v.contains("invalid_token")));
    }
    // Nothing was deleted by the anonymous DELETE.
    app.get_client("octo-cli").await.assert_status(200);
}

async fn unknown_clients_routes_and_methods(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.get_client("nope")
        .await
        .assert_problem(404, "client_not_found");
    app.update_client("nope", &spa_client("nope", "Nope"), None)
        .await
        .assert_problem(404, "client_not_found");
    app.rotate_secret("nope", None)
        .await
        .assert_problem(404, "client_not_found");
    app.delete_client("nope")
        .await
        .assert_problem(404, "client_not_found");
    app.request(Method::GET, "/api/v1/nothing-here", None, &[])
        .await
        .assert_problem(404, "not_found");
    app.request(Method::POST, "/api/v1/clients/octo-cli", None, &[])
        .await
        .assert_problem(405, "method_not_allowed");
    app.request(Method::GET, "/api/v1/clients/%FF%FE", None, &[])
        .await
        .assert_problem(404, "not_found");
}

async fn duplicate_id_is_409(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("app", "First"))
        .await
        .assert_status(201);
    app.create_client(&spa_client("app", "Second"))
        .await
        .assert_problem(409, "client_exists");
    app.create_client(&spa_client("octo-cli", "Clash with a default"))
        .await
        .assert_problem(409, "client_exists");
    assert_eq!(app.get_client("app").await.json()["client_name"], "First");
}

async fn stale_if_match_is_412(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&registry_tests::service_client("svc", None))
        .await
        .assert_status(201);
    let stale = [("if-match", "\"5\"")];
    app.request(
        Method::PUT,
        "/api/v1/clients/svc",
        Some(&registry_tests::service_client("svc", None)),
        &stale,
    )
    .await
    .assert_problem(412, "precondition_failed");
    app.request(Method::POST, "/api/v1/clients/svc/secret", None, &stale)
        .await
        .assert_problem(412, "precondition_failed");
    app.request(Method::DELETE, "/api/v1/clients/svc", None, &stale)
        .await
        .assert_problem(412, "precondition_failed");
    app.request(
        Method::DELETE,
        "/api/v1/clients/svc",
        None,
        &[("if-match", "\"abc\"")],
    )
    .await
    .assert_problem(412, "precondition_failed");
    assert_eq!(app.get_client("svc").await.etag_version(), Some(1));
}

async fn oversized_body_is_413(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut body = spa_client("big", "Big");
    body["client_name"] = json!("x".repeat(300 * 1024));
    app.create_client(&body)
        .await
        .assert_problem(413, "payload_too_large");
    app.get_client("big")
        .await
        .assert_problem(404, "client_not_found");
}

async fn non_json_body_is_415(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.call(Method::POST, "/api/v1/clients")
        .body("text/plain", spa_client("app", "App").to_string())
        .send()
        .await
        .assert_problem(415, "unsupported_media_type");
    app.call(Method::POST, "/api/v1/clients")
        .body("", spa_client("app", "App").to_string())
        .send()
        .await
        .assert_problem(415, "unsupported_media_type");
    app.get_client("app")
        .await
        .assert_problem(404, "client_not_found");
}

async fn client_id_cannot_change_and_put_takes_no_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("app", "App"))
        .await
        .assert_status(201);
    let fields = app
        .update_client("app", &spa_client("renamed", "App"), None)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(fields, ["client_id"]);
    let mut with_secret = spa_client("app", "App");
    with_secret["client_secret"] = json!("a-new-secret-value-123");
    let fields = app
        .update_client("app", &with_secret, None)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(fields, ["client_secret"]);
    app.get_client("renamed")
        .await
        .assert_problem(404, "client_not_found");
}

async fn refused_commands_write_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("app", "App"))
        .await
        .assert_status(201);
    let mut invalid = spa_client("app", "App");
    invalid["redirect_uris"] = json!(["https://a.example.com/cb#x"]);
    app.update_client("app", &invalid, None)
        .await
        .assert_problem(422, "validation_failed");
    let fields = app
        .rotate_secret("app", None)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(
        fields,
        ["require_client_secret"],
        "public clients have no secret"
    );
    assert_eq!(app.events_of("app").await.len(), 1);
    assert_eq!(app.get_client("app").await.etag_version(), Some(1));
}
