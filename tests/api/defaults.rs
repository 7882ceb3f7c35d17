//! The guide's default clients: registered by `system` the first time a store is set up,
//! never brought back after an admin deletes one.

use registry_tests::{backend_tests, Backend, TestApp};
use serde_json::json;

backend_tests!(
    default_clients_are_seeded_once,
    a_store_set_up_without_defaults_never_gets_them_later,
);

/// Seeding is decided when the store is first set up: turning it on for a later start of a
/// store created with it off registers nothing.
async fn a_store_set_up_without_defaults_never_gets_them_later(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    app.get_client("octo-cli")
        .await
        .assert_problem(404, "client_not_found");
    app.config.seed_default_clients = true;
    app.restart().await;
    app.get_client("octo-cli")
        .await
        .assert_problem(404, "client_not_found");
    assert!(app.events_of("octo-cli").await.is_empty());
}

async fn default_clients_are_seeded_once(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;

    let cli = app.get_client("octo-cli").await;
    cli.assert_status(200);
    let cli = cli.json();
    assert_eq!(
        cli["grant_types"],
        json!([
            "urn:ietf:params:oauth:grant-type:device_code",
            "refresh_token"
        ])
    );
    assert_eq!(cli["require_client_secret"], false);
    assert_eq!(cli["offline_access"], true);

    for id in ["octo-idenityServices-swagger", "octo-data-refinery-studio"] {
        let client = app.get_client(id).await.json();
        assert_eq!(client["grant_types"][0], "authorization_code", "{id}");
        assert_eq!(client["require_pkce"], true, "{id}");
        assert_eq!(client["require_client_secret"], false, "{id}");
        assert!(
            !client["redirect_uris"].as_array().unwrap().is_empty(),
            "{id}"
        );
    }
    let events = app.events_of("octo-cli").await;
    assert_eq!(events[0].1["actor"], "system");

    app.delete_client("octo-cli").await.assert_status(204);
    app.restart().await;
    app.get_client("octo-cli")
        .await
        .assert_problem(404, "client_not_found");
    app.get_client("octo-data-refinery-studio")
        .await
        .assert_status(200);
    assert_eq!(
        app.events_of("octo-cli").await.len(),
        2,
        "registered once, deleted once"
    );
    assert_eq!(
        app.events_of("octo-data-refinery-studio").await.len(),
        1,
        "a restart registers nothing again"
    );
}
