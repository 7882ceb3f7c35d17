//! Backup and restore of the embedded store, with the real binary: a backup taken while 8
//! writers write is consistent (every event up to its position, nothing half), restores only
//! into a new or empty store, and the service serves from the restored one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use registry_tests::{Backend, TestDatabase};

use crate::process::{
    collect, more_registered_under_load, registered_under_load, run_command, whole_feed, writers,
    Server,
};

/// `backed up N events, M clients, feed position P to …` → (N, M, P).
fn summary(line: &str) -> (i64, i64, i64) {
    let numbers: Vec<i64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .take(3)
        .map(|n| n.parse().unwrap())
        .collect();
    (numbers[0], numbers[1], numbers[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_under_load_restores_to_a_store_that_serves_it() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let server = Server::start(&database.url).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = writers(&server.base, "backup", stop.clone());
    registered_under_load(&server, "backup-", 16).await;

    let dir = database.sqlite_file.as_ref().unwrap().parent().unwrap();
    let backup = dir.join("backup.db");
    let backup_path = backup.to_str().unwrap().to_owned();
    let url = database.url.clone();
    let (status, stdout, stderr) = tokio::task::spawn_blocking({
        let backup_path = backup_path.clone();
        move || run_command(&url, &["backup", "--to", &backup_path])
    })
    .await
    .unwrap();
    assert!(status.success(), "{stdout}{stderr}");
    assert!(stdout.starts_with("backed up "), "{stdout}");
    let (events, clients, position) = summary(&stdout);
    more_registered_under_load(&server, "backup-", 8).await;
    stop.store(true, Ordering::SeqCst);
    let (statuses, acknowledged) = collect(load).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let live = whole_feed(&server).await;
    assert!(
        (live.len() as i64) > events,
        "writes went on after the backup ({} events then, {} now)",
        events,
        live.len()
    );
    assert!(events > 0 && clients == events && position == events);

    // A backup never overwrites; a restore never writes over a store with history.
    let (again, _, stderr) = run_command(&database.url, &["backup", "--to", &backup_path]);
    assert!(
        !again.success() && stderr.contains("exists already"),
        "{stderr}"
    );
    let (over, _, stderr) = run_command(&database.url, &["restore", "--from", &backup_path]);
    assert!(
        !over.success() && stderr.contains("a service is running"),
        "{stderr}"
    );
    let (garbage, _, stderr) = {
        let junk = dir.join("junk.db");
        std::fs::write(&junk, b"not a database at all").unwrap();
        let restored_url = format!("sqlite://{}", dir.join("never.db").display());
        run_command(
            &restored_url,
            &["restore", "--from", junk.to_str().unwrap()],
        )
    };
    assert!(!garbage.success(), "{stderr}");
    assert!(!dir.join("never.db").exists());

    // Restored into a new store: exactly the backup's events, in the same order, and the
    // service serves them.
    let restored_file = dir.join("restored").join("registry.db");
    let restored_url = format!("sqlite://{}", restored_file.display());
    let (status, stdout, stderr) = run_command(&restored_url, &["restore", "--from", &backup_path]);
    assert!(status.success(), "{stdout}{stderr}");
    assert_eq!(summary(&stdout), (events, clients, position), "{stdout}");
    drop(server);
    let (over, _, stderr) = run_command(&database.url, &["restore", "--from", &backup_path]);
    assert!(
        !over.success() && stderr.contains("restore only into a new or empty store"),
        "{stderr}"
    );
    // An existing store without history (migrated, nothing written) may be restored into.
    let empty_url = format!(
        "sqlite://{}",
        dir.join("empty").join("registry.db").display()
    );
    let (migrated, _, stderr) = run_command(&empty_url, &["migrate"]);
    assert!(migrated.success(), "{stderr}");
    let (status, stdout, stderr) = run_command(&empty_url, &["restore", "--from", &backup_path]);
    assert!(status.success(), "{stdout}{stderr}");
    assert_eq!(summary(&stdout), (events, clients, position), "{stdout}");
    let restored = Server::start(&restored_url).await;
    let feed = whole_feed(&restored).await;
    assert_eq!(feed.len() as i64, events);
    assert_eq!(
        feed,
        live[..feed.len()],
        "the backup is a prefix of the history"
    );
    for (client_id, _) in feed.iter().take(50) {
        let (status, client) = restored.get(&format!("/api/v1/clients/{client_id}")).await;
        assert_eq!(status, 200, "{client}");
    }
    let (status, list) = restored.get("/api/v1/clients?search=backup-&limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(list["total"].as_i64(), Some(clients), "{list}");
    // And the history it is a prefix of holds every acknowledged write.
    let history: std::collections::HashSet<&String> = live.iter().map(|(id, _)| id).collect();
    assert!(acknowledged.iter().all(|id| history.contains(id)));
}

/// PostgreSQL has its own tools: `pg_dump` (one snapshot, while the service writes) and
/// `pg_restore` into an empty database. Measured here: nothing needs rebuilding afterwards:
/// the restored service serves every dumped client, and a rebuild changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_dump_under_load_restores_with_nothing_to_rebuild() {
    let source = TestDatabase::create(Backend::Postgres).await;
    let server = Server::start(&source.url).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = writers(&server.base, "dumped", stop.clone());
    registered_under_load(&server, "dumped-", 16).await;
    let dump = std::env::temp_dir().join(format!("registry-{}.dump", uuid::Uuid::new_v4()));
    let dumped = tokio::task::spawn_blocking({
        let (url, dump) = (source.url.clone(), dump.clone());
        move || {
            std::process::Command::new(registry_tests::require_tool("pg_dump"))
                .args(["--format=custom", "--file"])
                .arg(&dump)
                .arg(&url)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        dumped.status.success(),
        "{}",
        String::from_utf8_lossy(&dumped.stderr)
    );
    more_registered_under_load(&server, "dumped-", 8).await;
    stop.store(true, Ordering::SeqCst);
    collect(load).await;
    let live = whole_feed(&server).await;

    let target = TestDatabase::create(Backend::Postgres).await;
    let restored = std::process::Command::new(registry_tests::require_tool("pg_restore"))
        .args(["--no-owner", "--exit-on-error", "--dbname", &target.url])
        .arg(&dump)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&dump);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );

    let restored = Server::start(&target.url).await;
    let feed = whole_feed(&restored).await;
    assert!(!feed.is_empty() && feed.len() < live.len());
    // One snapshot: the dumped events in their order, a part of the live history.
    let mut rest = live.iter();
    assert!(
        feed.iter().all(|event| rest.any(|e| e == event)),
        "the dump is a subsequence of the history"
    );
    let listed = |server: &Server| {
        let server = server.base.clone();
        async move {
            let (status, page) =
                crate::process::get_at(&server, "/api/v1/clients?limit=200&search=dumped-").await;
            assert_eq!(status, 200);
            page["total"].as_i64().unwrap()
        }
    };
    // The dump's snapshot may hold events its projection rows did not reflect yet (written
    // under load): the restored projector projects them after its start.
    registry_tests::eventually(
        20,
        "the restored service to list every dumped client",
        || {
            let listed = listed(&restored);
            let expected = feed.len() as i64;
            async move { listed.await == expected }
        },
    )
    .await;
    for (client_id, _) in &feed {
        let (status, _) = restored.get(&format!("/api/v1/clients/{client_id}")).await;
        assert_eq!(status, 200, "{client_id}");
    }
    let (status, _, stderr) = run_command(&target.url, &["projections", "rebuild"]);
    assert!(status.success(), "{stderr}");
    let (_, out, _) = run_command(&target.url, &["projections", "status"]);
    assert!(out.contains("lag 0"), "{out}");
    let after = Server::start(&target.url).await;
    assert_eq!(listed(&after).await, feed.len() as i64);
}
