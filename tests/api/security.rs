//! Who may do what: every route × every role, API keys, JWTs (expired, wrong audience or
//! issuer, tampered, unknown key, `alg: none`, HS256 with a public key, key rotation), secret
//! verification, security headers, CORS, timeouts, and no secret in any log line.

use std::sync::Arc;

use axum::http::Method;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use registry_api::auth::api_keys::generate;
use registry_api::auth::Roles;
use registry_tests::{
    backend_tests, captured_logs, service_client, spa_client, Backend, TestApp, TestResponse,
    ADMIN_TOKEN,
};
use serde_json::{json, Value};
use tokio::sync::RwLock;

backend_tests!(
    every_route_by_every_role,
    secret_verification,
    rotation_grace_period_keeps_the_previous_secret,
    headers_cors_and_timeouts,
    no_secret_or_token_in_any_log_line,
);

struct Keys {
    reader: String,
    writer: String,
    auditor: String,
    verifier: String,
    lines: String,
}

fn keys() -> Keys {
    let mut lines = String::new();
    let mut make = |name: &str, roles: &str| {
        let (key, line) = generate(name, Roles::parse(roles).unwrap());
        lines.push_str(&line);
        lines.push('\n');
        key
    };
    Keys {
        reader: make("reader", "clients:read"),
        writer: make("writer", "clients:write"),
        auditor: make("auditor", "audit:read"),
        verifier: make("verifier", "secrets:verify"),
        lines,
    }
}

pub(crate) async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> TestResponse {
    let mut call = app.call(method, path).anonymous();
    if let Some(token) = token {
        call = call.bearer(token);
    }
    if let Some(body) = body {
        call = call.json(body);
    }
    call.send().await
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Need {
    Read,
    Write,
    Audit,
    Verify,
    ReadAndAudit,
}

fn renamed(id: &str) -> Value {
    let mut body = service_client(id, None);
    body["client_name"] = json!("Renamed");
    body
}

async fn every_route_by_every_role(backend: Backend) {
    let keys = keys();
    let app = TestApp::spawn_with(backend, |c| c.api_keys = Some(keys.lines.clone())).await;
    let principals: [(&str, &str, &[Need]); 5] = [
        (
            "admin",
            ADMIN_TOKEN,
            &[
                Need::Read,
                Need::Write,
                Need::Audit,
                Need::Verify,
                Need::ReadAndAudit,
            ],
        ),
        ("reader", &keys.reader, &[Need::Read]),
        ("writer", &keys.writer, &[Need::Write]),
        ("auditor", &keys.auditor, &[Need::Audit]),
        ("verifier", &keys.verifier, &[Need::Verify]),
    ];
    let mut checked = 0;
    for (name, token, allowed) in principals {
        // Fresh targets for this principal's writes.
        let id = format!("for-{name}");
        app.create_client(&service_client(&id, None))
            .await
            .assert_status(201);
        let routes: Vec<(Method, String, Option<Value>, Need, u16)> = vec![
            (Method::GET, "/api/v1/clients".into(), None, Need::Read, 200),
            (
                Method::GET,
                format!("/api/v1/clients/{id}"),
                None,
                Need::Read,
                200,
            ),
            (
                Method::GET,
                "/api/v1/clients/export.xlsx".into(),
                None,
                Need::Read,
                200,
            ),
            (
                Method::GET,
                "/api/v1/clients/export.pdf".into(),
                None,
                Need::Read,
                200,
            ),
            (
                Method::GET,
                format!("/api/v1/clients/{id}?as_of_version=1"),
                None,
                Need::ReadAndAudit,
                200,
            ),
            (
                Method::GET,
                format!("/api/v1/clients/{id}/history"),
                None,
                Need::Audit,
                200,
            ),
            (
                Method::GET,
                format!("/api/v1/clients/{id}/history.xlsx"),
                None,
                Need::Audit,
                200,
            ),
            (
                Method::GET,
                format!("/api/v1/clients/{id}/history.pdf"),
                None,
                Need::Audit,
                200,
            ),
            (Method::GET, "/api/v1/events".into(), None, Need::Audit, 200),
            (
                Method::POST,
                format!("/api/v1/clients/{id}/secret/verify"),
                Some(json!({"client_secret": "not-the-secret-000"})),
                Need::Verify,
                200,
            ),
            (
                Method::POST,
                "/api/v1/clients".into(),
                Some(spa_client(&format!("new-{name}"), "New")),
                Need::Write,
                201,
            ),
            (
                Method::PUT,
                format!("/api/v1/clients/{id}"),
                Some(renamed(&id)),
                Need::Write,
                200,
            ),
            (
                Method::POST,
                format!("/api/v1/clients/{id}/secret"),
                None,
                Need::Write,
                200,
            ),
            (
                Method::DELETE,
                format!("/api/v1/clients/{id}"),
                None,
                Need::Write,
                204,
            ),
        ];
        for (method, path, body, need, success) in routes {
            let response = call(&app, Some(token), method.clone(), &path, body.as_ref()).await;
            if allowed.contains(&need) {
                assert_eq!(
                    response.status.as_u16(),
                    success,
                    "{name} {method} {path}: {}",
                    String::from_utf8_lossy(&response.body)
                );
            } else {
                response.assert_problem(403, "forbidden");
            }
            call(&app, None, method.clone(), &path, body.as_ref())
                .await
                .assert_problem(401, "unauthorized");
            let bad = call(
                &app,
                Some("crk_not-a-key"),
                method.clone(),
                &path,
                body.as_ref(),
            )
            .await;
            bad.assert_problem(401, "unauthorized");
            assert!(bad
                .header("www-authenticate")
                .is_some_and(|v| v.contains("invalid_token")));
            checked += 1;
        }
    }
    assert_eq!(checked, 5 * 14);
    // Changes record the key's name as the actor.
    let history = app.get_json("/api/v1/clients/for-writer/history").await;
    let actors: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["admin", "writer", "writer", "writer"]);
}

