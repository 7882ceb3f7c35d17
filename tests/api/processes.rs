//! Several processes on one database: what each one's read models see, and when.

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
