//! `/metrics` as an SRE reads it: requests by route template, commands by outcome, secrets
//! and verifications, the pool, build information; a bounded number of series whatever
//! clients send; and a Grafana dashboard that uses only names that exist.

use axum::http::Method;
use registry_tests::{backend_tests, service_client, spa_client, Backend, TestApp};
use serde_json::json;

backend_tests!(
    requests_are_counted_by_route_template_never_by_raw_path,
    commands_secrets_and_verifications_are_counted_by_outcome,
    the_pool_the_build_and_the_read_models_are_described,
    the_dashboard_uses_only_names_that_exist,
    metrics_answer_when_the_database_does_not,
);

async fn scrape(app: &TestApp) -> String {
    let response = app.call(Method::GET, "/metrics").anonymous().send().await;
    response.assert_status(200);
    assert!(response
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    String::from_utf8(response.body).unwrap()
}

/// The value of the series `name{labels}` (labels as Prometheus writes them: sorted).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

fn series(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' ').map(|(name, _)| name))
        .collect()
}

async fn requests_are_counted_by_route_template_never_by_raw_path(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // One of each kind first, so that every series below exists.
    app.get_client("warm-up-unknown").await.assert_status(404);
    app.call(Method::GET, "/no/such/page")
        .anonymous()
        .send()
        .await
        .assert_status(404);
    app.call(Method::from_bytes(b"BREW").unwrap(), "/api/v1/clients/pot")
        .anonymous()
        .send()
        .await;
    // A scrape is a request too: its own series appear from the second one on.
    scrape(&app).await;
    let before = scrape(&app).await;

    for i in 0..1000 {
        app.get_client(&format!("unknown-{i:04}"))
            .await
            .assert_status(404);
    }
    for i in 0..200 {
        app.call(Method::GET, &format!("/no/such/page-{i}"))
            .anonymous()
            .send()
            .await;
        app.call(
            Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap(),
            &format!("/api/v1/clients/pot-{i}"),
        )
        .anonymous()
        .send()
        .await;
    }
    let after = scrape(&app).await;
    let added: Vec<&str> = series(&after)
        .into_iter()
        .filter(|name| !series(&before).contains(name))
        .collect();
    assert!(
        added.is_empty(),
        "1,400 requests to distinct paths and methods added series: {added:?}"
    );
    for raw in ["unknown-0", "page-1", "pot-", "BREW"] {
        assert!(!after.contains(raw), "{raw} became a label");
    }
    let route = r#"method="GET",route="/api/v1/clients/{client_id}",status="4xx""#;
    assert_eq!(
        value(&after, &format!("registry_http_requests_total{{{route}}}")),
        Some(1001.0)
    );
    assert!(
        value(
            &after,
            r#"registry_http_requests_total{method="GET",route="unmatched",status="4xx"}"#
        ) >= Some(201.0)
    );
    assert!(
        value(
            &after,
            r#"registry_http_requests_total{method="other",route="/api/v1/clients/{client_id}",status="4xx"}"#
        )
        .is_some()
    );
    // The latency histogram resolves 1 ms to 10 s.
    for bucket in ["0.001", "0.01", "0.1", "1", "10", "+Inf"] {
        let line = format!(
            r#"registry_http_request_duration_seconds_bucket{{method="GET",route="/api/v1/clients/{{client_id}}",le="{bucket}"}}"#
        );
        assert!(value(&after, &line).is_some(), "{line}");
    }
    assert_eq!(value(&after, "registry_http_requests_in_flight"), Some(1.0));
}

async fn commands_secrets_and_verifications_are_counted_by_outcome(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    app.create_client(&service_client(
        "svc",
        Some("correct-horse-battery-staple-1"),
    ))
    .await
    .assert_status(201);
    app.create_client(&spa_client("spa", "Single page"))
        .await
        .assert_status(201);
    app.create_client(&spa_client("spa", "Again"))
        .await
        .assert_status(409);
    let mut invalid = spa_client("bad", "Bad");
    invalid["redirect_uris"] = json!(["not a url"]);
    app.create_client(&invalid).await.assert_status(422);
    app.update_client("spa", &spa_client("spa", "Renamed"), Some(7))
        .await
        .assert_status(412);
    app.rotate_secret("svc", None).await.assert_status(200);
    for secret in ["correct-horse-battery-staple-1", "wrong-wrong-wrong-wrong"] {
        app.request(
            Method::POST,
            "/api/v1/clients/svc/secret/verify",
            Some(&json!({ "client_secret": secret })),
            &[],
        )
        .await
        .assert_status(200);
    }
    let text = scrape(&app).await;
    for (series, expected) in [
        (
            r#"registry_commands_total{code="",command="register",outcome="accepted"}"#,
            2.0,
        ),
        (
            r#"registry_commands_total{code="client_exists",command="register",outcome="rejected"}"#,
            1.0,
        ),
        (
            r#"registry_commands_total{code="validation_failed",command="register",outcome="rejected"}"#,
            1.0,
        ),
        (
            r#"registry_commands_total{code="precondition_failed",command="update",outcome="rejected"}"#,
            1.0,
        ),
        (
            r#"registry_commands_total{code="",command="rotate_secret",outcome="accepted"}"#,
            1.0,
        ),
        // Given at registration, generated at rotation.
        ("registry_secrets_issued_total", 2.0),
        // The rotation ended the first secret at once: the old one is invalid now.
        (
            r#"registry_secret_verifications_total{outcome="invalid"}"#,
            2.0,
        ),
        ("registry_hashing_queue_depth", 0.0),
        ("registry_hashing_wait_seconds_count", 4.0),
    ] {
        assert_eq!(value(&text, series), Some(expected), "{series}");
    }
    assert!(!text.contains("correct-horse"), "no secret in the metrics");
}

