//! The read models survive a crash between commit and projection; one projector at a time;
//! a rebuild ends with the same rows.

use axum::http::Method;
use std::sync::Arc;

use registry_commands::CommandContext;
use registry_domain::ClientSettingsInput;
use registry_projections::{Projector, ReadStore};
use registry_tests::{backend_tests, eventually, service_client, spa_client, Backend, TestApp};
use serde_json::json;

backend_tests!(
    events_committed_without_projection_appear_once_after_the_projector_runs,
    background_projector_catches_up_by_itself,
    rebuild_ends_with_the_same_rows,
    a_poisoned_event_is_parked_and_projection_goes_on,
    retry_projects_a_parked_event_that_can_be_applied,
    writes_go_on_during_a_rebuild,
    a_rebuild_reaches_every_search_index_and_runs_alone,
    one_projector_at_a_time_and_another_takes_over,
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
    let response = app.call(Method::GET, "/metrics").anonymous().send().await;
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

// One projector at a time across processes sharing a store: on PostgreSQL a session lock,
// on SQLite a lock on a file beside the store; either is released when its holder goes.
async fn one_projector_at_a_time_and_another_takes_over(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let other_pool = app.connect_again().await;
    let first = Arc::new(Projector::new(app.reads()));
    let second = Arc::new(Projector::new(client_registry::read_store(&other_pool)));
    let first_task = tokio::spawn(first.clone().run());
    eventually(10, "the first projector to lead", || async {
        first.is_leader()
    })
    .await;
    let second_task = tokio::spawn(second.clone().run());
    // The second keeps trying (every second) and must not get the lease.
    let reads: Arc<dyn ReadStore> = client_registry::read_store(&other_pool);
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

/// One malformed row in `events` (a ClientRegistered nobody can decode), and a valid event
/// after it for the same client: both are parked, the projector goes on, every other
/// process's search index still sees new clients, the feed still answers, and status,
/// metrics and retry report them.
async fn a_poisoned_event_is_parked_and_projection_goes_on(backend: Backend) {
    let first = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let second = first.second_process().await;
    first
        .execute(
            "insert into events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) values ('Client', 'poison', 1, \
             'ClientRegistered', '1.0', '{\"ClientRegistered\": {\"nonsense\": 1}}', \
             '{\"actor\": \"intruder\"}')",
        )
        .await;
    first
        .execute(
            "insert into events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) values ('Client', 'poison', 2, \
             'ClientDeleted', '1.0', '{\"ClientDeleted\": {}}', '{\"actor\": \"intruder\"}')",
        )
        .await;
    if backend == Backend::Sqlite {
        // SQLite's text columns take anything: a row that is not JSON at all.
        first
            .execute(
                "insert into events (aggregate_type, aggregate_id, sequence, event_type, \
                 event_version, payload, metadata) values ('Client', 'garbage', 1, \
                 'ClientRegistered', '1.0', 'not json', 'not json either')",
            )
            .await;
    }
    let poisoned: usize = if backend == Backend::Sqlite { 3 } else { 2 };
    first
        .create_client(&spa_client("after-poison", "After the poison"))
        .await
        .assert_status(201);

    let batch_read = first.projector.drain().await.unwrap();
    assert_eq!(
        batch_read,
        poisoned as u64 + 1,
        "the projector read past the poison"
    );
    let parked = first.reads().parked().await.unwrap();
    let parked_ids: Vec<(&str, i64)> = parked
        .iter()
        .map(|p| (p.client_id.as_str(), p.sequence))
        .collect();
    assert_eq!(parked_ids[..2], [("poison", 1), ("poison", 2)]);
    assert_eq!(parked_ids.len(), poisoned);
    assert!(
        parked[0].error.contains("cannot be decoded"),
        "{}",
        parked[0].error
    );
    assert_eq!(
        metric(&first, "registry_projection_parked_events").await,
        poisoned as u64
    );
    assert_eq!(metric(&first, "registry_projector_lag_events").await, 0);

    // The other process's search index follows past it.
    let reads = second.reads();
    eventually(
        10,
        "the other process to index the later client",
        || async {
            second.search.follow_once(reads.as_ref()).await.unwrap();
            second.get_json("/api/v1/clients?search=after-poison").await["total"] == 1
        },
    )
    .await;

    // The feed shows the row as unreadable and goes on.
    let feed = first.get_json("/api/v1/events?after=0&limit=10").await;
    let events = feed["events"].as_array().unwrap();
    assert_eq!(events.len(), poisoned + 1, "{feed}");
    assert_eq!(events[0]["client_id"], "poison");
    assert_eq!(events[0]["actor"], "intruder");
    assert!(events[0]["unreadable"].is_string(), "{}", events[0]);
    assert!(events[0]["data"].is_null());
    assert!(events[1].get("unreadable").is_none());
    assert_eq!(events[poisoned]["client_id"], "after-poison");
    let by_actor = first.get_json("/api/v1/events?actor=intruder").await;
    assert_eq!(
        by_actor["events"].as_array().unwrap().len(),
        2,
        "filters pass bad rows"
    );

    // Retrying cannot read it either: it stays parked, tried twice.
    let report = first.reads().retry_parked().await.unwrap();
    assert_eq!((report.resolved, report.still_parked), (0, poisoned as u64));
    assert!(first
        .reads()
        .parked()
        .await
        .unwrap()
        .iter()
        .all(|p| p.attempts == 2));

    // A rebuild parks it again and ends with the same rows.
    let rows = first.read_model_rows().await;
    first.reads().rebuild().await.unwrap();
    assert_eq!(first.read_model_rows().await, rows);
    assert_eq!(first.reads().parked().await.unwrap().len(), poisoned);
}

/// A parked event that can be applied after all (the failure was passing) is projected by
/// `retry`, and is no longer parked.
async fn retry_projects_a_parked_event_that_can_be_applied(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let commands = app.commands_without_projection();
    commands
        .register(&context(), "late", public_settings("Late"), None)
        .await
        .unwrap();
    // Parked as if it had failed, and the checkpoint past it.
    let position = app.get_json("/api/v1/events?client_id=late").await["events"][0]["position"]
        .as_i64()
        .unwrap();
    app.execute(&format!(
        "insert into projection_failures (projection, position, client_id, sequence, \
         event_type, error) values ('clients', {position}, 'late', 1, 'ClientRegistered', \
         'database went away')"
    ))
    .await;
    app.execute(&format!(
        "insert into projection_checkpoints (projection, position) values ('clients', \
         {position}) on conflict (projection) do update set position = {position}"
    ))
    .await;
    app.get_client("late")
        .await
        .assert_problem(404, "client_not_found");

    let report = app.reads().retry_parked().await.unwrap();
    assert_eq!((report.resolved, report.still_parked), (1, 0));
    app.get_client("late").await.assert_status(200);
    assert!(app.reads().parked().await.unwrap().is_empty());
}

/// Writes keep being acknowledged while `projections rebuild` replays 8,000 events (four
/// batches), and the
/// rebuilt read model reflects every one of them (a second rebuild changes nothing).
async fn writes_go_on_during_a_rebuild(backend: Backend) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let series = match backend {
        Backend::Postgres => "select g as n from generate_series(1, 4000) g",
        Backend::Sqlite => {
            "with recursive c(n) as (select 1 union all select n + 1 from c where n < 4000) \
             select n from c"
        }
    };
    let (object, pad) = match backend {
        Backend::Postgres => ("jsonb_build_object", "lpad(n::text, 5, '0')"),
        Backend::Sqlite => ("json_object", "printf('%05d', n)"),
    };
    let settings = r#"{"client_name":"Bulk","client_uri":null,"require_client_secret":false,"enabled":true,"offline_access":false,"require_pkce":true,"grant_types":["authorization_code"],"redirect_uris":["https://bulk.example.com/cb"],"post_logout_redirect_uris":[],"allowed_cors_origins":[],"allowed_scopes":["openid"]}"#;
    for (sequence, event) in [
        (1, format!("{object}('ClientRegistered', {object}('client_id', 'bulk-' || {pad}, 'settings', cast('{settings}' as {})))",
            if backend == Backend::Postgres { "jsonb" } else { "text" })),
        (2, format!("{object}('ClientUpdated', {object}('changes', {object}('client_name', 'Bulk ' || n)))")),
    ] {
        let event_type = if sequence == 1 { "ClientRegistered" } else { "ClientUpdated" };
        let version = if sequence == 1 { "1.0" } else { "1.1" };
        let payload = if backend == Backend::Sqlite {
            event.replace("cast('{", "json('{").replace("}' as text)", "}')")
        } else {
            event
        };
        app.execute(&format!(
            "insert into events (aggregate_type, aggregate_id, sequence, event_type, \
             event_version, payload, metadata) select 'Client', 'bulk-' || {pad}, {sequence}, \
             '{event_type}', '{version}', {payload}, {object}('actor', 'bulk', \
             'recorded_at', '2026-11-01T00:00:00.000000Z') from ({series}) s order by n"
        ))
        .await;
    }
    app.projector.drain().await.unwrap();
    assert_eq!(
        app.get_json("/api/v1/clients?search=bulk-&limit=1").await["total"],
        4000
    );

    let stop = Arc::new(AtomicBool::new(false));
    let rebuilding = Arc::new(AtomicBool::new(false));
    let during = Arc::new(AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let api = app.api();
        let (stop, rebuilding, during) = (stop.clone(), rebuilding.clone(), during.clone());
        writers.spawn(async move {
            let mut statuses = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let id = format!("bulk-{:05}", 1 + (writer * 500 + i) % 4000);
                let patch = json!({"client_name": format!("w{writer} {i}")}).to_string();
                let request = api.call(Method::PATCH, &format!("/api/v1/clients/{id}"));
                let request = request.body("application/merge-patch+json", patch);
                let status = request.send().await.status.as_u16();
                if status == 200 && rebuilding.load(Ordering::SeqCst) {
                    during.fetch_add(1, Ordering::SeqCst);
                }
                statuses.push(status);
            }
            statuses
        });
    }
    rebuilding.store(true, Ordering::SeqCst);
    let replayed = app.reads().rebuild().await.unwrap();
    rebuilding.store(false, Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    let mut statuses = Vec::new();
    while let Some(done) = writers.join_next().await {
        statuses.extend(done.unwrap());
    }
    assert!(replayed >= 8000);
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "no write failed"
    );
    assert!(
        during.load(Ordering::SeqCst) >= 20,
        "writes were acknowledged while the rebuild ran ({} of {})",
        during.load(Ordering::SeqCst),
        statuses.len()
    );
    app.projector.drain().await.unwrap();
    let rows = app.read_model_rows().await;
    app.reads().rebuild().await.unwrap();
    assert_eq!(
        app.read_model_rows().await,
        rows,
        "the rebuilt model reflects every write made during the rebuild"
    );
}

