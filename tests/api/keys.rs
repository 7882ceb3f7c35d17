//! Key-based client authentication (`private_key_jwt`, RFC 7523) and the client's public keys
//! (`jwks`, `jwks_uri`): validated, never a secret, in the history and in clients as code.
//! The identity service side (openid-client signing with a registered key against
//! oidc-provider) is in the adapter's tests.

use registry_tests::{backend_tests, service_client, Backend, TestApp};
use serde_json::{json, Value};

use crate::about::patch;
use crate::attacks::verify;

backend_tests!(
    a_key_client_has_keys_and_no_secret,
    bad_keys_are_refused_naming_the_key_and_never_echoing_it,
    a_client_moved_to_keys_loses_its_secrets_and_gets_a_new_one_when_it_moves_back,
    keys_are_in_the_history_and_round_trip_through_a_document,
);

/// A P-256 public key (the coordinates are not checked against the curve; their sizes are).
pub(crate) fn ec_key(kid: &str) -> Value {
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
           "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
           "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
}

fn key_client(client_id: &str) -> Value {
    let mut body = service_client(client_id, None);
    body["token_endpoint_auth_method"] = json!("private_key_jwt");
    body["jwks"] = json!({"keys": [ec_key("k1")]});
    body
}

async fn a_key_client_has_keys_and_no_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_client(&key_client("worker")).await;
    created.assert_status(201);
    let created = created.json();
    assert!(created.get("client_secret").is_none(), "{created}");
    assert_eq!(created["secrets"], json!([]));
    assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(created["jwks"], json!({"keys": [ec_key("k1")]}));
    assert_eq!(created["jwks_uri"], Value::Null);
    // No secret verifies, and there is none to rotate.
    assert!(!verify(&app, "worker", "any-secret-at-all-0123456789").await);
    let fields = app
        .rotate_secret("worker", None)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(fields, ["token_endpoint_auth_method"]);
    // A secret offered with it is refused, naming it.
    let offered = app
        .create_client(&json!({"client_id": "offered", "client_secret": "a-secret-of-sixteen+",
            "client_name": "W", "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://w.example.com/jwks"}))
        .await;
    assert_eq!(
        offered.assert_problem(422, "validation_failed"),
        ["client_secret"]
    );
    // By reference: an https URL.
    let mut by_uri = service_client("by-uri", None);
    by_uri["token_endpoint_auth_method"] = json!("private_key_jwt");
    by_uri["jwks_uri"] = json!("https://worker.example.com/.well-known/jwks.json");
    let by_uri = app.create_client(&by_uri).await;
    by_uri.assert_status(201);
    assert_eq!(
        by_uri.json()["jwks_uri"],
        "https://worker.example.com/.well-known/jwks.json"
    );
    // A PUT that leaves the keys and the method out keeps them.
    let mut renamed = service_client("worker", None);
    renamed["client_name"] = json!("Worker, renamed");
    app.update_client("worker", &renamed, Some(1))
        .await
        .assert_status(200);
    let kept = app.get_client("worker").await.json();
    assert_eq!(kept["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(kept["jwks"]["keys"][0]["kid"], "k1");
    assert_eq!(kept["secrets"], json!([]));
    // A patch that moves the keys to a URL drops the keys by value, and back.
    let moved = patch(
        &app,
        "worker",
        &json!({"jwks_uri": "https://worker.example.com/jwks"}),
    )
    .await;
    moved.assert_status(200);
    assert_eq!(moved.json()["jwks"], Value::Null);
    let back = patch(&app, "worker", &json!({"jwks": {"keys": [ec_key("k2")]}})).await;
    back.assert_status(200);
    assert_eq!(back.json()["jwks_uri"], Value::Null);
    assert_eq!(back.json()["jwks"]["keys"][0]["kid"], "k2");
}

async fn bad_keys_are_refused_naming_the_key_and_never_echoing_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let private_d = "Vx7IkN0IsrYmCsR3bUOKb9l8FQ6Wn5jDUHtXk3C4pY0";
    let mut private = ec_key("k1");
    private["d"] = json!(private_d);
    let cases = [
        (json!({"jwks": {"keys": [private]}}), vec!["jwks.keys[0].d"]),
        (
            json!({"jwks": {"keys": [{"kty": "oct", "k": "c2hhcmVkLXNlY3JldA"}]}}),
            vec!["jwks.keys[0].k", "jwks.keys[0].kty"],
        ),
        (
            json!({"jwks": {"keys": [ec_key("same"), ec_key("same")]}}),
            vec!["jwks.keys[1].kid"],
        ),
        (json!({"jwks": "not a key set"}), vec!["jwks"]),
        (
            json!({"jwks_uri": "http://worker.example.com/jwks"}),
            vec!["jwks_uri"],
        ),
        (
            json!({"jwks_uri": "https://169.254.169.254/latest/meta-data"}),
            vec!["jwks_uri"],
        ),
        (
            json!({"jwks": {"keys": [{"kty": "RSA", "e": "AQ", "n": "wcHB"}]}}),
            vec!["jwks.keys[0].n", "jwks.keys[0].e"],
        ),
        (
            json!({"jwks": {"keys": [ec_key("k1")]}, "jwks_uri": "https://w.example.com/jwks"}),
            vec!["jwks_uri"],
        ),
        (json!({"jwks": null}), vec!["jwks"]),
    ];
    for (keys, expected) in cases {
        let mut body = service_client("refused", None);
        body["token_endpoint_auth_method"] = json!("private_key_jwt");
        for (field, value) in keys.as_object().unwrap() {
            body[field] = value.clone();
        }
        let refused = app.create_client(&body).await;
        let fields = refused.assert_problem(422, "validation_failed");
        assert_eq!(fields, expected, "{keys}");
        let text = String::from_utf8_lossy(&refused.body).into_owned();
        assert!(
            !text.contains(private_d),
            "a private key member is never echoed"
        );
        assert!(!text.contains("c2hhcmVkLXNlY3JldA"));
    }
    app.get_client("refused").await.assert_status(404);
    assert!(
        !app.dump_tables().await.contains(private_d),
        "nothing stored"
    );
    // A public client cannot sign with keys.
    let mut public = key_client("public");
    public["require_client_secret"] = json!(false);
    public["grant_types"] = json!(["urn:ietf:params:oauth:grant-type:device_code"]);
    let fields = app
        .create_client(&public)
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(fields, ["token_endpoint_auth_method"]);
}

