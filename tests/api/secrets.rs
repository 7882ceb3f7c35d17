//! Secrets: the plaintext appears once, in the response that created it, and nowhere in the
//! database.

use axum::http::Method;
use registry_tests::{backend_tests, service_client, spa_client, Backend, TestApp};
use serde_json::json;

backend_tests!(
    no_plaintext_secret_is_stored_anywhere,
    a_secret_revoked_by_going_public_never_comes_back,
    a_secret_past_its_lifetime_no_longer_verifies,
);

async fn verifies(app: &TestApp, client_id: &str, secret: &str) -> bool {
    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/clients/{client_id}/secret/verify"),
            Some(&json!({ "client_secret": secret })),
            &[],
        )
        .await;
    response.assert_status(200);
    response.json()["valid"].as_bool().unwrap()
}

/// Confidential → public revokes every secret (recorded in the event); public →
/// confidential issues a new one, shown once, and the old (possibly leaked) one never
/// verifies again.
async fn a_secret_revoked_by_going_public_never_comes_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut web = spa_client("web", "Web app");
    web["require_client_secret"] = true.into();
    let created = app.create_client(&web).await;
    created.assert_status(201);
    let old = created.json()["client_secret"].as_str().unwrap().to_owned();
    let old_id = created.json()["secrets"][0]["secret_id"].clone();
    assert!(verifies(&app, "web", &old).await);

    web["require_client_secret"] = false.into();
    let public = app.update_client("web", &web, Some(1)).await;
    public.assert_status(200);
    assert_eq!(public.json()["secrets"], json!([]));
    assert!(public.json().get("client_secret").is_none());
    assert!(!verifies(&app, "web", &old).await);

    web["require_client_secret"] = true.into();
    let confidential = app.update_client("web", &web, Some(2)).await;
    confidential.assert_status(200);
    let new = confidential.json()["client_secret"]
        .as_str()
        .expect("a new secret, shown once")
        .to_owned();
    assert_ne!(new, old);
    let secrets = confidential.json()["secrets"].as_array().unwrap().clone();
    assert_eq!(secrets.len(), 1);
    assert_ne!(secrets[0]["secret_id"], old_id);
    assert!(
        !verifies(&app, "web", &old).await,
        "the old secret stays revoked"
    );
    assert!(verifies(&app, "web", &new).await);
    assert_eq!(
        app.get_client("web").await.json()["secrets"],
        json!(secrets)
    );

    // The history records the revocation.
    let history = app.get_json("/api/v1/clients/web/history").await;
    let to_public = &history["events"][1];
    let secrets_change = to_public["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "secrets")
        .unwrap_or_else(|| panic!("no secrets change in {to_public}"));
    assert_eq!(secrets_change["before"], json!([old_id]));
    assert_eq!(secrets_change["after"], json!([]));
    assert_eq!(to_public["event_version"], "1.3");
    let stored = app.events_of("web").await;
    assert_eq!(stored[1].0, "ClientUpdated");
    let feed = app.get_json("/api/v1/events?client_id=web").await;
    let payload = feed["events"][1].to_string();
    assert!(
        payload.contains("revoked_secrets") && payload.contains(old_id.as_str().unwrap()),
        "the event names the revoked secret: {payload}"
    );
}

