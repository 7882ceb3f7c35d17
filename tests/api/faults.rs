//! Faults: clients that abandon requests at any moment, and what must hold afterwards.

use std::time::Duration;

use axum::http::Method;

use registry_commands::Database;
use registry_tests::{
    backend_tests, eventually, service_client, spa_client, Backend, Call, TestApp,
};

backend_tests!(
    abandoned_requests_leave_no_transaction_or_lock_behind,
    a_committed_write_keeps_its_secret_when_the_read_model_fails,
    metrics_never_wait_for_writers,
    nul_characters_never_reach_the_database,
    a_flood_of_verifications_is_refused_past_the_queue,
    a_dead_background_task_is_restarted_and_reported,
    exports_past_the_queue_are_refused,
);

/// A small xorshift generator: the test needs spread, not quality, and prints its seed.
struct Random(u64);

impl Random {
    fn seeded() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        eprintln!("abandon schedule seed: {seed}");
        Self(seed)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// One request of the mix that abandoned clients send: every kind of write, and the reads
/// that open transactions (exports).
fn request(app: &TestApp, kind: u64, i: u64) -> Call {
    let target = format!("target-{}", i % 8);
    let (method, path) = match kind {
        0 | 1 => (Method::POST, "/api/v1/clients".to_owned()),
        2 => (Method::PUT, format!("/api/v1/clients/{target}")),
        3 => (Method::POST, format!("/api/v1/clients/{target}/secret")),
        4 => (
            Method::GET,
            "/api/v1/clients/export.xlsx?search=abandon".to_owned(),
        ),
        5 => (Method::DELETE, format!("/api/v1/clients/gone-{i}")),
        _ => (
            Method::POST,
            format!("/api/v1/clients/{target}/secret/verify"),
        ),
    };
    let body = match kind {
        0 => spa_client(&format!("abandon-{i}"), &format!("Abandoned {i}")).to_string(),
        1 => service_client(&format!("abandon-{i}"), None).to_string(),
        2 => {
            let mut body = service_client(&target, None);
            body["client_name"] = format!("Renamed {i}").into();
            body.as_object_mut().map(|b| b.remove("client_secret"));
            body.to_string()
        }
        3 => "{}".to_owned(),
        6 => r#"{"client_secret": "not-the-secret-of-anything"}"#.to_owned(),
        _ => String::new(),
    };
    app.call(method, &path).body("application/json", body)
}

/// Whether any session of the app's database sits inside a transaction (PostgreSQL), or
/// another connection holds SQLite's write lock.
async fn transaction_left_open(app: &TestApp) -> bool {
    match &app.database {
        Database::Postgres(pool) => {
            let open: i64 = sqlx::query_scalar(
                "select count(*) from pg_stat_activity where datname = current_database() \
                 and pid <> pg_backend_pid() and state like 'idle in transaction%'",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            open > 0
        }
        Database::Sqlite(_) => {
            use sqlx::{ConnectOptions, Connection};
            let file = app.sqlite_file().unwrap();
            let mut connection = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(file)
                .busy_timeout(Duration::from_millis(200))
                .connect()
                .await
                .unwrap();
            let taken = sqlx::query("begin immediate")
                .execute(&mut connection)
                .await
                .is_ok();
            if taken {
                sqlx::query("rollback")
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
            connection.close().await.unwrap();
            !taken
        }
    }
}

/// Hundreds of requests abandoned by their clients at random moments of their life (before,
/// during and after the commit; during an export's read transaction); then writes succeed at
/// once and no connection is left inside a transaction.
async fn abandoned_requests_leave_no_transaction_or_lock_behind(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    for i in 0..8 {
        app.create_client(&service_client(&format!("target-{i}"), None))
            .await
            .assert_status(201);
    }
    let mut random = Random::seeded();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..400 {
        let kind = random.below(7);
        // Most cut within a few milliseconds (mid-flight), some never (complete normally).
        let cut = Duration::from_micros(random.below(30_000));
        let request = request(&app, kind, i);
        tasks.spawn(async move {
            let _ = tokio::time::timeout(cut, request.send()).await;
        });
        if i % 16 == 15 {
            tokio::time::sleep(Duration::from_millis(random.below(5))).await;
        }
    }
    while tasks.join_next().await.is_some() {}

    // Everything abandoned has finished or rolled back within moments (a generous bound: a
    // leaked transaction stays open for ever).
    eventually(20, "no transaction left open", || async {
        !transaction_left_open(&app).await
    })
    .await;

    // Writes succeed at once, through every pooled connection (16 at a time).
    let after = async {
        let mut writers = tokio::task::JoinSet::new();
        for i in 0..32 {
            let create = app
                .call(Method::POST, "/api/v1/clients")
                .json(&spa_client(&format!("after-{i}"), "After"));
            let mut renamed = service_client(&format!("target-{}", i % 8), None);
            renamed["client_name"] = format!("After {i}").into();
            renamed.as_object_mut().map(|b| b.remove("client_secret"));
            let update = app
                .call(Method::PUT, &format!("/api/v1/clients/target-{}", i % 8))
                .json(&renamed);
            writers.spawn(async move {
                let status = create.send().await.status;
                let updated = update.send().await.status;
                (status.as_u16(), updated.as_u16())
            });
        }
        let mut statuses = Vec::new();
        while let Some(result) = writers.join_next().await {
            statuses.push(result.unwrap());
        }
        statuses
    };
    let statuses = tokio::time::timeout(Duration::from_secs(60), after)
        .await
        .expect("writes after abandoned requests never finished: the store is wedged");
    for (created, updated) in &statuses {
        assert_eq!(*created, 201, "{statuses:?}");
        assert!(
            *updated == 200 || *updated == 409,
            "update: {updated} ({statuses:?})"
        );
    }
    let list = app
        .get_json("/api/v1/clients?search=after-&limit=100")
        .await;
    assert_eq!(list["total"], 32);
    // Work an abandoned request started may still be finishing: none stays open.
    eventually(20, "no transaction left open after the writes", || async {
        !transaction_left_open(&app).await
    })
    .await;
}

/// A write whose events committed is answered from the state it committed: when the read
/// model cannot be read or written afterwards, the caller still gets its one-time secret
/// (and the old secret, revoked by the rotation, is not the only one left to anybody).
async fn a_committed_write_keeps_its_secret_when_the_read_model_fails(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    app.execute("alter table client_detail rename to client_detail_away")
        .await;

    let created = app.create_client(&service_client("billing", None)).await;
    created.assert_status(201);
    let secret = created.json()["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created.json()["version"], 1);
    assert_eq!(created.etag_version(), Some(1));

    let rotated = app.rotate_secret("billing", None).await;
    rotated.assert_status(200);
    let new_secret = rotated.json()["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(rotated.json()["version"], 2);

    app.execute("alter table client_detail_away rename to client_detail")
        .await;
    let verify = |plaintext: String| {
        let app = &app;
        async move {
            app.request(
                axum::http::Method::POST,
                "/api/v1/clients/billing/secret/verify",
                Some(&serde_json::json!({ "client_secret": plaintext })),
                &[],
            )
            .await
            .json()["valid"]
                .as_bool()
                .unwrap()
        }
    };
    assert!(verify(new_secret).await, "the secret handed out works");
    assert!(!verify(secret).await, "the rotated-out one does not");
    // The projector repairs the read model.
    app.projector.drain().await.unwrap();
    assert_eq!(app.get_client("billing").await.etag_version(), Some(2));
}

/// `/metrics` is anonymous: it must never take the feed barrier's exclusive lock (which waits
/// for every writer in flight and makes every later writer wait behind it). A writer that
/// holds its share of the barrier (an insert not committed yet) does not delay a scrape.
async fn metrics_never_wait_for_writers(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let other = app.connect_again().await;
    // A writer in the middle of its transaction.
    let held = match &other {
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("select pg_advisory_xact_lock_shared(1380273993)")
                .execute(&mut *tx)
                .await
                .unwrap();
            Some(tx)
        }
        Database::Sqlite(_) => None,
    };
    let scrape = app.call(Method::GET, "/metrics").anonymous().send().await;
    scrape.assert_status(200);
    let text = String::from_utf8(scrape.body).unwrap();
    assert!(text.contains("registry_search_index_position "), "{text}");
    drop(held);
}

/// U+0000 cannot be stored in PostgreSQL text: an id or filter holding it must be answered
/// like any other unknown id or bad filter, never with a 500, on both backends.
async fn nul_characters_never_reach_the_database(backend: Backend) {
    use axum::http::Method;
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let mut put_body = service_client("a", None);
    put_body.as_object_mut().unwrap().remove("client_id");
    let verify_body = serde_json::json!({"client_secret": "0123456789abcdef0123"});
    let cases: Vec<(Method, &str, Option<&serde_json::Value>, u16)> = vec![
        (Method::GET, "/api/v1/clients/a%00b", None, 404),
        (Method::PUT, "/api/v1/clients/a%00b", Some(&put_body), 404),
        (Method::DELETE, "/api/v1/clients/a%00b", None, 404),
        (Method::GET, "/api/v1/clients/a%00b/history", None, 404),
        (Method::GET, "/api/v1/clients/a%00b/history.xlsx", None, 404),
        (
            Method::GET,
            "/api/v1/clients/a%00b?as_of_version=1",
            None,
            404,
        ),
        (Method::POST, "/api/v1/clients/a%00b/secret", None, 404),
        (
            Method::POST,
            "/api/v1/clients/a%00b/secret/verify",
            Some(&verify_body),
            200,
        ),
        (Method::GET, "/api/v1/events?client_id=a%00b", None, 400),
        (Method::GET, "/api/v1/events?actor=a%00b", None, 400),
        (Method::GET, "/api/v1/events?event_type=a%00b", None, 400),
        (Method::GET, "/api/v1/clients?search=a%00b", None, 400),
        (
            Method::GET,
            "/api/v1/clients/export.xlsx?search=a%00b",
            None,
            400,
        ),
        (
            Method::GET,
            "/api/v1/clients/export.pdf?search=%00",
            None,
            400,
        ),
    ];
    for (method, path, body, status) in cases {
        let response = app.request(method.clone(), path, body, &[]).await;
        assert_eq!(
            response.status.as_u16(),
            status,
            "{method} {path}: {}",
            String::from_utf8_lossy(&response.body)
        );
    }
    let mut hostile = spa_client("a\u{0}b", "Nul");
    let fields = app
        .create_client(&hostile)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(fields, ["client_id"]);
    hostile["client_id"] = "fine".into();
    hostile["client_name"] = "a\u{0}b".into();
    let fields = app
        .create_client(&hostile)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(fields, ["client_name"]);
}

/// The argon2 queue is bounded: past it, secret operations are refused at once with 503 and
/// `Retry-After`, never queued for minutes; an over-long presented secret is refused before
/// any hashing.
async fn a_flood_of_verifications_is_refused_past_the_queue(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.seed_default_clients = false;
        c.hash_concurrency = Some(1);
        c.hash_queue = Some(1);
    })
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let request = app
            .call(Method::POST, "/api/v1/clients/nobody/secret/verify")
            .body(
                "application/json",
                r#"{"client_secret": "0123456789abcdef"}"#,
            );
        tasks.spawn(async move {
            let response = request.send().await;
            (
                response.status.as_u16(),
                response.header("retry-after").map(str::to_owned),
            )
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.unwrap());
    }
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 503).collect();
    assert!(!refused.is_empty(), "{answers:?}");
    assert!(refused
        .iter()
        .all(|(_, retry)| retry.as_deref() == Some("1")));
    assert!(
        answers.iter().all(|(s, _)| *s == 200 || *s == 503),
        "{answers:?}"
    );
    assert!(answers.iter().any(|(s, _)| *s == 200));

    let long = serde_json::json!({ "client_secret": "x".repeat(257) });
    let fields = app
        .request(
            axum::http::Method::POST,
            "/api/v1/clients/nobody/secret/verify",
            Some(&long),
            &[],
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(fields, ["client_secret"]);
}

/// A background task that dies is restarted, counted in `/metrics`, and `/readyz` says so
/// while it is down.
async fn a_dead_background_task_is_restarted_and_reported(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let probe = |path: &'static str| {
        let app = &app;
        async move { app.call(Method::GET, path).anonymous().send().await }
    };
    probe("/readyz").await.assert_status(200);
    let handle = app.supervisor.supervise(
        "doomed",
        || 0,
        || async {
            panic!("a background task that always fails");
        },
    );
    eventually(10, "the dead task to be reported", || async {
        let ready = probe("/readyz").await;
        ready.status == 503 && ready.json()["detail"].as_str().unwrap().contains("doomed")
    })
    .await;
    eventually(10, "its restarts to be counted", || async {
        let text = String::from_utf8(probe("/metrics").await.body).unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("registry_background_task_restarts_total{task=\"doomed\"} ")
            })
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|restarts| restarts >= 1)
    })
    .await;
    handle.abort();
}

