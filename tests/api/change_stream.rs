//! The change stream for caches: `GET /api/v1/events?after=N&wait=S` answers as soon as an
//! event after N is safe to read — written through this process or another — or empty after
//! the wait; its waiters are bounded, and one that goes away frees its place.

use axum::body::Body;
use axum::http::Request;
use registry_tests::{backend_tests, service_client, spa_client, Backend, TestApp, ADMIN_TOKEN};
use serde_json::Value;
use tower::ServiceExt;

backend_tests!(
    a_waiting_reader_is_answered_when_a_change_arrives,
    a_change_through_another_process_wakes_a_waiting_reader,
    waiters_are_bounded_and_one_that_leaves_frees_its_place,
);

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .unwrap()
}

async fn send(router: &axum::Router, request: Request<Body>) -> (u16, Option<String>, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    (
        status,
        retry,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn head(app: &TestApp) -> i64 {
    app.get_json("/api/v1/events?limit=1000").await["next_after"]
        .as_i64()
        .unwrap()
}

/// A guard against a hang, not a timing: the wait asked for is 30 s.
async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(25), future)
        .await
        .expect("the waiting reader was never answered")
}

async fn a_waiting_reader_is_answered_when_a_change_arrives(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // As `serve` runs it: readers hear of an event once the follower told the caches.
    tokio::spawn(app.search.clone().follow(app.reads()));
    let after = head(&app).await;

    // Nothing new: empty after the wait, the cursor where it was.
    let (status, _, empty) = send(
        &app.router,
        get(&format!("/api/v1/events?after={after}&wait=1")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(empty["events"], serde_json::json!([]));
    assert_eq!(empty["next_after"], after);

    let router = app.router.clone();
    let waiting = tokio::spawn(async move {
        send(
            &router,
            get(&format!("/api/v1/events?after={after}&wait=30")),
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "it waits while nothing changes");
    app.create_client(&spa_client("woken", "Woken"))
        .await
        .assert_status(201);
    let (status, _, page) = within(waiting).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(page["events"][0]["client_id"], "woken");
    assert_eq!(page["events"][0]["event_type"], "ClientRegistered");
    assert!(page["next_after"].as_i64().unwrap() > after);

    // Past the limit: a 400 naming the parameter.
    let (status, _, problem) = send(&app.router, get("/api/v1/events?wait=61")).await;
    assert_eq!(status, 400);
    assert!(problem.to_string().contains("wait"), "{problem}");
}

async fn a_change_through_another_process_wakes_a_waiting_reader(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = first.second_process().await;
    tokio::spawn(second.search.clone().follow(second.reads()));
    let after = head(&second).await;
    let router = second.router.clone();
    let waiting = tokio::spawn(async move {
        send(
            &router,
            get(&format!("/api/v1/events?after={after}&wait=30")),
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    first
        .create_client(&service_client("elsewhere", None))
        .await
        .assert_status(201);
    let (status, _, page) = within(waiting).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(page["events"][0]["client_id"], "elsewhere");
    // No secret material in the change stream.
    assert!(!page.to_string().contains("argon2"), "{page}");
}

async fn waiters_are_bounded_and_one_that_leaves_frees_its_place(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.feed_waiters = 1).await;
    let after = head(&app).await;
    let router = app.router.clone();
    let holder = tokio::spawn(async move {
        send(
            &router,
            get(&format!("/api/v1/events?after={after}&wait=30")),
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, retry, problem) = send(
        &app.router,
        get(&format!("/api/v1/events?after={after}&wait=30")),
    )
    .await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(
        problem["type"].as_str().map(|t| t.ends_with("overloaded")),
        Some(true),
        "{problem}"
    );
    assert!(retry.is_some(), "Retry-After");
    // Without `wait`, the feed answers whatever the waiters.
    let (status, _, _) = send(&app.router, get(&format!("/api/v1/events?after={after}"))).await;
    assert_eq!(status, 200);

    // The waiting client goes away: its place is free again.
    holder.abort();
    let _ = holder.await;
    let (status, _, page) = send(
        &app.router,
        get(&format!("/api/v1/events?after={after}&wait=1")),
    )
    .await;
    assert_eq!(status, 200, "{page}");
}