async fn a_client_moved_to_keys_loses_its_secrets_and_gets_a_new_one_when_it_moves_back(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let secret = "the-first-secret-0123456789";
    app.create_client(&service_client("mover", Some(secret)))
        .await
        .assert_status(201);
    assert!(verify(&app, "mover", secret).await);
    let moved = patch(
        &app,
        "mover",
        &json!({"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [ec_key("k1")]}}),
    )
    .await;
    moved.assert_status(200);
    let moved = moved.json();
    assert_eq!(moved["secrets"], json!([]), "{moved}");
    assert!(moved.get("client_secret").is_none());
    assert!(
        !verify(&app, "mover", secret).await,
        "the old secret is revoked"
    );
    let back = patch(
        &app,
        "mover",
        &json!({"token_endpoint_auth_method": null, "jwks": null}),
    )
    .await;
    back.assert_status(200);
    let back = back.json();
    let issued = back["client_secret"]
        .as_str()
        .expect("a new secret, shown once");
    assert_eq!(back["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(back["jwks"], Value::Null);
    assert!(verify(&app, "mover", issued).await);
    assert!(!verify(&app, "mover", secret).await, "never the old one");
}

async fn keys_are_in_the_history_and_round_trip_through_a_document(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    app.create_client(&key_client("worker"))
        .await
        .assert_status(201);
    patch(
        &app,
        "worker",
        &json!({"jwks": {"keys": [ec_key("k1"), ec_key("k2")]}}),
    )
    .await
    .assert_status(200);
    let history = app
        .get("/api/v1/clients/worker/history")
        .send()
        .await
        .json();
    let registered: Vec<&str> = (history["events"][0]["changes"].as_array().unwrap())
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(registered.contains(&"jwks"), "{registered:?}");
    assert!(registered.contains(&"token_endpoint_auth_method"));
    let updated = &history["events"][1]["changes"];
    assert_eq!(updated[0]["field"], "jwks", "{updated}");
    assert_eq!(updated[0]["after"]["keys"][1]["kid"], "k2");

    let export = app.get("/api/v1/clients/export.yaml").send().await;
    export.assert_status(200);
    let document = String::from_utf8(export.body.clone()).unwrap();
    assert!(document.contains("private_key_jwt"), "{document}");
    assert!(document.contains("kid: k2"), "{document}");
    let plan = crate::documents::plan(&app, &document, "").await;
    plan.assert_status(200);
    let plan = plan.json();
    assert_eq!(plan["summary"]["unchanged"], 1, "{plan}");
    // A document may not give a key client a secret.
    let with_secret = document.replace(
        "  token_endpoint_auth_method: private_key_jwt\n",
        "  token_endpoint_auth_method: private_key_jwt\n  client_secret_env: WORKER_SECRET\n",
    );
    let refused = crate::documents::plan(&app, &with_secret, "").await;
    refused.assert_status(422);
    assert!(
        String::from_utf8_lossy(&refused.body).contains("client_secret_env"),
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
}