async fn no_plaintext_secret_is_stored_anywhere(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let given = "given-secret-0123456789-abcdef";
    let rotated_given = "rotated-given-secret-9876543210";

    let generated = app.create_client(&service_client("gen", None)).await;
    generated.assert_status(201);
    let generated = generated.json()["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let with_given = app
        .create_client(&service_client("given", Some(given)))
        .await;
    with_given.assert_status(201);
    assert!(
        with_given.json().get("client_secret").is_none(),
        "a secret the caller chose is not echoed back"
    );

    let rotated = app.rotate_secret("gen", None).await;
    rotated.assert_status(200);
    let rotated = rotated.json()["client_secret"].as_str().unwrap().to_owned();
    let rotated_to_given = app
        .rotate_secret("given", Some(&json!({"client_secret": rotated_given})))
        .await;
    rotated_to_given.assert_status(200);
    assert!(rotated_to_given.json().get("client_secret").is_none());

    let plaintexts = [generated.as_str(), rotated.as_str(), given, rotated_given];

    let dump = app.dump_tables().await;
    assert!(dump.contains("$argon2id$"), "the hashes are there");
    for secret in plaintexts {
        assert!(
            !dump.contains(secret),
            "plaintext {secret} found in a table"
        );
    }
    for id in ["gen", "given"] {
        let body = String::from_utf8(app.get_client(id).await.body).unwrap();
        assert!(!body.contains("argon2"), "no hash is served");
        for secret in plaintexts {
            assert!(!body.contains(secret));
        }
    }
    if let Some(file) = app.sqlite_file() {
        // The raw file and its write-ahead log, byte for byte.
        for path in [file.clone(), file.with_extension("db-wal")] {
            let bytes = std::fs::read(&path).unwrap_or_default();
            for secret in plaintexts {
                let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
                assert!(!found, "plaintext found in {}", path.display());
            }
        }
    }
}

/// `REGISTRY_SECRET_LIFETIME_DAYS`: each issued secret (registered, rotated, self-registered)
/// carries the end of its lifetime, shows it, and stops verifying at it — also when it was
/// verified before (the memory of verified secrets does not outlive it).
async fn a_secret_past_its_lifetime_no_longer_verifies(backend: Backend) {
    use registry_commands::service::Verification;
    let app = TestApp::spawn_with(backend, |c| {
        c.secret_lifetime_days = 30;
        c.dynamic_registration = true;
    })
    .await;
    let secret = "a-secret-with-an-end-0123";
    let created = app
        .create_client(&service_client("mortal", Some(secret)))
        .await
        .json();
    let record = &created["secrets"][0];
    let issued: chrono::DateTime<chrono::Utc> =
        record["created_at"].as_str().unwrap().parse().unwrap();
    let ends: chrono::DateTime<chrono::Utc> =
        record["valid_until"].as_str().unwrap().parse().unwrap();
    assert_eq!(ends - issued, chrono::Duration::days(30));
    assert!(verifies(&app, "mortal", secret).await);
    let answer = app
        .request(
            Method::POST,
            "/api/v1/clients/mortal/secret/verify",
            Some(&json!({"client_secret": secret})),
            &[],
        )
        .await
        .json();
    assert_eq!(
        answer["expires_at"], record["valid_until"],
        "an identity service must not remember it longer"
    );
    let commands = &app.commands;
    let before = commands.verify_secret(
        "mortal",
        secret.to_owned(),
        ends - chrono::Duration::hours(1),
    );
    assert!(matches!(before.await.unwrap(), Verification::Valid { .. }));
    let after = commands.verify_secret(
        "mortal",
        secret.to_owned(),
        ends + chrono::Duration::seconds(1),
    );
    assert_eq!(
        after.await.unwrap(),
        Verification::Invalid,
        "past its lifetime"
    );
    // Past its lifetime, an update does not renew it (no secret appears in an update's
    // answer, a document apply's log or a self-registered client's PUT): a rotation does.
    let later = registry_commands::CommandContext {
        actor: "admin".to_owned(),
        request_id: String::new(),
        reason: None,
        at: ends + chrono::Duration::days(1),
    };
    let input = registry_domain::ClientSettingsInput {
        client_name: Some("Mortal, renamed".to_owned()),
        require_client_secret: true,
        enabled: true,
        require_pkce: true,
        grant_types: vec!["client_credentials".to_owned()],
        allowed_scopes: vec!["octo_api".to_owned()],
        ..Default::default()
    };
    let updated = commands
        .update(&later, "mortal", input, None)
        .await
        .unwrap();
    assert!(updated.secret.is_none(), "no secret issued by an update");
    let renewed = commands
        .rotate_secret(&later, "mortal", None, None, None)
        .await
        .unwrap();
    let fresh = renewed.secret.unwrap().generated.unwrap();
    let at_later = commands.verify_secret("mortal", fresh.expose().to_owned(), later.at);
    assert!(matches!(
        at_later.await.unwrap(),
        Verification::Valid { .. }
    ));
    // A rotation issues a secret with a lifetime of its own.
    let rotated = app.rotate_secret("mortal", None).await.json();
    let newest = rotated["secrets"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(newest["valid_until"].is_string(), "{rotated}");
    assert_ne!(newest["valid_until"], record["valid_until"]);
    // Self-registered: RFC 7591's client_secret_expires_at says when.
    let token = app
        .request(
            Method::POST,
            "/api/v1/initial-access-tokens",
            Some(&json!({"description": "t"})),
            &[],
        )
        .await
        .json()["initial_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let registered = app
        .call(Method::POST, "/register")
        .anonymous()
        .bearer(&token)
        .json(&json!({"client_name": "Worker", "grant_types": ["client_credentials"], "scope": "octo_api"}))
        .send()
        .await;
    registered.assert_status(201);
    let body = registered.json();
    let id = body["client_id"].as_str().unwrap();
    let stored = app.get_client(id).await.json();
    let until: chrono::DateTime<chrono::Utc> = stored["secrets"][0]["valid_until"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(body["client_secret_expires_at"], until.timestamp());
}
