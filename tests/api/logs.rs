//! Logs as a log pipeline reads them: `REGISTRY_LOG_FORMAT=json` writes one JSON object per
//! line, and each answered request has a line with its request id, route, status, latency,
//! actor and client id, and the trace id of a W3C `traceparent` it came with.

use registry_tests::{backend_tests, Backend, TestDatabase};
use serde_json::Value;

use crate::process::{client, Server, TOKEN};

backend_tests!(json_lines_carry_the_request_and_its_trace);

async fn json_lines_carry_the_request_and_its_trace(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let server = Server::start_with(
        &database.url,
        &[("REGISTRY_LOG_FORMAT", "json"), ("REGISTRY_LOG", "info")],
    )
    .await;
    let http = client();
    let answer = http
        .get(format!("{}/api/v1/clients/no-such-app", server.base))
        .bearer_auth(TOKEN)
        .header("x-request-id", "req-json-1")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 404);
    // A malformed traceparent is ignored, not logged.
    http.get(format!("{}/api/v1/clients", server.base))
        .bearer_auth(TOKEN)
        .header("x-request-id", "req-json-2")
        .header("traceparent", "00-\"}{injected-01")
        .send()
        .await
        .unwrap();
    // Unauthenticated: no actor.
    http.get(format!("{}/api/v1/clients", server.base))
        .header("x-request-id", "req-json-3")
        .send()
        .await
        .unwrap();

    let mut lines = Vec::new();
    registry_tests::eventually(10, "the request lines to be written", || {
        lines = server
            .log()
            .lines()
            .map(|line| {
                serde_json::from_str::<Value>(line)
                    .unwrap_or_else(|e| panic!("not one JSON object per line: {e}: {line}"))
            })
            .collect::<Vec<_>>();
        let done = lines.iter().any(|l| l["request_id"] == "req-json-3");
        async move { done }
    })
    .await;
    let line = |id: &str| {
        lines
            .iter()
            .find(|l| l["request_id"] == id && l["message"] == "request answered")
            .unwrap_or_else(|| panic!("no line for {id} in {lines:?}"))
            .clone()
    };
    let first = line("req-json-1");
    assert_eq!(first["level"], "INFO");
    assert!(first["timestamp"].as_str().unwrap().starts_with("20"));
    assert_eq!(first["route"], "/api/v1/clients/{client_id}");
    assert_eq!(first["method"], "GET");
    assert_eq!(first["status"], 404);
    assert!(first["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(first["actor"], "admin");
    assert_eq!(first["client_id"], "no-such-app");
    assert_eq!(first["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");

    let second = line("req-json-2");
    assert_eq!(second["route"], "/api/v1/clients");
    assert!(second.get("trace_id").is_none(), "{second}");
    assert!(second.get("client_id").is_none(), "{second}");
    assert!(!server.log().contains("injected"));

    let third = line("req-json-3");
    assert_eq!(third["status"], 401);
    assert!(third.get("actor").is_none(), "{third}");
    assert!(!server.log().contains(TOKEN), "the token is never logged");
}
