//! Graceful drain, with the real binary: on SIGTERM `/readyz` fails at once, the service keeps
//! serving through the grace period, then refuses new connections, finishes the requests in
//! flight, stops its background work between batches and exits 0.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use registry_tests::{backend_tests, spa_client, Backend, TestDatabase};
use tokio::time::Instant;

use crate::process::{client, Server, TOKEN};

backend_tests!(sigterm_drains_without_losing_or_cutting_a_request);

/// What one request of a writer came to.
#[derive(Debug)]
struct Attempt {
    id: String,
    sent_at: Instant,
    /// The status, or the transport error.
    outcome: Result<u16, String>,
}

async fn sigterm_drains_without_losing_or_cutting_a_request(backend: Backend) {
    const GRACE: u64 = 2;
    let database = TestDatabase::create(backend).await;
    let mut server = Server::start_with(
        &database.url,
        &[
            ("REGISTRY_SHUTDOWN_GRACE_SECONDS", &GRACE.to_string()),
            ("REGISTRY_LOG", "info"),
        ],
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(Mutex::new(Vec::<Attempt>::new()));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let (url, stop, attempts) = (
            format!("{}/api/v1/clients", server.base),
            stop.clone(),
            attempts.clone(),
        );
        writers.spawn(async move {
            let http = client();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let id = format!("drain-{writer}-{i}");
                let sent_at = Instant::now();
                let outcome = http
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .json(&spa_client(&id, "Draining"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .map_err(|e| format!("{e:?}"));
                let refused = outcome.is_err();
                attempts.lock().unwrap().push(Attempt {
                    id,
                    sent_at,
                    outcome,
                });
                if refused {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
    }
    // A verification noted in memory (written every 5 s, and at shutdown).
    let http = client();
    let created = http
        .post(format!("{}/api/v1/clients", server.base))
        .bearer_auth(TOKEN)
        .json(&registry_tests::service_client(
            "drain-verified",
            Some("drain-secret-drain-secret-1"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let verified: serde_json::Value = http
        .post(format!(
            "{}/api/v1/clients/drain-verified/secret/verify",
            server.base
        ))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "client_secret": "drain-secret-drain-secret-1" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verified["valid"], true, "{verified}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let terminated_at = Instant::now();
    server.terminate();

    // Readiness fails at once, while requests are still served.
    let readyz = format!("{}/readyz", server.base);
    let mut not_ready = None;
    while terminated_at.elapsed() < Duration::from_secs(GRACE) {
        if let Ok(answer) = http.get(&readyz).send().await {
            if answer.status().as_u16() == 503 {
                not_ready = Some(terminated_at.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let not_ready = not_ready.expect("/readyz kept answering 200 during the grace period");
    assert!(not_ready < Duration::from_millis(1500), "{not_ready:?}");

    let status = server
        .exited_within(Duration::from_secs(GRACE + 8))
        .await
        .expect("the process did not exit after the grace period");
    let exited_after = terminated_at.elapsed();
    assert!(status.success(), "{status:?}\n{}", server.log());
    assert!(
        exited_after >= Duration::from_secs(GRACE),
        "{exited_after:?}"
    );
    stop.store(true, Ordering::SeqCst);
    while writers.join_next().await.is_some() {}

    let attempts = std::mem::take(&mut *attempts.lock().unwrap());
    let statuses: Vec<&Result<u16, String>> = attempts.iter().map(|a| &a.outcome).collect();
    assert!(
        attempts
            .iter()
            .all(|a| a.outcome.as_ref().map_or(true, |s| *s == 201)),
        "every answered write was accepted: {statuses:?}"
    );
    let served_in_grace = attempts
        .iter()
        .filter(|a| a.sent_at > terminated_at + Duration::from_millis(200))
        .filter(|a| a.outcome == Ok(201))
        .count();
    assert!(
        served_in_grace > 0,
        "writes went on during the grace period"
    );
    let log = server.log();
    for line in [
        "refusing new connections",
        "projector stopped between batches",
        "background task stopped",
        "client_registry: stopped",
    ] {
        assert!(log.contains(line), "{line:?} missing from:\n{log}");
    }

    // The verification time was written on the way out.
    let store = database.connect().await;
    let noted: i64 = match &store {
        registry_commands::Database::Postgres(pool) => sqlx::query_scalar(
            "select count(*) from client_last_authenticated where client_id = 'drain-verified'",
        )
        .fetch_one(pool)
        .await
        .unwrap(),
        registry_commands::Database::Sqlite(pool) => sqlx::query_scalar(
            "select count(*) from client_last_authenticated where client_id = 'drain-verified'",
        )
        .fetch_one(pool)
        .await
        .unwrap(),
    };
    assert_eq!(noted, 1, "the last verification time was lost at shutdown");
    store.close().await;

    // Restarted on the same database: every acknowledged write is there, and every request
    // that got no answer was never carried out (none was cut while being answered).
    let restarted = Server::start(&database.url).await;
    let mut checked = 0;
    for attempt in &attempts {
        let (status, _) = restarted
            .get(&format!("/api/v1/clients/{}", attempt.id))
            .await;
        match &attempt.outcome {
            Ok(201) => assert_eq!(status, 200, "{} was acknowledged", attempt.id),
            Err(error) => assert_eq!(
                status, 404,
                "{} failed in transport ({error}) but was written",
                attempt.id
            ),
            Ok(other) => panic!("unexpected {other}"),
        }
        checked += 1;
    }
    assert!(checked > 16);
    eprintln!(
        "drain: {} attempts, {} acknowledged, {} in the grace, {} transport errors",
        attempts.len(),
        attempts.iter().filter(|a| a.outcome == Ok(201)).count(),
        served_in_grace,
        attempts.iter().filter(|a| a.outcome.is_err()).count()
    );
}
