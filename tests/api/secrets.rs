//! Secrets: the plaintext appears once, in the response that created it, and nowhere in the
//! database.

use registry_tests::{backend_tests, service_client, Backend, TestApp};
use serde_json::json;

backend_tests!(no_plaintext_secret_is_stored_anywhere);

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
