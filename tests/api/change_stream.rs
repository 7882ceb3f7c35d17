//! The change stream for caches: `GET /api/v1/events?after=N&wait=S` answers as soon as an
//! event after N is safe to read — written through this process or another — or empty after
//! the wait; its waiters are bounded, and one that goes away frees its place. A cache starts at
//! `GET /api/v1/events/head`; a process not following the feed answers neither.

use registry_tests::{backend_tests, service_client, spa_client, Backend, Call, TestApp};
use serde_json::Value;

backend_tests!(
    a_waiting_reader_is_answered_when_a_change_arrives,
    a_change_through_another_process_wakes_a_waiting_reader,
    waiters_are_bounded_and_one_that_leaves_frees_its_place,
    a_process_not_following_the_feed_says_so,
    the_stream_tells_of_a_change_only_once_it_can_be_read,
);

async fn send(call: Call) -> (u16, Option<String>, Value) {
    let response = call.send().await;
    let retry = response.header("retry-after").map(str::to_owned);
    (response.status.as_u16(), retry, response.json())
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
    app.follow_feed().await;
    let after = head(&app).await;

    // Nothing new: empty after the wait, the cursor where it was.
    let (status, _, empty) = send(app.get(&format!("/api/v1/events?after={after}&wait=1"))).await;
    assert_eq!(status, 200);
    assert_eq!(empty["events"], serde_json::json!([]));
    assert_eq!(empty["next_after"], after);

    let api = app.api();
    let waiting = tokio::spawn(async move {
        send(api.get(&format!("/api/v1/events?after={after}&wait=30"))).await
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
    let (status, _, problem) = send(app.get("/api/v1/events?wait=61")).await;
    assert_eq!(status, 400);
    assert!(problem.to_string().contains("wait"), "{problem}");
}

async fn a_change_through_another_process_wakes_a_waiting_reader(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = first.second_process().await;
    second.follow_feed().await;
    let after = head(&second).await;
    let api = second.api();
    let waiting = tokio::spawn(async move {
        send(api.get(&format!("/api/v1/events?after={after}&wait=30"))).await
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
    app.follow_feed().await;
    let after = head(&app).await;
    let api = app.api();
    let holder = tokio::spawn(async move {
        send(api.get(&format!("/api/v1/events?after={after}&wait=30"))).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (status, retry, problem) =
        send(app.get(&format!("/api/v1/events?after={after}&wait=30"))).await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(
        problem["type"].as_str().map(|t| t.ends_with("overloaded")),
        Some(true),
        "{problem}"
    );
    assert!(retry.is_some(), "Retry-After");
    // Without `wait`, the feed answers whatever the waiters.
    let (status, _, _) = send(app.get(&format!("/api/v1/events?after={after}"))).await;
    assert_eq!(status, 200);

    // The waiting client goes away: its place is free again.
    holder.abort();
    let _ = holder.await;
    let (status, _, page) = send(app.get(&format!("/api/v1/events?after={after}&wait=1"))).await;
    assert_eq!(status, 200, "{page}");
}

/// A cache starts following at `GET /events/head`; a process whose follower is not reading
/// the feed (stopped, cut from its database, stuck behind a projection) says so with a 503
/// instead of a stream that looks healthy and tells nothing.
async fn a_process_not_following_the_feed_says_so(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&service_client("before", None))
        .await
        .assert_status(201);
    for path in ["/api/v1/events/head", "/api/v1/events?after=0&wait=1"] {
        let (status, _, problem) = send(app.get(path)).await;
        assert_eq!(status, 503, "{path}: {problem}");
        assert_eq!(problem["code"], "not_ready", "{problem}");
    }

    app.follow_feed().await;
    let (status, _, started) = send(app.get("/api/v1/events/head")).await;
    assert_eq!(status, 200, "{started}");
    let start = started["next_after"].as_i64().unwrap();
    assert_eq!(start, head(&app).await, "the head is the end of the feed");
    // From there, the stream tells exactly what comes next.
    app.create_client(&service_client("after", None))
        .await
        .assert_status(201);
    let (status, _, page) = within(send(
        app.get(&format!("/api/v1/events?after={start}&wait=10")),
    ))
    .await;
    assert_eq!(status, 200, "{page}");
    let ids: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["client_id"].as_str())
        .collect();
    assert_eq!(ids, ["after"]);
}

/// A process that committed an event and died before projecting it: the event is in the
/// feed, but `GET /clients/{id}` does not show it yet. The stream must not tell of it then —
/// a cache that forgot the client and read it again at once would keep the old answer (here:
/// "unknown client") for good.
async fn the_stream_tells_of_a_change_only_once_it_can_be_read(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    app.follow_feed().await;
    let (_, _, started) = send(app.get("/api/v1/events/head")).await;
    let start = started["next_after"].as_i64().unwrap();
    let context = registry_commands::CommandContext {
        actor: "dying-process".to_owned(),
        request_id: "dying".to_owned(),
        reason: None,
        at: chrono::Utc::now(),
    };
    let settings = registry_domain::ClientSettingsInput {
        client_name: Some("Ghost".to_owned()),
        require_client_secret: false,
        enabled: true,
        require_pkce: true,
        grant_types: vec!["authorization_code".to_owned()],
        redirect_uris: vec!["https://ghost.example.com/cb".to_owned()],
        ..registry_domain::ClientSettingsInput::default()
    };
    app.commands_without_projection()
        .register(&context, "ghost", settings, None)
        .await
        .unwrap();
    app.get_client("ghost")
        .await
        .assert_problem(404, "client_not_found");
    // Not told: an empty page after the wait, or `not_ready` once the follower has been
    // stuck behind the projection for longer than it may be trusted.
    let (status, _, page) = send(app.get(&format!("/api/v1/events?after={start}&wait=1"))).await;
    match status {
        200 => assert_eq!(page["events"], serde_json::json!([]), "{page}"),
        503 => assert_eq!(page["code"], "not_ready", "{page}"),
        other => panic!("{other}: {page}"),
    }

    app.projector.drain().await.unwrap();
    let told = std::sync::Mutex::new(Value::Null);
    registry_tests::eventually(10, "the stream to tell of the ghost", || async {
        let (status, _, page) =
            send(app.get(&format!("/api/v1/events?after={start}&wait=1"))).await;
        let found = status == 200 && page["events"].as_array().is_some_and(|e| !e.is_empty());
        *told.lock().unwrap() = page;
        found
    })
    .await;
    assert_eq!(told.lock().unwrap()["events"][0]["client_id"], "ghost");
    app.get_client("ghost").await.assert_status(200);
}
