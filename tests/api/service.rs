//! Probes and the OpenAPI document.

use axum::http::Method;
use registry_tests::{backend_tests, Backend, TestApp};

backend_tests!(probes_answer_without_a_token, openapi_describes_every_route);

async fn probes_answer_without_a_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/healthz", "/readyz"] {
        let response = app.call(Method::GET, path).anonymous().send().await;
        response.assert_status(200);
        assert_eq!(response.json()["status"], "ok");
        assert!(response.header("x-request-id").is_some());
    }
    app.database.close().await;
    app.call(Method::GET, "/readyz")
        .anonymous()
        .send()
        .await
        .assert_problem(503, "unavailable");
}

async fn openapi_describes_every_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .call(Method::GET, "/openapi.json")
        .anonymous()
        .send()
        .await;
    response.assert_status(200);
    let doc = response.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = &doc["paths"];
    for (path, method) in [
        ("/api/v1/clients", "get"),
        ("/api/v1/clients", "post"),
        ("/api/v1/clients/{client_id}", "get"),
        ("/api/v1/clients/{client_id}", "put"),
        ("/api/v1/clients/{client_id}", "delete"),
        ("/api/v1/clients/{client_id}/secret", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is documented"
        );
    }
    for schema in [
        "ClientRequest",
        "ClientResponse",
        "ClientListResponse",
        "Problem",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}
