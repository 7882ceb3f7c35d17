//! The verification fast path: a correct secret presented again is answered from memory
//! (no argon2id, no database), and every change that revokes it — in this process or
//! another — is refused at once (this process) or within the feed's bound (another).

use axum::http::Method;
use registry_tests::{backend_tests, service_client, Backend, TestApp};
use serde_json::{json, Value};

backend_tests!(
    a_cached_secret_is_refused_after_each_change_that_revokes_it,
    a_client_deleted_and_registered_again_never_takes_the_old_secret,
    a_secret_revoked_through_one_process_is_refused_by_the_other,
    a_flood_of_wrong_secrets_does_not_stop_cached_correct_ones,
    the_change_stream_never_tells_of_a_change_before_the_memory_forgot_it,
);

async fn verify(app: &TestApp, client_id: &str, secret: &str) -> (u16, Value) {
    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/clients/{client_id}/secret/verify"),
            Some(&json!({ "client_secret": secret })),
            &[],
        )
        .await;
    let status = response.status.as_u16();
    let body = if status == 200 {
        response.json()
    } else {
        Value::Null
    };
    (status, body)
}

async fn valid(app: &TestApp, client_id: &str, secret: &str) -> bool {
    let (status, body) = verify(app, client_id, secret).await;
    assert_eq!(status, 200, "{body}");
    body["valid"].as_bool().unwrap()
}

/// Verifications answered from memory so far, as `/metrics` shows them.
async fn from_memory(app: &TestApp) -> u64 {
    let response = app.call(Method::GET, "/metrics").anonymous().send().await;
    String::from_utf8(response.body)
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("registry_secret_verifications_from_memory_total "))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

async fn create(app: &TestApp, client_id: &str) -> String {
    let created = app.create_client(&service_client(client_id, None)).await;
    created.assert_status(201);
    created.json()["client_secret"].as_str().unwrap().to_owned()
}

async fn a_cached_secret_is_refused_after_each_change_that_revokes_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.follow_feed().await;
    let first = create(&app, "billing").await;
    assert!(valid(&app, "billing", &first).await, "argon2id once");
    let before = from_memory(&app).await;
    assert!(valid(&app, "billing", &first).await);
    assert!(valid(&app, "billing", &first).await);
    assert_eq!(from_memory(&app).await, before + 2, "answered from memory");
    assert!(!valid(&app, "billing", "not-the-secret-0123456789").await);

    // Rotated with a grace: the old secret stays valid, and says until when.
    let rotated = app
        .rotate_secret(
            "billing",
            Some(&json!({ "previous_secret_valid_for": 3600 })),
        )
        .await;
    rotated.assert_status(200);
    let second = rotated.json()["client_secret"].as_str().unwrap().to_owned();
    let (_, grace) = verify(&app, "billing", &first).await;
    assert_eq!(grace["valid"], true);
    assert!(grace["expires_at"].is_string(), "{grace}");
    let (_, current) = verify(&app, "billing", &second).await;
    assert_eq!(current, json!({ "valid": true, "expires_at": null }));
    // Cached again, both.
    assert!(valid(&app, "billing", &first).await);
    assert!(valid(&app, "billing", &second).await);

    // Rotated without a grace: the old secrets stop at once, cached or not.
    let rotated = app.rotate_secret("billing", None).await;
    rotated.assert_status(200);
    let third = rotated.json()["client_secret"].as_str().unwrap().to_owned();
    assert!(!valid(&app, "billing", &first).await);
    assert!(!valid(&app, "billing", &second).await);
    assert!(valid(&app, "billing", &third).await);
    assert!(valid(&app, "billing", &third).await);

    // Disabled: refused at once; enabled again: valid again.
    let mut body = service_client("billing", None);
    body["enabled"] = false.into();
    let version = app.get_client("billing").await.etag_version();
    app.update_client("billing", &body, version)
        .await
        .assert_status(200);
    assert!(!valid(&app, "billing", &third).await, "disabled");
    body["enabled"] = true.into();
    let version = app.get_client("billing").await.etag_version();
    app.update_client("billing", &body, version)
        .await
        .assert_status(200);
    assert!(valid(&app, "billing", &third).await);
    assert!(valid(&app, "billing", &third).await);

    // Deleted: refused at once.
    app.delete_client("billing").await.assert_status(204);
    assert!(!valid(&app, "billing", &third).await, "deleted");
}