async fn verify(app: &TestApp, client_id: &str, secret: &str) -> bool {
    let response = app
        .request(
            Method::POST,
            &format!("/api/v1/clients/{client_id}/secret/verify"),
            Some(&json!({"client_secret": secret})),
            &[],
        )
        .await;
    response.assert_status(200);
    response.json()["valid"].as_bool().unwrap()
}

async fn secret_verification(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_client(&service_client("svc", None)).await.json();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert!(verify(&app, "svc", &secret).await);
    assert!(!verify(&app, "svc", &format!("{secret}x")).await);
    assert!(
        !verify(&app, "nobody", &secret).await,
        "unknown client: plain false"
    );
    assert!(
        !verify(&app, "octo-cli", &secret).await,
        "public client: false"
    );

    // Disabled: false at once; enabled again: true.
    let mut disabled = service_client("svc", None);
    disabled["enabled"] = json!(false);
    app.update_client("svc", &disabled, None)
        .await
        .assert_status(200);
    assert!(!verify(&app, "svc", &secret).await);
    app.update_client("svc", &service_client("svc", None), None)
        .await
        .assert_status(200);
    assert!(verify(&app, "svc", &secret).await);

    // Rotation without grace: the old secret stops at once.
    let rotated = app
        .rotate_secret(
            "svc",
            Some(&json!({"client_secret": "a-new-secret-of-the-caller-1"})),
        )
        .await;
    rotated.assert_status(200);
    assert!(!verify(&app, "svc", &secret).await);
    assert!(verify(&app, "svc", "a-new-secret-of-the-caller-1").await);

    // Deleted: false at once.
    app.delete_client("svc").await.assert_status(204);
    assert!(!verify(&app, "svc", "a-new-secret-of-the-caller-1").await);

    // A body without the secret is named.
    let fields = app
        .request(
            Method::POST,
            "/api/v1/clients/x/secret/verify",
            Some(&json!({})),
            &[],
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(fields, ["body"]);
}

async fn rotation_grace_period_keeps_the_previous_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app
        .create_client(&service_client("svc", Some("first-secret-0123456789")))
        .await;
    first.assert_status(201);
    let rotated = app
        .rotate_secret("svc", Some(&json!({"client_secret": "second-secret-0123456789", "previous_secret_valid_for": 3600})))
        .await;
    rotated.assert_status(200);
    let secrets = rotated.json()["secrets"].clone();
    assert_eq!(secrets.as_array().unwrap().len(), 2, "{secrets}");
    assert!(
        secrets[0]["expires_at"].is_string(),
        "the previous one now expires"
    );
    assert!(secrets[1]["expires_at"].is_null());
    let expires: chrono::DateTime<chrono::Utc> =
        secrets[0]["expires_at"].as_str().unwrap().parse().unwrap();
    let in_an_hour = chrono::Utc::now() + chrono::Duration::hours(1);
    assert!((expires - in_an_hour).num_seconds().abs() < 60);
    assert!(
        verify(&app, "svc", "first-secret-0123456789").await,
        "still valid in its grace period"
    );
    assert!(verify(&app, "svc", "second-secret-0123456789").await);
    let detail = app.get_client("svc").await.json();
    assert_eq!(detail["secrets"], secrets);

    // A rotation without grace ends every earlier secret.
    app.rotate_secret(
        "svc",
        Some(&json!({"client_secret": "third-secret-0123456789"})),
    )
    .await
    .assert_status(200);
    assert!(!verify(&app, "svc", "first-secret-0123456789").await);
    assert!(!verify(&app, "svc", "second-secret-0123456789").await);

    let fields = app
        .rotate_secret(
            "svc",
            Some(&json!({"previous_secret_valid_for": 2_592_001})),
        )
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(fields, ["previous_secret_valid_for"]);
    let fields = app
        .rotate_secret("svc", Some(&json!({"client_secret": "short"})))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(fields, ["client_secret"]);
}