/// A rebuild replaces rows that had gone wrong, and every process's search index loads the
/// new tables (the swap moves the read model's generation, which the followers watch); while
/// one rebuild runs, another is refused.
async fn a_rebuild_reaches_every_search_index_and_runs_alone(backend: Backend) {
    use registry_projections::ReadError;
    let first = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    first
        .create_client(&spa_client("drifted", "Right name"))
        .await
        .assert_status(201);
    // A read model that went wrong (a bug, a hand edit): the list says otherwise.
    first
        .execute("update client_list set client_name = 'Wrong name', search_text = 'drifted\u{1f}wrong name' where client_id = 'drifted'")
        .await;
    let second = first.second_process().await;
    let found = |app: &TestApp, term: &str| {
        let query =
            registry_projections::ListQuery::parse(Some(term), None, None, None, None).unwrap();
        app.search.search(&query).total
    };
    assert_eq!(
        found(&second, "wrong name"),
        1,
        "loaded from the drifted rows"
    );

    // Another rebuild holds the lock: this one is refused, and changes nothing.
    enum Held {
        Postgres(sqlx::PgConnection),
        Sqlite(std::fs::File),
    }
    let held = match &first.database {
        registry_commands::Database::Postgres(pool) => {
            let mut connection = pool.acquire().await.unwrap().detach();
            let taken: bool = sqlx::query_scalar("select pg_try_advisory_lock(1380271954)")
                .fetch_one(&mut connection)
                .await
                .unwrap();
            assert!(taken);
            Held::Postgres(connection)
        }
        registry_commands::Database::Sqlite(_) => {
            let mut path = first.sqlite_file().unwrap().as_os_str().to_owned();
            path.push(".rebuild-lock");
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .unwrap();
            file.try_lock().unwrap();
            Held::Sqlite(file)
        }
    };
    assert!(matches!(
        first.reads().rebuild().await,
        Err(ReadError::RebuildRunning)
    ));
    // Released for certain before the next rebuild (dropping a connection frees its lock
    // only when the server notices the disconnect, a moment later).
    match held {
        Held::Postgres(mut connection) => {
            let released: bool = sqlx::query_scalar("select pg_advisory_unlock(1380271954)")
                .fetch_one(&mut connection)
                .await
                .unwrap();
            assert!(released);
            sqlx::Connection::close(connection).await.unwrap();
        }
        Held::Sqlite(file) => drop(file),
    }

    first.reads().rebuild().await.unwrap();
    assert_eq!(
        first.get_json("/api/v1/clients/drifted").await["client_name"],
        "Right name"
    );
    let reads = second.reads();
    eventually(
        10,
        "the other process's index to load the rebuilt tables",
        || async {
            second.search.follow_once(reads.as_ref()).await.unwrap();
            found(&second, "right name") == 1 && found(&second, "wrong name") == 0
        },
    )
    .await;
}