/// Exports are bounded: past the running ones and the queue, a caller is refused at once with
/// 503 and `Retry-After` (any `clients:read` caller may ask for one).
async fn exports_past_the_queue_are_refused(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.export_concurrency = 1;
        c.export_queue = 0;
    })
    .await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let request = app
            .call(Method::GET, "/api/v1/clients/export.pdf")
            .header("content-type", "application/json");
        tasks.spawn(async move {
            let response = request.send().await;
            (
                response.status.as_u16(),
                response.header("retry-after").is_some(),
            )
        });
    }
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.unwrap());
    }
    assert!(
        answers.iter().all(|(s, _)| *s == 200 || *s == 503),
        "{answers:?}"
    );
    assert!(answers.iter().any(|(s, _)| *s == 200), "{answers:?}");
    assert!(
        answers.iter().any(|(s, retry)| *s == 503 && *retry),
        "{answers:?}"
    );
    // And once they are done, the next one runs.
    app.request(
        axum::http::Method::GET,
        "/api/v1/clients/export.xlsx",
        None,
        &[],
    )
    .await
    .assert_status(200);
}

/// On SQLite, writes queue at the writer gate. A rotation whose caller gave up while it
/// waited there must not be written later (the caller never saw the new secret; the old one
/// would be revoked): nothing is written for a caller that is gone before its turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_abandoned_while_queued_is_not_written_later() {
    use sqlx::{ConnectOptions, Connection};
    let app = TestApp::spawn_with(Backend::Sqlite, |c| c.seed_default_clients = false).await;
    for id in ["svc", "other"] {
        app.create_client(&service_client(id, None))
            .await
            .assert_status(201);
    }
    // Another connection holds the write lock: the next writer waits inside the gate.
    let mut blocker = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(app.sqlite_file().unwrap())
        .connect()
        .await
        .unwrap();
    sqlx::query("begin immediate")
        .execute(&mut blocker)
        .await
        .unwrap();
    let patch = app.call(Method::PATCH, "/api/v1/clients/svc").body(
        "application/merge-patch+json",
        r#"{"client_name": "Renamed"}"#,
    );
    let first = tokio::spawn(async move { patch.send().await.status.as_u16() });
    // The patch holds the writer gate, waiting for SQLite's write lock.
    registry_tests::eventually(10, "the patch to take the writer gate", || {
        let held = app.commands.writer_busy();
        async move { held }
    })
    .await;
    // The rotation's caller gives up while it waits for its turn.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(500),
        app.call(Method::POST, "/api/v1/clients/other/secret")
            .body("application/json", "")
            .send(),
    )
    .await;
    assert!(abandoned.is_err(), "the rotation was still queued");
    sqlx::query("rollback").execute(&mut blocker).await.unwrap();
    blocker.close().await.unwrap();
    assert_eq!(first.await.unwrap(), 200);
    // Whatever was queued has had its turn by now.
    app.create_client(&spa_client("after", "After"))
        .await
        .assert_status(201);
    let events: Vec<String> = app
        .events_of("svc")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(events, ["ClientRegistered", "ClientUpdated"]);
    let events: Vec<String> = app
        .events_of("other")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        events,
        ["ClientRegistered"],
        "no rotation written after its caller left"
    );
}

/// Migrations wait for another process's migration however long it takes: the service's 5 s
/// lock timeout must not apply to them (a process started beside one that migrates would
/// fail to start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_wait_past_the_lock_timeout() {
    let app = TestApp::spawn_with(Backend::Postgres, |c| c.seed_default_clients = false).await;
    let Database::Postgres(pool) = app.connect_again().await else {
        unreachable!()
    };
    // Another process migrating: it holds the migrations table for 6 s.
    let mut other = pool.begin().await.unwrap();
    sqlx::query("lock table _sqlx_migrations in access exclusive mode")
        .execute(&mut *other)
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(6)).await;
        other.rollback().await.unwrap();
    });
    app.database.migrate().await.expect("waits, then migrates");
    release.await.unwrap();
}
