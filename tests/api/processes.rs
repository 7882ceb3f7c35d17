//! Several processes on one database: what each one's read models see, and when.

use axum::http::Method;
use registry_commands::CommandContext;
use registry_domain::ClientSettingsInput;
use registry_projections::ListQuery;
use registry_tests::{backend_tests, spa_client, Backend, TestApp};

backend_tests!(a_process_started_before_a_projection_catches_up_still_indexes_it);

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

fn found(app: &TestApp, term: &str) -> u64 {
    let query = ListQuery::parse(Some(term), None, None, None, None).unwrap();
    app.search.search(&query).total
}

/// The race of defect 1: event 100 (one client) is committed but not projected yet when
/// event 101 (another client) is projected inline; a process that starts then must still
/// index the first client once it is projected, not start past it for good.
async fn a_process_started_before_a_projection_catches_up_still_indexes_it(backend: Backend) {
    let first = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let context = CommandContext {
        actor: "race".to_owned(),
        request_id: "race".to_owned(),
        reason: None,
        at: chrono::Utc::now(),
    };
    first
        .commands_without_projection()
        .register(
            &context,
            "slow-projection",
            public_settings("Slow projection"),
            None,
        )
        .await
        .unwrap();
    first
        .create_client(&spa_client("fast-projection", "Fast projection"))
        .await
        .assert_status(201);

    // The list export does not claim a position its rows do not reflect.
    let slow_position = first
        .get_json("/api/v1/events?client_id=slow-projection")
        .await["events"][0]["position"]
        .as_i64()
        .unwrap();
    let export = first
        .request(
            axum::http::Method::GET,
            "/api/v1/clients/export.xlsx",
            None,
            &[],
        )
        .await;
    export.assert_status(200);
    let claimed: i64 = export.header("x-feed-position").unwrap().parse().unwrap();
    assert!(
        claimed < slow_position,
        "export claims {claimed}, but event {slow_position} is not in its rows"
    );

    let second = first.second_process().await;
    assert_eq!(found(&second, "fast projection"), 1);
    assert_eq!(found(&second, "slow projection"), 0, "not projected yet");

    first.projector.drain().await.unwrap();
    let reads = second.reads();
    registry_tests::eventually(10, "the late projection to reach the index", || async {
        second.search.follow_once(reads.as_ref()).await.unwrap();
        found(&second, "slow projection") == 1
    })
    .await;
}

/// Two processes on one database (PostgreSQL; SQLite is one process per file): 16 writers
/// doing GET → PUT with If-Match on one client, alternately through each process, lose no
/// update; a client registered through one is readable at once and searchable within the
/// contract's bound through the other; a process started while the other writes builds a
/// complete index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_database() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let first = TestApp::spawn_with(Backend::Postgres, |c| c.seed_default_clients = false).await;
    let second = first.second_process().await;
    let follower = tokio::spawn(second.search.clone().follow(second.reads()));
    first
        .create_client(&spa_client("shared", "Shared"))
        .await
        .assert_status(201);

    // 16 read-modify-write loops, each through one of the two processes.
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..16 {
        let app = if writer % 2 == 0 { &first } else { &second };
        let api = app.api();
        writers.spawn(async move {
            let mut successes = 0;
            for round in 0..5 {
                let response = api.call(Method::GET, "/api/v1/clients/shared").send().await;
                let tag = response.header("etag").unwrap().to_owned();
                let mut body = spa_client("shared", &format!("w{writer} r{round}"));
                body["client_uri"] = serde_json::Value::Null;
                let put = api.call(Method::PUT, "/api/v1/clients/shared");
                let status = put.header("if-match", tag).json(&body).send().await;
                let status = status.status.as_u16();
                assert!([200, 409, 412].contains(&status), "{status}");
                successes += u64::from(status == 200);
            }
            successes
        });
    }
    let mut successes = 0;
    while let Some(done) = writers.join_next().await {
        successes += done.unwrap();
    }
    assert!(successes >= 1);
    let client = second.get_client("shared").await;
    assert_eq!(client.etag_version(), Some(1 + successes), "no lost update");
    assert_eq!(
        first.get_client("shared").await.etag_version(),
        Some(1 + successes)
    );

    // Registered through one: readable through the other at once, searchable within the
    // contract's bound (its follower, not its own write).
    first
        .create_client(&spa_client("from-first", "Visible elsewhere"))
        .await
        .assert_status(201);
    second.get_client("from-first").await.assert_status(200);
    let written = std::time::Instant::now();
    registry_tests::eventually(5, "the other process's search to see it", || async {
        found(&second, "visible elsewhere") == 1
    })
    .await;
    assert!(
        written.elapsed() <= registry_projections::consistency::OTHER_PROCESS_SEARCH_BOUND,
        "searchable through the other process within the contract's bound: {:?}",
        written.elapsed()
    );

    // A third process started while the first one writes builds a complete index.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let api = first.api();
        let stop = stop.clone();
        load.spawn(async move {
            let mut acknowledged = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let id = format!("load-{writer}-{i}");
                let request = api.call(Method::POST, "/api/v1/clients");
                let status = request.json(&spa_client(&id, "Load")).send().await.status;
                if status == 201 {
                    acknowledged.push(id);
                }
            }
            acknowledged
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let third = first.second_process().await;
    let third_follower = tokio::spawn(third.search.clone().follow(third.reads()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    while let Some(done) = load.join_next().await {
        acknowledged.extend(done.unwrap());
    }
    assert!(!acknowledged.is_empty());
    first.projector.drain().await.unwrap();
    registry_tests::eventually(10, "the late process to index every client", || async {
        let query = ListQuery::parse(Some("load-"), None, None, Some(500), None).unwrap();
        third.search.search(&query).total == acknowledged.len() as u64
    })
    .await;
    follower.abort();
    third_follower.abort();
}