async fn the_pool_the_build_and_the_read_models_are_described(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("described", "Described"))
        .await
        .assert_status(201);
    let text = scrape(&app).await;
    let name = match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    assert_eq!(
        value(
            &text,
            &format!(
                r#"registry_build_info{{backend="{name}",version="{}"}}"#,
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0)
    );
    let started = value(&text, "process_start_time_seconds").unwrap();
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(started <= now + 1.0 && started > now - 3600.0);
    let max = value(&text, "registry_db_pool_max_connections").unwrap();
    let in_use = value(&text, r#"registry_db_pool_connections{state="in_use"}"#).unwrap();
    let idle = value(&text, r#"registry_db_pool_connections{state="idle"}"#).unwrap();
    assert!(max >= 1.0 && in_use >= 0.0 && idle >= 0.0 && in_use + idle <= max);
    assert_eq!(
        value(&text, "registry_db_pool_acquire_timeouts_total"),
        Some(0.0)
    );
    let head = value(&text, "registry_feed_head_position").unwrap();
    assert!(head >= 1.0);
    // (A test app runs no follower: the index's position moves only with its own loads.)
    let index = value(&text, "registry_search_index_position").unwrap();
    assert!(index <= head);
    assert_eq!(
        value(&text, "registry_search_index_lag_positions"),
        Some(head - index)
    );
}

/// Every metric the committed Grafana dashboard queries is one this service exports (a
/// renamed metric would leave a panel silently empty).
async fn the_dashboard_uses_only_names_that_exist(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    // Make every labelled family appear at least once (a served process runs the projector,
    // the follower and the flusher under the supervisor; a test app runs none).
    let _task = app
        .supervisor
        .supervise("idle", || 0, std::future::pending::<()>);
    app.create_client(&service_client("dash", None))
        .await
        .assert_status(201);
    app.request(
        Method::POST,
        "/api/v1/clients/dash/secret/verify",
        Some(&json!({ "client_secret": "nope-nope-nope-nope" })),
        &[],
    )
    .await
    .assert_status(200);
    app.call(Method::GET, "/api/v1/clients/export.xlsx")
        .anonymous()
        .header(
            "authorization",
            format!("Bearer {}", registry_tests::ADMIN_TOKEN),
        )
        .send()
        .await
        .assert_status(200);
    let text = scrape(&app).await;
    let families: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
        .collect();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ops/grafana/client-registry.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut used = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("registry_") || word.starts_with("process_") {
                    used.push(word.to_owned());
                }
            }
        }
    }
    assert!(used.len() > 20, "{used:?}");
    for name in &used {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        assert!(
            families.contains(&family),
            "the dashboard queries {name}, which /metrics does not export"
        );
    }
}

/// When the database is gone is when an SRE needs the metrics most: `/metrics` still answers,
/// with `registry_database_up 0`, the request counts and the pool, and without positions that
/// would be stale.
async fn metrics_answer_when_the_database_does_not(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let up = scrape(&app).await;
    assert_eq!(value(&up, "registry_database_up"), Some(1.0));
    assert!(value(&up, "registry_feed_head_position").is_some());
    // The database stops answering the scrape's question (the pool itself stays, as when
    // PostgreSQL refuses new sessions; closing the pool would take the pool metrics too).
    app.execute("alter table events rename to events_gone")
        .await;
    let down = scrape(&app).await;
    assert_eq!(value(&down, "registry_database_up"), Some(0.0));
    assert!(
        value(&down, "registry_feed_head_position").is_none(),
        "{down}"
    );
    assert!(value(&down, "registry_projector_lag_events").is_none());
    assert_eq!(
        value(
            &down,
            r#"registry_http_requests_total{method="GET",route="/metrics",status="2xx"}"#
        ),
        Some(1.0)
    );
    assert!(value(&down, "registry_db_pool_max_connections").is_some());
}
