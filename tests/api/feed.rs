//! The global feed is safe to tail: under concurrent writers a tailing reader sees every
//! committed event exactly once, in feed order, and each client's events in sequence order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::http::Method;
use registry_tests::{backend_tests, spa_client, Backend, Call, TestApp};
use serde_json::Value;

backend_tests!(tailing_reader_sees_every_event_once_under_concurrent_writers);

const WRITERS: usize = 8;
/// Writes by each writer: two of three to its own client (never a conflict), one to the shared.
const WRITES_EACH: usize = 30;

async fn send(call: Call) -> (u16, Value) {
    let response = call.send().await;
    (response.status.as_u16(), response.json())
}

async fn tailing_reader_sees_every_event_once_under_concurrent_writers(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let stop = Arc::new(AtomicBool::new(false));

    // The reader tails the feed while the writers write.
    let reader = {
        let api = app.api();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut seen: Vec<Value> = Vec::new();
            let mut after = 0;
            let mut quiet_after_stop = 0;
            loop {
                let path = format!("/api/v1/events?after={after}&limit=50");
                let (status, page) = send(api.call(Method::GET, &path)).await;
                assert_eq!(status, 200, "{page}");
                let events = page["events"].as_array().unwrap().clone();
                after = page["next_after"].as_i64().unwrap();
                if events.is_empty() {
                    if stop.load(Ordering::SeqCst) {
                        quiet_after_stop += 1;
                        if quiet_after_stop > 3 {
                            return seen;
                        }
                    }
                    tokio::task::yield_now().await;
                } else {
                    seen.extend(events);
                }
            }
        })
    };

    // Writers: each registers a client of its own and updates it, and all of them also fight
    // over one shared client (conflicts are expected and write nothing).
    let shared = app.create_client(&spa_client("shared", "shared")).await;
    shared.assert_status(201);
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let api = app.api();
        writers.spawn(async move {
            let mut committed: Vec<(String, u64)> = Vec::new();
            let own = format!("writer-{w}");
            let request = api.call(Method::POST, "/api/v1/clients");
            let (status, _) = send(request.json(&spa_client(&own, &own))).await;
            assert_eq!(status, 201);
            committed.push((own.clone(), 1));
            for i in 1..=WRITES_EACH {
                let target = if i % 3 == 0 {
                    "shared".to_owned()
                } else {
                    own.clone()
                };
                let body = spa_client(&target, &format!("{own} write {i}"));
                let request = api.call(Method::PUT, &format!("/api/v1/clients/{target}"));
                let (status, client) = send(request.json(&body)).await;
                match status {
                    200 => committed.push((target, client["version"].as_u64().unwrap())),
                    409 => {}
                    other => panic!("unexpected {other}: {client}"),
                }
            }
            committed
        });
    }
    let mut committed: BTreeSet<(String, u64)> = BTreeSet::from([("shared".to_owned(), 1)]);
    while let Some(result) = writers.join_next().await {
        committed.extend(result.unwrap());
    }
    stop.store(true, Ordering::SeqCst);
    let seen = reader.await.unwrap();

    // Every committed event exactly once ...
    let seen_keys: Vec<(String, u64)> = seen
        .iter()
        .map(|e| {
            (
                e["client_id"].as_str().unwrap().to_owned(),
                e["sequence"].as_u64().unwrap(),
            )
        })
        .collect();
    let unique: BTreeSet<(String, u64)> = seen_keys.iter().cloned().collect();
    assert_eq!(unique.len(), seen_keys.len(), "an event was seen twice");
    assert_eq!(
        unique, committed,
        "the feed differs from what was committed"
    );
    assert!(
        committed.len() > WRITERS * WRITES_EACH * 2 / 3,
        "every write to a writer's own client commits: {}",
        committed.len()
    );
    // ... in feed order ...
    let positions: Vec<i64> = seen
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "positions not increasing"
    );
    // ... and each client's events in sequence order, without gaps.
    let mut per_client: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (client, sequence) in seen_keys {
        per_client.entry(client).or_default().push(sequence);
    }
    for (client, sequences) in per_client {
        let expected: Vec<u64> = (1..=sequences.len() as u64).collect();
        assert_eq!(sequences, expected, "{client}");
    }
}
