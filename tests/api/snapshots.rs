//! Long streams load from a snapshot of the write model plus the events after it; a snapshot
//! that cannot be read is ignored.

use registry_commands::Database;
use registry_tests::{backend_tests, spa_client, Backend, TestApp};

backend_tests!(long_streams_are_loaded_from_snapshots);

async fn snapshot_version(app: &TestApp) -> Option<i64> {
    const SQL: &str = "select version from aggregate_snapshots where aggregate_id = 'busy'";
    match &app.database {
        Database::Postgres(pool) => sqlx::query_scalar(SQL).fetch_optional(pool).await.unwrap(),
        Database::Sqlite(pool) => sqlx::query_scalar(SQL).fetch_optional(pool).await.unwrap(),
    }
}

async fn long_streams_are_loaded_from_snapshots(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("busy", "v1"))
        .await
        .assert_status(201);
    for version in 2..=230u64 {
        let response = app
            .update_client(
                "busy",
                &spa_client("busy", &format!("v{version}")),
                Some(version - 1),
            )
            .await;
        response.assert_status(200);
        assert_eq!(response.etag_version(), Some(version));
    }
    assert_eq!(snapshot_version(&app).await, Some(200));
    let client = app.get_client("busy").await;
    assert_eq!(client.json()["client_name"], "v230");

    // A snapshot that no longer reads as a client is ignored: the stream is replayed.
    const CORRUPT: &str = "update aggregate_snapshots set state = '{\"not\": \"a client\"}'";
    match &app.database {
        Database::Postgres(pool) => {
            sqlx::query(CORRUPT).execute(pool).await.unwrap();
        }
        Database::Sqlite(pool) => {
            sqlx::query(CORRUPT).execute(pool).await.unwrap();
        }
    }
    let response = app
        .update_client("busy", &spa_client("busy", "after"), Some(230))
        .await;
    response.assert_status(200);
    assert_eq!(response.etag_version(), Some(231));
    app.update_client("busy", &spa_client("busy", "stale"), Some(230))
        .await
        .assert_problem(412, "precondition_failed");
}