async fn headers_cors_and_timeouts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.list_clients("").await;
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(response.header(name), Some(value), "{name}");
    }
    let preflight = |app: &TestApp, origin: &'static str| {
        (app.call(Method::OPTIONS, "/api/v1/clients").anonymous())
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let off = preflight(&app, "https://admin.example.com").await;
    assert!(
        off.header("access-control-allow-origin").is_none(),
        "CORS is off by default"
    );

    let cors = TestApp::spawn_with(backend, |c| {
        c.cors_allowed_origins = Some("https://admin.example.com".into())
    })
    .await;
    let allowed = preflight(&cors, "https://admin.example.com").await;
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://admin.example.com")
    );
    let other = preflight(&cors, "https://evil.example.com").await;
    assert!(other.header("access-control-allow-origin").is_none());

    let slow = TestApp::spawn_with(backend, |c| c.request_timeout_seconds = 0).await;
    // Hashing a secret takes milliseconds on a blocking thread: longer than a limit of zero.
    slow.create_client(&service_client("slow", None))
        .await
        .assert_problem(503, "timeout");
}

async fn no_secret_or_token_in_any_log_line(backend: Backend) {
    let keys = keys();
    let app = TestApp::spawn_with(backend, |c| c.api_keys = Some(keys.lines.clone())).await;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let given = format!("given-{unique}");
    let created = app
        .create_client(&service_client(&format!("log-{unique}"), Some(&given)))
        .await;
    created.assert_status(201);
    let generated = app
        .create_client(&service_client(&format!("gen-{unique}"), None))
        .await
        .json();
    let generated = generated["client_secret"].as_str().unwrap().to_owned();
    let rotated = app
        .rotate_secret(&format!("gen-{unique}"), None)
        .await
        .json();
    let rotated = rotated["client_secret"].as_str().unwrap().to_owned();
    assert!(verify(&app, &format!("gen-{unique}"), &rotated).await);
    assert!(!verify(&app, &format!("gen-{unique}"), &generated).await);
    for token in [&keys.reader, &keys.verifier] {
        call(&app, Some(token), Method::GET, "/api/v1/clients", None).await;
    }
    call(
        &app,
        Some("crk_wrong-token-in-a-log-test"),
        Method::GET,
        "/api/v1/clients",
        None,
    )
    .await;
    // Something was logged by these requests, so the scan below is not vacuous.
    let logs = captured_logs();
    assert!(
        logs.contains(&format!("log-{unique}")),
        "the requests were logged"
    );
    for needle in [
        given.as_str(),
        generated.as_str(),
        rotated.as_str(),
        ADMIN_TOKEN,
        keys.reader.as_str(),
        keys.verifier.as_str(),
        "crk_wrong-token-in-a-log-test",
    ] {
        assert!(!logs.contains(needle), "a secret or token is in the logs");
    }
}

// ---- JWT ------------------------------------------------------------------------------

pub(crate) const ISSUER: &str = "https://identity.example.com";
pub(crate) const AUDIENCE: &str = "client-registry";

pub(crate) fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/jwt")
        .join(name)
}

pub(crate) fn sign(key: &str, claims: &Value) -> String {
    let pem = std::fs::read(fixture(&format!("{key}.pem"))).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.to_owned());
    encode(&header, claims, &EncodingKey::from_ec_pem(&pem).unwrap()).unwrap()
}

pub(crate) fn claims(scope: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "svc-account-7", "scope": scope, "iat": now, "exp": now + 300})
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

