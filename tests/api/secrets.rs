//! Secrets: the plaintext appears once, in the response that created it, and nowhere in the
//! database.

use axum::http::Method;
use registry_tests::{backend_tests, service_client, spa_client, Backend, TestApp};
use serde_json::json;

backend_tests!(
    no_plaintext_secret_is_stored_anywhere,
    a_secret_revoked_by_going_public_never_comes_back,
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