async fn a_client_deleted_and_registered_again_never_takes_the_old_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.follow_feed().await;
    let old = create(&app, "reborn").await;
    assert!(valid(&app, "reborn", &old).await);
    assert!(valid(&app, "reborn", &old).await);
    app.delete_client("reborn").await.assert_status(204);
    let new = create(&app, "reborn").await;
    assert_ne!(new, old);
    assert!(
        !valid(&app, "reborn", &old).await,
        "the old secret never again"
    );
    assert!(valid(&app, "reborn", &new).await);
}

async fn a_secret_revoked_through_one_process_is_refused_by_the_other(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = first.second_process().await;
    first.follow_feed().await;
    second.follow_feed().await;
    let secret = create(&first, "shared").await;
    for app in [&first, &second] {
        assert!(valid(app, "shared", &secret).await);
        assert!(valid(app, "shared", &secret).await);
    }
    let cached = from_memory(&second).await;
    assert!(cached >= 1, "the second process answers from memory");

    // Rotated through the first, without a grace.
    first.rotate_secret("shared", None).await.assert_status(200);
    assert!(
        !valid(&first, "shared", &secret).await,
        "at once where it happened"
    );
    // The other process learns it through its feed follower, within the contract's bound.
    let bound = registry_projections::consistency::OTHER_PROCESS_SECRET_BOUND;
    registry_tests::eventually(
        bound.as_secs() + 1,
        "the other process to refuse it",
        || {
            let second = &second;
            let secret = &secret;
            async move { !valid(second, "shared", secret).await }
        },
    )
    .await;
    // And it stays refused (not a cache that comes back).
    for _ in 0..3 {
        assert!(!valid(&second, "shared", &secret).await);
    }
}

/// Wrong secrets still pay argon2id through the bounded queue (and are shed with 503 when
/// it is full); a correct secret verified once never waits behind them.
async fn a_flood_of_wrong_secrets_does_not_stop_cached_correct_ones(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.hash_concurrency = Some(1);
        c.hash_queue = Some(2);
    })
    .await;
    app.follow_feed().await;
    let secret = create(&app, "busy").await;
    assert!(valid(&app, "busy", &secret).await);

    let mut flood = tokio::task::JoinSet::new();
    for i in 0..24 {
        let wrong = json!({ "client_secret": format!("wrong-secret-{i:04}-0123456789") });
        let request = app
            .call(Method::POST, "/api/v1/clients/busy/secret/verify")
            .json(&wrong);
        flood.spawn(async move { request.send().await.status.as_u16() });
    }
    // While the flood holds the queue, the correct secret is answered every time.
    for _ in 0..20 {
        let (status, body) = verify(&app, "busy", &secret).await;
        assert_eq!(status, 200, "a cached secret never waits behind the queue");
        assert_eq!(body["valid"], true);
    }
    let mut statuses = Vec::new();
    while let Some(status) = flood.join_next().await {
        statuses.push(status.unwrap());
    }
    assert!(
        statuses.iter().all(|s| [200, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "the queue still sheds: {statuses:?}"
    );
}

/// A cache in front of the registry (the oidc-provider adapter) forgets a client when the
/// change stream shows its event, and asks again at once: the process answering must not
/// still remember the revoked secret then, or the cache would take the stale answer for good.
async fn the_change_stream_never_tells_of_a_change_before_the_memory_forgot_it(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = first.second_process().await;
    second.follow_feed().await;
    let secret = create(&first, "watched").await;
    assert!(valid(&second, "watched", &secret).await);
    assert!(valid(&second, "watched", &secret).await);
    assert!(from_memory(&second).await >= 1, "remembered by the second");
    let after = {
        let response = second
            .request(Method::GET, "/api/v1/events?after=0&limit=1000", None, &[])
            .await;
        response.json()["next_after"].as_i64().unwrap()
    };

    first
        .rotate_secret("watched", None)
        .await
        .assert_status(200);
    // Wait on the second process's stream as a cache does, and verify the moment the rotation
    // shows (its follower wakes up to a second later on SQLite: the stream used to read the
    // store directly and tell of the event while the memory still held the secret).
    let seen = registry_tests::eventually(10, "the rotation in the change stream", || {
        let second = &second;
        async move {
            let response = second
                .request(
                    Method::GET,
                    &format!("/api/v1/events?after={after}&limit=1000&wait=5"),
                    None,
                    &[],
                )
                .await;
            let page: Value = response.json();
            page["events"]
                .as_array()
                .is_some_and(|events| events.iter().any(|e| e["client_id"] == "watched"))
        }
    });
    seen.await;
    assert!(
        !valid(&second, "watched", &secret).await,
        "told of the rotation, the second process must not verify the old secret"
    );
}
