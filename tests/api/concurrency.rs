//! Concurrent writes to one client: one winner per version, no lost update.

use std::collections::BTreeSet;

use axum::http::Method;
use registry_tests::{backend_tests, spa_client, Backend, TestApp};

backend_tests!(
    sixteen_concurrent_updates_lose_nothing,
    sixteen_concurrent_updates_with_if_match_have_one_winner,
    concurrent_registrations_of_one_id_have_one_winner,
    concurrent_patches_without_if_match_lose_nothing,
);

/// Sends 16 `PUT`s at once, each renaming the client to `writer-{i}`; returns
/// (status, ETag version, name) of each.
async fn race(app: &TestApp, if_match: Option<&str>) -> Vec<(u16, Option<u64>, String)> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let name = format!("writer-{i:02}");
        let mut request = app.call(Method::PUT, "/api/v1/clients/app");
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        let request = request.json(&spa_client("app", &name));
        tasks.spawn(async move {
            let response = request.send().await;
            (response.status.as_u16(), response.etag_version(), name)
        });
    }
    let mut results = Vec::new();
    while let Some(result) = tasks.join_next().await {
        results.push(result.unwrap());
    }
    results
}

async fn sixteen_concurrent_updates_lose_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("app", "start"))
        .await
        .assert_status(201);
    let results = race(&app, None).await;

    let winners: Vec<&(u16, Option<u64>, String)> = results.iter().filter(|r| r.0 == 200).collect();
    for (status, _, _) in &results {
        assert!(
            *status == 200 || *status == 409,
            "only success or conflict: {results:?}"
        );
    }
    assert!(!winners.is_empty());
    // Each success wrote exactly one new version; no two share one.
    let versions: BTreeSet<u64> = winners.iter().map(|w| w.1.unwrap()).collect();
    assert_eq!(versions.len(), winners.len(), "{results:?}");
    let events = app.events_of("app").await;
    assert_eq!(
        events.len(),
        1 + winners.len(),
        "one event per success, none lost"
    );
    // The stored state is the last successful write.
    let last = winners.iter().max_by_key(|w| w.1).unwrap();
    let client = app.get_client("app").await;
    assert_eq!(client.etag_version(), last.1);
    assert_eq!(client.json()["client_name"], last.2.as_str());
    assert_eq!(client.etag_version(), Some(1 + winners.len() as u64));
}

async fn sixteen_concurrent_updates_with_if_match_have_one_winner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("app", "start"))
        .await
        .assert_status(201);
    let results = race(&app, Some("\"1\"")).await;
    let winners: Vec<_> = results.iter().filter(|r| r.0 == 200).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(results.iter().all(|r| [200, 409, 412].contains(&r.0)));
    let client = app.get_client("app").await;
    assert_eq!(client.etag_version(), Some(2));
    assert_eq!(client.json()["client_name"], winners[0].2.as_str());
    assert_eq!(app.events_of("app").await.len(), 2);
}

async fn concurrent_registrations_of_one_id_have_one_winner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let request = app.call(Method::POST, "/api/v1/clients");
        let request = request.json(&spa_client("same", &format!("n{i}")));
        tasks.spawn(async move { request.send().await.status.as_u16() });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409));
    assert_eq!(app.events_of("same").await.len(), 1);
}

/// A merge patch applies to the version it was merged with: of 16 concurrent patches each
/// renaming the client, every success is a version of its own and the rest are 409s, never
/// an overwrite of a change the patch did not see.
async fn concurrent_patches_without_if_match_lose_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("app", "start"))
        .await
        .assert_status(201);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let patch = serde_json::json!({ "client_name": format!("patch-{i:02}") });
        let request = app.call(Method::PATCH, "/api/v1/clients/app");
        let request = request.body("application/merge-patch+json", patch.to_string());
        tasks.spawn(async move { request.send().await.status.as_u16() });
    }
    let mut statuses = Vec::new();
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    let successes = statuses.iter().filter(|s| **s == 200).count();
    assert!(successes >= 1);
    assert_eq!(
        app.events_of("app").await.len(),
        1 + successes,
        "{statuses:?}"
    );
}
