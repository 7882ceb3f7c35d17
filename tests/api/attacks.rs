//! The security review's cases, one test each (`scripts/attack.sh` runs them and prints one
//! line per case): each was an attack that worked, and each test is that attack, which must
//! now fail. SECURITY.md says what is promised for each.

use axum::http::{header, Method};
use registry_api::auth::api_keys::generate;
use registry_api::auth::Roles;
use registry_tests::{backend_tests, service_client, Backend, TestApp, ADMIN_TOKEN};
use serde_json::json;

backend_tests!(
    case_01_a_yaml_alias_bomb_of_large_values_is_refused_by_bytes,
    case_02_overlapping_rotations_keep_two_secrets_valid_at_most,
    case_03_a_snapshot_edited_in_the_database_has_no_effect_and_is_reported,
    case_09_ids_shadowed_by_routes_cannot_be_registered,
    case_12_a_plan_replayed_cannot_bring_back_a_client_deleted_since,
    case_13_signing_in_gives_no_role_without_a_mapping,
    case_13_roles_are_checked_again_every_token_lifetime,
);

/// An API key with only `roles`, and the configuration line that accepts it.
pub fn key(name: &str, roles: &str) -> (String, String) {
    generate(name, Roles::parse(roles).unwrap())
}

/// Case 1: one 1 MB string under an anchor and 10,000 aliases to it (10 GB once expanded),
/// posted with a read-only key, made the server abort. Now: a 422 naming the document, soon,
/// and the server answers the next request.
async fn case_01_a_yaml_alias_bomb_of_large_values_is_refused_by_bytes(backend: Backend) {
    let (reader, line) = key("reader", "clients:read");
    let app = TestApp::spawn_with(backend, |c| c.api_keys = Some(line)).await;
    let mut bomb = format!("big: &big \"{}\"\ncopies:\n", "x".repeat(1024 * 1024));
    for _ in 0..10_000 {
        bomb.push_str("  - *big\n");
    }
    bomb.push_str("clients: []\n");
    let response = app
        .call(Method::POST, "/api/v1/clients/plan")
        .anonymous()
        .header(header::AUTHORIZATION, format!("Bearer {reader}"))
        .header(header::CONTENT_TYPE, "application/yaml")
        .body("", bomb)
        .send()
        .await;
    let fields = response.assert_problem(422, "validation_failed");
    assert_eq!(
        fields,
        ["document"],
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert!(String::from_utf8_lossy(&response.body).contains("expands to far more"));
    // Nested 64 deep: refused by depth, not by the parser's stack.
    let deep = format!("clients: {}{}\n", "[".repeat(64), "]".repeat(64));
    let response = app
        .call(Method::POST, "/api/v1/clients/plan")
        .anonymous()
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .header(header::CONTENT_TYPE, "application/yaml")
        .body("", deep)
        .send()
        .await;
    response.assert_problem(422, "validation_failed");
    assert!(String::from_utf8_lossy(&response.body).contains("deeper than"));
    app.list_clients("").await.assert_status(200);
}

/// Case 1, on the command line: `clients plan -f` read the file unguarded before sending it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_01_the_cli_reads_a_file_within_the_same_limits() {
    use crate::documents_cli::{cli, temp_dir, write};
    let dir = temp_dir();
    let mut bomb = format!("big: &big \"{}\"\ncopies:\n", "x".repeat(1024 * 1024));
    for _ in 0..10_000 {
        bomb.push_str("  - *big\n");
    }
    bomb.push_str("clients: []\n");
    let file = write(&dir, "bomb.yaml", &bomb);
    // Nothing listens there: the file must be refused before anything is sent.
    let run = cli(
        &[
            "plan",
            "-f",
            file.to_str().unwrap(),
            "--url",
            "http://127.0.0.1:9",
        ],
        &[("REGISTRY_TOKEN", "unused-token-0123456789")],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("expands to far more"), "{run:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `POST …/secret/verify`: whether `secret` is valid for `client_id` now.
pub async fn verify(app: &TestApp, client_id: &str, secret: &str) -> bool {
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

/// Case 2: each rotation with a grace period kept every earlier secret in grace valid too, so
/// N overlapping rotations kept N + 1 secrets valid, and a wrong secret cost N + 1 argon2
/// verifications. Now a rotation during a grace ends the older grace.
async fn case_02_overlapping_rotations_keep_two_secrets_valid_at_most(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secrets = [
        "first-secret-0123456789",
        "second-secret-0123456789",
        "third-secret-0123456789",
    ];
    app.create_client(&service_client("svc", Some(secrets[0])))
        .await
        .assert_status(201);
    for secret in &secrets[1..] {
        app.rotate_secret(
            "svc",
            Some(&json!({ "client_secret": secret, "previous_secret_valid_for": 3600 })),
        )
        .await
        .assert_status(200);
    }
    assert!(
        !verify(&app, "svc", secrets[0]).await,
        "the oldest grace ended"
    );
    assert!(
        verify(&app, "svc", secrets[1]).await,
        "the one replaced last is in its grace"
    );
    assert!(verify(&app, "svc", secrets[2]).await);
    let detail = app.get_client("svc").await.json();
    let active = detail["secrets"].as_array().unwrap().len();
    assert_eq!(active, 2, "{detail}");
}

/// Case 9: a client registered as `plan`, `schema.json`, `export.yaml`… or `new` could then
/// never be read or edited: the fixed route answers instead. Now such ids are refused.
async fn case_09_ids_shadowed_by_routes_cannot_be_registered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for id in registry_domain::values::ClientId::RESERVED {
        let response = app
            .create_client(&registry_tests::spa_client(id, "Shadowed"))
            .await;
        let fields = response.assert_problem(422, "validation_failed");
        assert_eq!(fields, ["client_id"], "{id}");
        assert!(String::from_utf8_lossy(&response.body).contains("reserved"));
    }
    let plan = app
        .call(Method::POST, "/api/v1/clients/plan")
        .anonymous()
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .header(header::CONTENT_TYPE, "application/yaml")
        .body(
            "",
            "clients:\n  - client_id: export.json\n    client_name: X\n    \
                     require_client_secret: false\n    redirect_uris: [https://x.example/cb]\n",
        )
        .send()
        .await;
    assert_eq!(
        plan.assert_problem(422, "validation_failed"),
        ["clients[0].client_id"]
    );
    // Ids that merely look alike are ordinary ids.
    app.create_client(&registry_tests::spa_client("plans", "Plans"))
        .await
        .assert_status(201);
    app.get_client("plans").await.assert_status(200);
}

/// Case 4: `--env` substituted any variable, so a document under review could copy
/// `REGISTRY_TOKEN` (or any secret of the pipeline) into a client's name, and so into the
/// registry. Now only `CLIENTS_*` and the names given with `--env-allow`; others by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_04_env_substitution_reads_only_allowed_variables() {
    use crate::documents_cli::{cli, temp_dir, write};
    let dir = temp_dir();
    let file = write(
        &dir,
        "clients.yaml",
        "clients:\n  - client_id: leak\n    client_name: 'leak ${REGISTRY_TOKEN} ${HOME}'\n    \
         require_client_secret: false\n    redirect_uris: ['${CLIENTS_ORIGIN}/cb']\n",
    );
    let file = file.to_str().unwrap();
    let env = [
        ("REGISTRY_TOKEN", "the-pipelines-token-0123456789"),
        ("CLIENTS_ORIGIN", "https://spa.example.com"),
    ];
    // Nothing listens at this URL: refused before anything is sent.
    let run = cli(
        &["plan", "--env", "-f", file, "--url", "http://127.0.0.1:9"],
        &env,
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("REGISTRY_TOKEN, HOME may not be substituted"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("the-pipelines-token"), "{run:?}");
    // Allowed by name, they are read (and the registry is then called: here, unreachable).
    let allowed = cli(
        &[
            "plan",
            "--env",
            "--env-allow",
            "REGISTRY_TOKEN,HOME",
            "-f",
            file,
            "--url",
            "http://127.0.0.1:9",
        ],
        &env,
    )
    .await;
    assert_eq!(allowed.code, 1, "{allowed:?}");
    assert!(
        !allowed.stderr.contains("may not be substituted"),
        "{allowed:?}"
    );
    assert!(allowed.stderr.contains("127.0.0.1:9"), "{allowed:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// Case 8: the SQLite store, its `-wal`/`-shm`, the signing key and backups were created with
/// the process's umask (world-readable on most systems), and `VACUUM INTO` wrote a backup
/// readable before it was restricted. Now each is the owner's only, and the folders made for
/// them too.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_08_files_the_service_makes_are_its_owners_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    let root = std::env::temp_dir().join(format!("registry-modes-{}", uuid::Uuid::new_v4()));
    let store = root.join("data").join("registry.db");
    let key = root.join("keys").join("audit.pem");
    let url = format!("sqlite://{}", store.display());
    let server = crate::process::Server::start_with(
        &url,
        &[("REGISTRY_AUDIT_KEY_FILE", key.to_str().unwrap())],
    )
    .await;
    let (status, _) = server.get("/api/v1/clients").await;
    assert_eq!(status, 200);
    let backup = root.join("backups").join("copy.db");
    std::fs::create_dir_all(backup.parent().unwrap()).unwrap();
    let (done, out, err) =
        crate::process::run_command(&url, &["backup", "--to", backup.to_str().unwrap()]);
    assert!(done.success(), "{out}{err}");
    for file in [
        store.clone(),
        root.join("data").join("registry.db-wal"),
        root.join("data").join("registry.db-shm"),
        key.clone(),
        backup.clone(),
    ] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    for dir in [root.join("data"), root.join("keys")] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    drop(server);
    std::fs::remove_dir_all(root).unwrap();
}

/// Case 12: a signed plan stayed valid for 24 h and re-created a client registered and
/// deleted after it was made. Now a create runs only on the stream version it was planned
/// against (never registered, or deleted at version N); the lifetime is configurable.
async fn case_12_a_plan_replayed_cannot_bring_back_a_client_deleted_since(backend: Backend) {
    use crate::documents::{apply, plan};
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let document = "clients:\n  - client_id: revived\n    client_name: Revived\n    \
                    require_client_secret: false\n    redirect_uris: [https://r.example/cb]\n";
    let made = plan(&app, document, "").await;
    made.assert_status(200);
    let old_plan = made.json();
    // After the plan: the id is registered, then deleted on purpose.
    app.create_client(&registry_tests::spa_client("revived", "Revived"))
        .await
        .assert_status(201);
    app.delete_client("revived").await.assert_status(204);
    let replayed = apply(&app, &json!({ "plan": old_plan })).await;
    replayed.assert_status(200);
    let result = replayed.json();
    assert_eq!(result["complete"], false, "{result}");
    assert_eq!(result["conflicts"][0]["client_id"], "revived", "{result}");
    app.get_client("revived").await.assert_status(404);
    // A plan made now, against the deleted stream, does create it (once).
    let fresh = plan(&app, document, "").await.json();
    let applied = apply(&app, &json!({ "plan": fresh })).await.json();
    assert_eq!(applied["complete"], true, "{applied}");
    app.get_client("revived").await.assert_status(200);
    let again = apply(&app, &json!({ "plan": fresh })).await.json();
    assert_eq!(again["complete"], true, "run again, nothing new: {again}");
}

/// Case 13: by default `octo_api` gave write access, so anyone who could sign in at the
/// identity service (the guide's clients all ask for it) could change clients. Now nothing is
/// mapped by default: a clear "no role" page, and no session.
async fn case_13_signing_in_gives_no_role_without_a_mapping(backend: Backend) {
    use crate::sign_in::{alice, callback, cookie_of, to_provider_and_back};
    use registry_tests::idp::Idp;
    let idp = Idp::start(alice()).await;
    let issuer = idp.issuer.clone();
    let app = TestApp::spawn_with(backend, move |c| {
        c.oidc_issuer = Some(issuer);
        c.oidc_client_id = Some("registry-screens".to_owned());
    })
    .await;
    let (path, cookie) = to_provider_and_back(&app).await;
    let refused = callback(&app, &path, Some(&cookie)).await;
    refused.assert_status(403);
    let page = String::from_utf8_lossy(&refused.body);
    assert!(page.contains("No role in this registry"), "{page}");
    assert!(page.contains("Alice Admin") && page.contains("REGISTRY_JWT_SCOPE_ROLES"));
    assert!(cookie_of(&refused, "__Host-registry-session").is_none());
}

/// Case 13, too: roles from a sign-in held 12 hours whatever the identity service decided
/// meanwhile. Now the session ends with the token the roles came from (its `expires_in`,
/// 300 s at the test provider), and the next page signs in again through the identity
/// service, which gives the roles as they are then.
async fn case_13_roles_are_checked_again_every_token_lifetime(backend: Backend) {
    use crate::sign_in::{alice, app_with, callback, cookie_of, to_provider_and_back};
    use registry_tests::idp::Idp;
    let idp = Idp::start(alice()).await;
    let app = app_with(&idp, backend).await;
    let (path, cookie) = to_provider_and_back(&app).await;
    let signed = callback(&app, &path, Some(&cookie)).await;
    signed.assert_status(200);
    let set = signed
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("__Host-registry-session="))
        .unwrap();
    assert!(set.contains("Max-Age=300"), "{set}");
    let lifetimes = app
        .scalars("select absolute_expires_at - last_seen_at from ui_sessions")
        .await;
    assert_eq!(lifetimes, [300]);
    // The token's lifetime passes.
    app.execute("update ui_sessions set absolute_expires_at = last_seen_at - 1")
        .await;
    let session = cookie_of(&signed, "__Host-registry-session").unwrap();
    let page = app
        .call(Method::GET, "/clients?search=octo")
        .anonymous()
        .header("cookie", session)
        .send()
        .await;
    page.assert_status(303);
    assert_eq!(
        page.header("location"),
        Some("/oidc/login?next=%2Fclients%3Fsearch%3Docto")
    );
}

/// `registry_snapshots_rejected_total` of the app's `/metrics`.
async fn rejected_snapshots(app: &TestApp) -> u64 {
    let metrics = app.call(Method::GET, "/metrics").anonymous().send().await;
    String::from_utf8_lossy(&metrics.body)
        .lines()
        .find_map(|l| l.strip_prefix("registry_snapshots_rejected_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

/// The stored snapshot of `client_id`, as JSON text.
async fn snapshot_text(app: &TestApp, client_id: &str) -> String {
    use registry_commands::Database;
    const SQL: &str = "select cast(state as text) from aggregate_snapshots where aggregate_id = $1";
    match &app.database {
        Database::Postgres(pool) => {
            sqlx::query_scalar(SQL)
                .bind(client_id)
                .fetch_one(pool)
                .await
        }
        Database::Sqlite(pool) => {
            sqlx::query_scalar(SQL)
                .bind(client_id)
                .fetch_one(pool)
                .await
        }
    }
    .unwrap()
}

/// Case 3: a row of `aggregate_snapshots` edited in SQL changed the live state (a disabled
/// client enabled) with nothing in the sealed log. Now a snapshot carries a MAC under a key
/// outside the database: an edited one is ignored (the events decide), counted and logged.
async fn case_03_a_snapshot_edited_in_the_database_has_no_effect_and_is_reported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = "snapshot-secret-0123456789";
    app.create_client(&service_client("long", Some(secret)))
        .await
        .assert_status(201);
    let mut body = service_client("long", None);
    body["enabled"] = json!(false);
    for version in 2..=101u64 {
        body["client_name"] = json!(format!("v{version}"));
        app.update_client("long", &body, Some(version - 1))
            .await
            .assert_status(200);
    }
    assert!(!verify(&app, "long", secret).await, "disabled");
    // Whoever can write the database enables the client in its snapshot (version 100).
    assert_eq!(
        rejected_snapshots(&app).await,
        0,
        "its own snapshot is trusted"
    );
    let stored = snapshot_text(&app, "long").await.replace("\": ", "\":");
    assert!(stored.contains("\"enabled\":false"), "{stored}");
    let forged = stored.replace("\"enabled\":false", "\"enabled\":true");
    app.execute(&format!(
        "update aggregate_snapshots set state = '{}' where aggregate_id = 'long'",
        forged.replace('\'', "''")
    ))
    .await;
    assert!(
        !verify(&app, "long", secret).await,
        "the events say disabled"
    );
    let metrics = app.call(Method::GET, "/metrics").anonymous().send().await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.lines()
            .any(|l| l.starts_with("registry_snapshots_rejected_total ") && !l.ends_with(" 0")),
        "counted: {text}"
    );
    assert!(registry_tests::captured_logs().contains("snapshot refused"));
    // The next write stores a signed snapshot again; the client stays as its events say.
    body["client_name"] = json!("after");
    app.update_client("long", &body, Some(101))
        .await
        .assert_status(200);
    assert!(!snapshot_text(&app, "long")
        .await
        .contains("\"enabled\":true"));
    assert!(!verify(&app, "long", secret).await);
}

/// Case 11: five minutes after the identity service's JWKS became unreachable every JWT was
/// refused, and fetches queued behind one another. Now the keys held keep serving (up to a
/// day) while a background fetch with backoff tries again, and an unknown `kid` is fetched
/// for at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_11_a_jwks_outage_does_not_refuse_every_token() {
    use crate::security::{call, claims, fixture, sign, AUDIENCE, ISSUER};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    let up = Arc::new(AtomicBool::new(true));
    let hits = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(tokio::sync::RwLock::new(
        std::fs::read_to_string(fixture("jwks-key1.json")).unwrap(),
    ));
    let jwks = {
        let (up, hits, served) = (up.clone(), hits.clone(), served.clone());
        axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (up, hits, served) = (up.clone(), hits.clone(), served.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    if up.load(Ordering::SeqCst) {
                        Ok(served.read().await.clone())
                    } else {
                        Err(axum::http::StatusCode::SERVICE_UNAVAILABLE)
                    }
                }
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
        c.jwt_jwks_cache_seconds = 1;
        c.jwt_scope_roles = crate::sign_in::SCOPE_ROLES.to_owned();
    })
    .await;
    let token = sign("key1", &claims("octo_api"));
    let list = || call(&app, Some(&token), Method::GET, "/api/v1/clients", None);
    list().await.assert_status(200);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    // The JWKS endpoint goes down, and the keys held grow older than their cache time.
    up.store(false, Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    for _ in 0..20 {
        list().await.assert_status(200);
    }
    registry_tests::eventually(10, "a background fetch", || async {
        hits.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert!(
        hits.load(Ordering::SeqCst) <= 3,
        "one background fetch at a time, with backoff: {}",
        hits.load(Ordering::SeqCst)
    );
    // Back, with a new key: a token signed by it is fetched for at once (unknown kid).
    *served.write().await = std::fs::read_to_string(fixture("jwks-both.json")).unwrap();
    up.store(true, Ordering::SeqCst);
    call(
        &app,
        Some(&sign("key2", &claims("octo_api"))),
        Method::GET,
        "/api/v1/clients",
        None,
    )
    .await
    .assert_status(200);
    server.abort();
}
