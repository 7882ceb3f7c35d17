//! The read models survive a crash between commit and projection; one projector at a time;
//! a rebuild ends with the same rows.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use registry_commands::CommandContext;
use registry_domain::ClientSettingsInput;
use registry_projections::{Projector, ReadStore};
use registry_tests::{backend_tests, eventually, service_client, spa_client, Backend, TestApp};
use serde_json::json;

backend_tests!(
    events_committed_without_projection_appear_once_after_the_projector_runs,
    background_projector_catches_up_by_itself,
    rebuild_ends_with_the_same_rows,
);

fn context() -> CommandContext {
    CommandContext {
        actor: "crash-test".to_owned(),
        request_id: "crash".to_owned(),
        reason: None,
        at: chrono::Utc::now(),
    }
}

fn public_settings(name: &str) -> ClientSettingsInput {
    ClientSettingsInput {
        client_name: Some(name.to_owned()),
        require_client_secret: false,
        enabled: true,
        require_pkce: true,
        grant_types: vec!["authorization_code".to_owned()],
        redirect_uris: vec!["https://app.example.com/cb".to_owned()],
        ..ClientSettingsInput::default()
    }
}

/// Commits events the read models never saw: a process that died between commit and
/// projection.
async fn commit_without_projection(app: &TestApp) {
    let commands = app.commands_without_projection();
    for i in 0..5 {
        let id = format!("orphan-{i}");
        commands
            .register(
                &context(),
                &id,
                public_settings(&format!("Orphan {i}")),
                None,
            )
            .await
            .unwrap();
    }
    commands
        .update(
            &context(),
            "orphan-0",
            public_settings("Orphan zero, renamed"),
            None,
        )
        .await
        .unwrap();
    commands.delete(&context(), "orphan-4", None).await.unwrap();
}

async fn metric(app: &TestApp, name: &str) -> u64 {
    let response = app
        .send(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    response.assert_status(200);
    let text = String::from_utf8(response.body).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from {text}"))
}

async fn events_committed_without_projection_appear_once_after_the_projector_runs(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    app.create_client(&spa_client("live", "Live"))
        .await
        .assert_status(201);
    app.projector.drain().await.unwrap();
    assert_eq!(metric(&app, "registry_projector_lag_events").await, 0);

    commit_without_projection(&app).await;
    let list = app.get_json("/api/v1/clients?search=orphan").await;
    assert_eq!(list["total"], 0, "not projected yet");
    app.get_client("orphan-1")
        .await
        .assert_problem(404, "client_not_found");
    assert_eq!(metric(&app, "registry_projector_lag_events").await, 7);

    let read = app.projector.drain().await.unwrap();
    assert_eq!(read, 7);
    let list = app.get_json("/api/v1/clients?search=orphan").await;
    assert_eq!(list["total"], 4, "four registered, one of them deleted");
    let ids: Vec<&str> = list["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["orphan-0", "orphan-1", "orphan-2", "orphan-3"]);
    let renamed = app.get_client("orphan-0").await;
    assert_eq!(renamed.etag_version(), Some(2));
    assert_eq!(renamed.json()["client_name"], "Orphan zero, renamed");
    assert_eq!(metric(&app, "registry_projector_lag_events").await, 0);
    assert_eq!(
        metric(&app, "registry_projector_checkpoint_position").await,
        metric(&app, "registry_feed_head_position").await
    );

    // Running it again changes nothing.
    let rows = app.read_model_rows().await;
    assert_eq!(app.projector.drain().await.unwrap(), 0);
    assert_eq!(app.read_model_rows().await, rows);
}

async fn background_projector_catches_up_by_itself(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let task = tokio::spawn(app.projector.clone().run());
    eventually(10, "the projector to take its lease", || async {
        app.projector.is_leader()
    })
    .await;
    commit_without_projection(&app).await;
    eventually(10, "the orphans to be projected", || async {
        app.get_json("/api/v1/clients?search=orphan").await["total"] == 4
    })
    .await;
    // Commits through the API move the checkpoint too.
    app.create_client(&spa_client("after", "After"))
        .await
        .assert_status(201);
    eventually(10, "the checkpoint to reach the head", || async {
        metric(&app, "registry_projector_lag_events").await == 0
    })
    .await;
    assert_eq!(metric(&app, "registry_projector_leader").await, 1);
    task.abort();
}

async fn rebuild_ends_with_the_same_rows(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for i in 0..6 {
        app.create_client(&service_client(&format!("svc-{i}"), None))
            .await
            .assert_status(201);
    }
    let mut changed = service_client("svc-1", None);
    changed["enabled"] = json!(false);
    changed["client_uri"] = json!("https://billing.example.com");
    app.update_client("svc-1", &changed, None)
        .await
        .assert_status(200);
    app.rotate_secret("svc-2", Some(&json!({"previous_secret_valid_for": 3600})))
        .await
        .assert_status(200);
    app.delete_client("svc-3").await.assert_status(204);
    app.delete_client("svc-4").await.assert_status(204);
    app.create_client(&spa_client("svc-4", "Back again"))
        .await
        .assert_status(201);
    app.projector.drain().await.unwrap();
    let before = app.read_model_rows().await;
    assert!(before.len() > 10);

    let replayed = app.reads().rebuild().await.unwrap();
    assert_eq!(
        replayed,
        3 + 6 + 1 + 1 + 2 + 1,
        "every event, defaults included"
    );
    assert_eq!(
        app.read_model_rows().await,
        before,
        "the same rows after a rebuild"
    );
}

// One projector at a time across processes: a PostgreSQL matter (SQLite is one process per
// file, where the lease is always granted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_projector_at_a_time_and_another_takes_over() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let other_pool = app.connect_again().await;
    let first = Arc::new(Projector::new(app.reads()));
    let second = Arc::new(Projector::new(registry_api::read_store(&other_pool)));
    let first_task = tokio::spawn(first.clone().run());
    eventually(10, "the first projector to lead", || async {
        first.is_leader()
    })
    .await;
    let second_task = tokio::spawn(second.clone().run());
    // The second keeps trying (every second) and must not get the lease.
    let reads: Arc<dyn ReadStore> = registry_api::read_store(&other_pool);
    assert!(
        reads.try_lease().await.unwrap().is_none(),
        "the lease is taken"
    );
    assert!(!second.is_leader());

    first_task.abort();
    eventually(15, "the second projector to take over", || async {
        second.is_leader()
    })
    .await;
    assert!(reads.try_lease().await.unwrap().is_none());
    second_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_always_granted_on_sqlite() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut lease = app.reads().try_lease().await.unwrap().unwrap();
    assert!(lease.is_held().await);
}