async fn jwt_app(jwks: std::path::PathBuf) -> TestApp {
    TestApp::spawn_with(Backend::Sqlite, |c| {
        c.admin_token = None;
        c.jwt_issuer = Some(ISSUER.into());
        c.jwt_audience = Some(AUDIENCE.into());
        c.jwt_jwks_file = Some(jwks);
        c.jwt_scope_roles = "octo_api=clients:read,clients:write octo_api.read_only=clients:read octo_audit=audit:read".into();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwts_are_checked_and_scopes_become_roles() {
    let app = jwt_app(fixture("jwks-key1.json")).await;
    let list = |token: String| {
        let app = &app;
        async move { call(app, Some(&token), Method::GET, "/api/v1/clients", None).await }
    };

    let full = sign("key1", &claims("openid octo_api"));
    list(full.clone()).await.assert_status(200);
    let created = call(
        &app,
        Some(&full),
        Method::POST,
        "/api/v1/clients",
        Some(&spa_client("by-jwt", "By JWT")),
    )
    .await;
    created.assert_status(201);
    let events = app.events_of("by-jwt").await;
    assert_eq!(
        events[0].1["actor"], "svc-account-7",
        "the actor is the token's sub"
    );

    let read_only = sign("key1", &claims("octo_api.read_only"));
    list(read_only.clone()).await.assert_status(200);
    call(
        &app,
        Some(&read_only),
        Method::DELETE,
        "/api/v1/clients/by-jwt",
        None,
    )
    .await
    .assert_problem(403, "forbidden");
    // scp as an array works too.
    let mut scp = claims("");
    scp["scp"] = json!(["octo_audit"]);
    call(
        &app,
        Some(&sign("key1", &scp)),
        Method::GET,
        "/api/v1/events",
        None,
    )
    .await
    .assert_status(200);

    let now = chrono::Utc::now().timestamp();
    let mut expired = claims("octo_api");
    expired["exp"] = json!(now - 3600);
    let mut not_yet = claims("octo_api");
    not_yet["nbf"] = json!(now + 3600);
    let mut wrong_audience = claims("octo_api");
    wrong_audience["aud"] = json!("another-service");
    let mut wrong_issuer = claims("octo_api");
    wrong_issuer["iss"] = json!("https://evil.example.com");
    let mut no_sub = claims("octo_api");
    no_sub.as_object_mut().unwrap().remove("sub");
    for (what, token) in [
        ("expired", sign("key1", &expired)),
        ("not yet valid", sign("key1", &not_yet)),
        ("wrong audience", sign("key1", &wrong_audience)),
        ("wrong issuer", sign("key1", &wrong_issuer)),
        ("no sub", sign("key1", &no_sub)),
        ("unknown kid", sign("key2", &claims("octo_api"))),
    ] {
        let response = list(token).await;
        assert_eq!(response.status.as_u16(), 401, "{what}");
        assert!(
            response
                .header("www-authenticate")
                .is_some_and(|v| v.contains("invalid_token")),
            "{what}"
        );
    }

    // A tampered payload: the signature no longer matches.
    let parts: Vec<&str> = full.split('.').collect();
    let mut forged = claims("octo_api");
    forged["sub"] = json!("admin");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(forged.to_string().as_bytes()),
        parts[2]
    );
    list(tampered).await.assert_problem(401, "unauthorized");

    // alg: none.
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims("octo_api").to_string().as_bytes())
    );
    list(none).await.assert_problem(401, "unauthorized");

    // HS256 "signed" with the public key as the HMAC secret (the classic key-confusion attack).
    let public_jwks = std::fs::read(fixture("jwks-key1.json")).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("key1".into());
    let confused = encode(
        &header,
        &claims("octo_api"),
        &EncodingKey::from_secret(&public_jwks),
    )
    .unwrap();
    list(confused).await.assert_problem(401, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_fetched_from_the_jwks_url() {
    // The identity service's JWKS endpoint, serving key1 first.
    let served = Arc::new(RwLock::new(
        std::fs::read_to_string(fixture("jwks-key1.json")).unwrap(),
    ));
    let jwks = {
        let served = served.clone();
        axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let served = served.clone();
                async move { served.read().await.clone() }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, jwks).await });

    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.admin_token = None;
        c.jwt_issuer = Some(ISSUER.into());
        c.jwt_audience = Some(AUDIENCE.into());
        c.jwt_jwks_url = Some(url);
        c.jwt_min_reload_seconds = 0;
        c.jwt_scope_roles = crate::sign_in::SCOPE_ROLES.to_owned();
    })
    .await;
    let list = |token: String| {
        let app = &app;
        async move { call(app, Some(&token), Method::GET, "/api/v1/clients", None).await }
    };
    list(sign("key1", &claims("octo_api")))
        .await
        .assert_status(200);
    list(sign("key2", &claims("octo_api")))
        .await
        .assert_problem(401, "unauthorized");
    // The identity service rotates: key2 is published.
    *served.write().await = std::fs::read_to_string(fixture("jwks-both.json")).unwrap();
    list(sign("key2", &claims("octo_api")))
        .await
        .assert_status(200);
    list(sign("key1", &claims("octo_api")))
        .await
        .assert_status(200);
    server.abort();
}
