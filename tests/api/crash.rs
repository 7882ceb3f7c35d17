//! Process-level faults, with the real binary: SIGKILL mid-load, PostgreSQL dropping every
//! connection. Bounded in time; the only timing bounds are the generous ones of recovery.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use registry_tests::{eventually, postgres_admin_url, spa_client, Backend, TestDatabase};
use sqlx::Connection;

use crate::process::{client, collect, registered_under_load, whole_feed, writers, Server, TOKEN};

async fn killed_mid_load_loses_no_acknowledged_write(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut server = Server::start(&database.url).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = writers(&server.base, "crash", stop.clone());
    registered_under_load(&server, "crash-", 40).await;
    server.kill();
    stop.store(true, Ordering::SeqCst);
    let (statuses, acknowledged) = collect(load).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert!(
        acknowledged.len() > 8,
        "the load ran: {}",
        acknowledged.len()
    );

    let server = Server::start(&database.url).await;
    let feed = whole_feed(&server).await;
    let mut registered: Vec<&str> = feed
        .iter()
        .filter(|(_, kind)| kind == "ClientRegistered")
        .map(|(id, _)| id.as_str())
        .collect();
    let count = registered.len();
    registered.sort_unstable();
    registered.dedup();
    assert_eq!(
        registered.len(),
        count,
        "each client appears once in the feed"
    );
    for id in &acknowledged {
        assert!(
            registered.contains(&id.as_str()),
            "{id} acknowledged, not in the feed"
        );
    }
    // Nothing half-written: every client the feed has is readable, and search finds them all
    // once the restarted projector has caught up.
    for id in &registered {
        let (status, _) = server.get(&format!("/api/v1/clients/{id}")).await;
        assert_eq!(status, 200, "{id}");
    }
    eventually(20, "search to find every committed client", || async {
        server.get("/api/v1/clients?search=crash-&limit=1").await.1["total"]
            == registered.len() as u64
    })
    .await;
    // The sealer was killed too (perhaps mid-batch): the restarted one goes on from the last
    // stored leaf. Every event sealed once, in feed order, and the log recomputes to the
    // signed root.
    let events = feed.len() as u64;
    eventually(30, "the sealer to seal every event", || async {
        server.get("/api/v1/audit/tree-heads").await.1["tree_size"] == events
    })
    .await;
    let (_, head) = server.get("/api/v1/audit/tree-heads").await;
    let (status, log) = server.get_text("/api/v1/events/export.jsonl").await;
    assert_eq!(status, 200);
    let mut frontier = registry_projections::seal::merkle::Frontier::default();
    for (index, line) in log.lines().enumerate() {
        let line: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(line["leaf_index"], index, "no leaf twice, none skipped");
        let hash = registry_projections::seal::leaf_hash_of(&line["event"]);
        assert_eq!(
            registry_projections::seal::merkle::hex(&hash),
            line["leaf_hash"]
        );
        frontier.push(hash);
    }
    assert_eq!(frontier.size(), events);
    assert_eq!(
        registry_projections::seal::merkle::hex(&frontier.root()),
        head["root_hash"]
    );
}

mod killed_mid_load_loses_no_acknowledged_write {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::killed_mid_load_loses_no_acknowledged_write(super::Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::killed_mid_load_loses_no_acknowledged_write(super::Backend::Sqlite).await;
    }
}

/// PostgreSQL ends every session of the service and refuses new ones for a moment (a restart,
/// a failover): writes answer 503, never 500; the service recovers by itself; the projector
/// takes its lease again and the search index follows again; `/readyz` is 200 again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dropping_every_connection_is_503_then_recovers() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let name = database.postgres_name().unwrap().to_owned();
    let server = Server::start(&database.url).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = writers(&server.base, "outage", stop.clone());
    registered_under_load(&server, "outage-", 16).await;

    let mut admin = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .unwrap();
    sqlx::query(&format!("alter database {name} allow_connections false"))
        .execute(&mut admin)
        .await
        .unwrap();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1",
    )
    .bind(&name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(terminated.len() > 1, "the service's sessions were ended");
    eventually(20, "not ready while the database is away", || async {
        server.get("/readyz").await.0 == 503
    })
    .await;
    // The outage lasts until a write has been refused (the writers may all be between two
    // requests when the sessions end): a 503, never a 500.
    let http = client();
    let url = format!("{}/api/v1/clients", server.base);
    eventually(20, "a write refused while the database is away", || async {
        let probe = spa_client(&format!("refused-{}", uuid::Uuid::new_v4()), "Refused");
        let answer = http.post(&url).bearer_auth(TOKEN).json(&probe).send().await;
        let status = answer.map_or(0, |r| r.status().as_u16());
        assert_ne!(status, 500, "a write during the outage answered 500");
        status == 503
    })
    .await;
    sqlx::query(&format!("alter database {name} allow_connections true"))
        .execute(&mut admin)
        .await
        .unwrap();

    eventually(20, "writes to succeed again", || async {
        http.post(&url)
            .bearer_auth(TOKEN)
            .json(&spa_client(
                &format!("probe-{}", uuid::Uuid::new_v4()),
                "Probe",
            ))
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 201)
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let (statuses, _) = collect(load).await;
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 503),
        "503 during the outage, never 500: {statuses:?}"
    );

    server
        .get("/api/v1/clients?limit=1")
        .await
        .0
        .eq(&200)
        .then_some(())
        .unwrap();
    eventually(20, "the service to be ready again", || async {
        server.get("/readyz").await.0 == 200
    })
    .await;
    eventually(20, "the projector to lead and catch up again", || async {
        server.metric("registry_projector_leader").await == Some(1)
            && server.metric("registry_projector_lag_events").await == Some(0)
    })
    .await;
    eventually(
        20,
        "the search index to follow to the head again",
        || async { server.metric("registry_search_index_lag_positions").await == Some(0) },
    )
    .await;
}
