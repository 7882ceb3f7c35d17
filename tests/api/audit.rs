//! Auditors: a client's history, the client as it was, the global feed.

use axum::http::Method;
use registry_tests::{backend_tests, service_client, spa_client, Backend, TestApp};
use serde_json::{json, Value};

backend_tests!(
    history_lists_every_change_with_before_and_after,
    as_of_version_and_time_replay_the_client,
    feed_pages_and_filters,
    bad_feed_and_as_of_parameters_are_named,
);

fn changes(entry: &Value) -> Vec<(String, Value, Value)> {
    entry["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_owned(),
                c["before"].clone(),
                c["after"].clone(),
            )
        })
        .collect()
}

async fn history_lists_every_change_with_before_and_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_client(&service_client("svc", None)).await.json();
    let first_secret = created["secrets"][0]["secret_id"].clone();
    let mut renamed = service_client("svc", None);
    renamed["client_name"] = json!("Billing (renamed)");
    renamed["allowed_scopes"] = json!(["octo_api", "octo_api.read_only"]);
    app.request(
        Method::PUT,
        "/api/v1/clients/svc",
        Some(&renamed),
        &[("x-change-reason", "JIRA-7 read-only scope")],
    )
    .await
    .assert_status(200);
    let rotated = app.rotate_secret("svc", None).await.json();
    app.delete_client("svc").await.assert_status(204);
    app.create_client(&spa_client("svc", "Second life"))
        .await
        .assert_status(201);

    let history = app.get_json("/api/v1/clients/svc/history").await;
    assert_eq!(history["client_id"], "svc");
    let events = history["events"].as_array().unwrap();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ClientRegistered",
            "ClientUpdated",
            "ClientSecretRotated",
            "ClientDeleted",
            "ClientRegistered"
        ]
    );
    let sequences: Vec<u64> = events
        .iter()
        .map(|e| e["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);
    let positions: Vec<i64> = events
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    for event in events {
        assert_eq!(event["actor"], "admin");
        let version = match event["event_type"].as_str() {
            Some("ClientUpdated") => "1.3",
            Some("ClientRegistered") => "1.2",
            Some("ClientSecretRotated") => "1.2",
            _ => "1.0",
        };
        assert_eq!(event["event_version"], version);
        assert!(event["request_id"].as_str().is_some_and(|r| !r.is_empty()));
        assert!(event["recorded_at"].is_string() && event["event_id"].is_string());
    }

    // Registration: every field it set, from nothing.
    let registered = changes(&events[0]);
    assert!(registered.iter().all(|(_, before, _)| before.is_null()));
    let fields: Vec<&str> = registered.iter().map(|c| c.0.as_str()).collect();
    for field in [
        "client_id",
        "client_name",
        "grant_types",
        "allowed_scopes",
        "secrets",
        "enabled",
    ] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    assert!(
        !fields.contains(&"redirect_uris"),
        "unset lists are not listed"
    );

    // Update: only what changed, with the reason given.
    assert_eq!(
        changes(&events[1]),
        [
            (
                "client_name".to_owned(),
                json!("Billing worker"),
                json!("Billing (renamed)")
            ),
            (
                "allowed_scopes".to_owned(),
                json!(["octo_api"]),
                json!(["octo_api", "octo_api.read_only"])
            ),
        ]
    );
    assert_eq!(events[1]["reason"], "JIRA-7 read-only scope");
    assert!(events[0]["reason"].is_null());

    // Rotation: secret ids only.
    assert_eq!(
        changes(&events[2]),
        [(
            "secrets".to_owned(),
            json!([first_secret]),
            json!([rotated["secret_id"]])
        )]
    );
    assert_eq!(
        changes(&events[3]),
        [("deleted".to_owned(), json!(false), json!(true))]
    );
    // The second lifetime starts from nothing again.
    let second = changes(&events[4]);
    assert!(second.contains(&("client_name".to_owned(), Value::Null, json!("Second life"))));
    assert!(
        !history.to_string().contains("argon2"),
        "no hash in a history"
    );

    app.request(Method::GET, "/api/v1/clients/never/history", None, &[])
        .await
        .assert_problem(404, "client_not_found");
}

async fn as_of_version_and_time_replay_the_client(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut states = Vec::new();
    let created = app.create_client(&spa_client("app", "v1")).await;
    created.assert_status(201);
    states.push(created.json());
    for name in ["v2", "v3"] {
        let updated = app
            .update_client("app", &spa_client("app", name), None)
            .await;
        updated.assert_status(200);
        states.push(updated.json());
    }
    app.delete_client("app").await.assert_status(204);

    for (i, state) in states.iter().enumerate() {
        let version = i + 1;
        let response = app
            .request(
                Method::GET,
                &format!("/api/v1/clients/app?as_of_version={version}"),
                None,
                &[],
            )
            .await;
        response.assert_status(200);
        assert_eq!(response.etag_version(), Some(version as u64));
        assert_eq!(
            &response.json(),
            state,
            "the client exactly as version {version} left it"
        );

        let at = state["updated_at"].as_str().unwrap().replace('+', "%2B");
        let by_time = app
            .get_json(&format!("/api/v1/clients/app?as_of={at}"))
            .await;
        assert_eq!(&by_time, state, "the client as it was at {at}");
    }
    app.request(
        Method::GET,
        "/api/v1/clients/app?as_of_version=4",
        None,
        &[],
    )
    .await
    .assert_problem(410, "client_deleted");
    app.request(
        Method::GET,
        "/api/v1/clients/app?as_of_version=0",
        None,
        &[],
    )
    .await
    .assert_problem(404, "client_not_found");
    app.request(
        Method::GET,
        "/api/v1/clients/app?as_of=2000-01-01T00:00:00Z",
        None,
        &[],
    )
    .await
    .assert_problem(404, "client_not_found");
    let later = (chrono::Utc::now() + chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    app.request(
        Method::GET,
        &format!("/api/v1/clients/app?as_of={later}"),
        None,
        &[],
    )
    .await
    .assert_problem(410, "client_deleted");
    app.get_client("app")
        .await
        .assert_problem(404, "client_not_found");
}

async fn feed_pages_and_filters(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    for i in 0..5 {
        app.create_client(&service_client(&format!("svc-{i}"), None))
            .await
            .assert_status(201);
    }
    app.rotate_secret("svc-1", None).await.assert_status(200);
    app.delete_client("svc-2").await.assert_status(204);

    // All events, two at a time.
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .get_json(&format!("/api/v1/events?after={after}&limit=2"))
            .await;
        let events = page["events"].as_array().unwrap().clone();
        let next = page["next_after"].as_i64().unwrap();
        if events.is_empty() {
            assert_eq!(
                next, after,
                "an empty page does not move the cursor backwards"
            );
            break;
        }
        assert!(next > after);
        after = next;
        seen.extend(events);
    }
    assert_eq!(seen.len(), 7);
    let positions: Vec<i64> = seen
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    let first = &seen[0];
    assert_eq!(first["client_id"], "svc-0");
    assert_eq!(first["event_type"], "ClientRegistered");
    assert_eq!(first["sequence"], 1);
    assert_eq!(first["actor"], "admin");
    assert_eq!(first["data"]["settings"]["client_name"], "Billing worker");
    assert!(first["data"]["secret"]["secret_id"].is_string());
    let all = Value::Array(seen.clone()).to_string();
    assert!(
        !all.contains("argon2") && !all.contains("\"hash\""),
        "no secret hash in the feed"
    );

    let only = |query: &str| {
        let path = format!("/api/v1/events?{query}");
        let app = &app;
        async move {
            app.get_json(&path).await["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    (
                        e["client_id"].as_str().unwrap().to_owned(),
                        e["event_type"].as_str().unwrap().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        only("client_id=svc-1").await,
        [
            ("svc-1".to_owned(), "ClientRegistered".to_owned()),
            ("svc-1".to_owned(), "ClientSecretRotated".to_owned())
        ]
    );
    assert_eq!(
        only("event_type=ClientDeleted").await,
        [("svc-2".to_owned(), "ClientDeleted".to_owned())]
    );
    assert_eq!(only("actor=admin").await.len(), 7);
    assert!(only("actor=system").await.is_empty());
    let rotation_time = seen[5]["recorded_at"].as_str().unwrap().to_owned();
    let from = only(&format!("from={rotation_time}")).await;
    assert_eq!(from.len(), 2, "the rotation and the delete: {from:?}");
    let to = only(&format!("to={rotation_time}")).await;
    assert_eq!(to.len(), 5);

    // A filtered read that finds nothing still moves past what it examined.
    let page = app.get_json("/api/v1/events?client_id=nobody").await;
    assert_eq!(page["next_after"].as_i64(), Some(positions[6]));
}

async fn bad_feed_and_as_of_parameters_are_named(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let get = |path: &'static str| app.request(Method::GET, path, None, &[]);
    let fields = get("/api/v1/events?limit=5000&event_type=Nope")
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(fields, ["limit", "event_type"]);
    let fields = get("/api/v1/events?after=-3")
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(fields, ["after"]);
    let fields = get("/api/v1/events?from=yesterday")
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(fields, ["from"]);
    let fields = get("/api/v1/events?position=3")
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(fields.len(), 1);
    let fields = get("/api/v1/clients/octo-cli?as_of_version=1&as_of=2020-01-01T00:00:00Z")
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(fields, ["as_of"]);
    let fields = get("/api/v1/clients/octo-cli?as_of_version=x")
        .await
        .assert_problem(400, "invalid_query");
    assert_eq!(fields, ["as_of_version"]);
}
