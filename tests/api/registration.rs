//! Dynamic client registration (RFC 7591) with initial access tokens and their policies, and
//! the client configuration endpoint (RFC 7592): what a self-registering client sees, what an
//! administrator and an auditor see of it, and the abuse cases (used-up, expired, revoked
//! tokens, floods, oversized bodies, races for the last use).

use axum::http::Method;
use registry_api::auth::api_keys::generate;
use registry_api::auth::Roles;
use registry_tests::{backend_tests, Backend, TestApp, TestResponse};
use serde_json::{json, Value};

backend_tests!(
    registration_is_off_unless_configured,
    a_client_registers_reads_replaces_and_deletes_itself,
    the_policy_is_enforced_and_a_refusal_costs_no_use,
    used_up_expired_revoked_and_unknown_tokens_are_refused,
    two_registrations_racing_for_the_last_use_get_one_client,
    floods_and_oversized_bodies_are_refused_clearly,
    only_registration_admins_manage_initial_access_tokens,
    a_registration_access_token_manages_only_the_registration_it_was_issued_for,
    the_list_filters_clients_registered_dynamically_and_by_which_token,
    the_screens_make_show_and_revoke_initial_access_tokens,
    registrations_abandoned_mid_request_are_whole_or_not_at_all,
    unused_dynamic_registrations_are_pruned_and_the_history_says_so,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.dynamic_registration = true;
        c.public_url = Some("https://registry.example.com".to_owned());
    })
    .await
}

/// An initial access token (its id, its plaintext) with this policy and number of uses.
async fn initial_token(app: &TestApp, max_uses: Value, policy: Value) -> (String, String) {
    let created = app
        .request(
            Method::POST,
            "/api/v1/initial-access-tokens",
            Some(&json!({"description": "Partner onboarding", "max_uses": max_uses, "policy": policy})),
            &[],
        )
        .await;
    created.assert_status(201);
    let body = created.json();
    (
        body["token_id"].as_str().unwrap().to_owned(),
        body["initial_access_token"].as_str().unwrap().to_owned(),
    )
}

/// A call with this bearer token (or none): the security tests' helper, arguments reordered.
async fn with_token(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> TestResponse {
    crate::security::call(app, token, method, path, body).await
}

fn cli_metadata() -> Value {
    json!({
        "client_name": "Partner: sync tool",
        "redirect_uris": ["https://sync.partner.example/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "openid octo_api",
        "contacts": ["dev@partner.example"],
        "software_id": "partner-sync",
        "extension_field_nobody_knows": true,
    })
}

#[track_caller]
fn assert_oauth_error(response: &TestResponse, status: u16, error: &str) -> String {
    response.assert_status(status);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json();
    assert_eq!(body["error"], error, "{body}");
    body["error_description"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn registration_is_off_unless_configured(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = with_token(
        &app,
        Method::POST,
        "/register",
        Some("x"),
        Some(&cli_metadata()),
    )
    .await;
    response.assert_status(404);
}

async fn a_client_registers_reads_replaces_and_deletes_itself(backend: Backend) {
    let app = app(backend).await;
    let (token_id, token) = initial_token(&app, json!(1), json!({})).await;
    let registered = with_token(
        &app,
        Method::POST,
        "/register",
        Some(&token),
        Some(&cli_metadata()),
    )
    .await;
    registered.assert_status(201);
    assert_eq!(registered.header("cache-control"), Some("no-store"));
    let body = registered.json();
    let client_id = body["client_id"].as_str().unwrap().to_owned();
    let secret = body["client_secret"]
        .as_str()
        .expect("a secret, once")
        .to_owned();
    let access = body["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(body["client_secret_expires_at"], 0);
    assert!(body["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(
        body["registration_client_uri"],
        format!("https://registry.example.com/register/{client_id}")
    );
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(body["scope"], "openid octo_api");
    assert_eq!(body["response_types"], json!(["code"]));
    assert_eq!(body["contacts"], json!(["dev@partner.example"]));

    // The administrator sees an ordinary client, with refresh tokens, whose history says which
    // token registered it; the secret verifies.
    let admin_view = app.get_client(&client_id).await.json();
    assert_eq!(admin_view["offline_access"], true);
    assert_eq!(admin_view["require_pkce"], true);
    assert!(crate::attacks::verify(&app, &client_id, &secret).await);
    let history = app
        .get_json(&format!("/api/v1/clients/{client_id}/history"))
        .await;
    let first = &history["events"][0];
    assert_eq!(
        first["actor"],
        format!("initial-access-token:{token_id}"),
        "{history}"
    );
    assert_eq!(first["reason"], "dynamic client registration (RFC 7591)");
    let token_view = app
        .get_json(&format!("/api/v1/initial-access-tokens/{token_id}"))
        .await;
    assert_eq!(token_view["uses"], 1);
    assert_eq!(token_view["usable"], false, "used up");
    assert_eq!(token_view["registered_clients"], json!([client_id]));
    assert!(
        !token_view.to_string().contains(&token),
        "never the token again"
    );

    // RFC 7592: read, replace (a new access token; the old one stops), delete.
    let path = format!("/register/{client_id}");
    let read = with_token(&app, Method::GET, &path, Some(&access), None).await;
    read.assert_status(200);
    assert!(read.json().get("client_secret").is_none());
    assert!(read.json().get("registration_access_token").is_none());
    let mut replaced = cli_metadata();
    replaced["client_id"] = json!(client_id);
    replaced["client_name"] = json!("Partner: sync tool 2");
    let put = with_token(&app, Method::PUT, &path, Some(&access), Some(&replaced)).await;
    put.assert_status(200);
    let renewed = put.json()["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(renewed, access);
    assert_eq!(
        app.get_client(&client_id).await.json()["client_name"],
        "Partner: sync tool 2"
    );
    assert_oauth_error(
        &with_token(&app, Method::GET, &path, Some(&access), None).await,
        401,
        "invalid_token",
    );
    let wrong_id = with_token(
        &app,
        Method::PUT,
        &path,
        Some(&renewed),
        Some(&json!({"client_id": "someone-else", "client_name": "X", "redirect_uris": ["https://a.example/cb"]})),
    )
    .await;
    assert_oauth_error(&wrong_id, 400, "invalid_client_metadata");
    with_token(&app, Method::DELETE, &path, Some(&renewed), None)
        .await
        .assert_status(204);
    app.get_client(&client_id).await.assert_status(404);
    assert_oauth_error(
        &with_token(&app, Method::GET, &path, Some(&renewed), None).await,
        401,
        "invalid_token",
    );
    let history = app
        .get_json(&format!("/api/v1/clients/{client_id}/history"))
        .await;
    let actors: Vec<&str> = (history["events"].as_array().unwrap().iter())
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    let own = format!("registration:{client_id}");
    assert_eq!(actors[1..], [own.as_str(), own.as_str()], "{history}");
}

async fn the_policy_is_enforced_and_a_refusal_costs_no_use(backend: Backend) {
    let app = app(backend).await;
    let policy = json!({
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods": ["none", "private_key_jwt"],
        "redirect_uri_patterns": ["https://*.partner.example/callback"],
        "scopes": ["openid", "octo_api"],
        "client_name_prefix": "Partner: ",
        "hold_for_approval": true,
        "refuse_findings_of": "oauth2.1",
    });
    let (token_id, token) = initial_token(&app, json!(5), policy).await;
    // A public client with refresh tokens is an OAuth 2.1 must finding: the policy's example
    // asks for none.
    let cli_metadata = || {
        let mut metadata = cli_metadata();
        metadata["grant_types"] = json!(["authorization_code"]);
        metadata
    };
    let register = |metadata: Value| {
        let (app, token) = (&app, token.clone());
        async move {
            with_token(
                app,
                Method::POST,
                "/register",
                Some(&token),
                Some(&metadata),
            )
            .await
        }
    };
    let mut evil = cli_metadata();
    evil["token_endpoint_auth_method"] = json!("none");
    evil["redirect_uris"] = json!(["https://evil.example/callback"]);
    let text = assert_oauth_error(&register(evil).await, 400, "invalid_redirect_uri");
    assert!(text.contains("redirect_uris[0]"), "{text}");
    let mut secret_method = cli_metadata();
    secret_method["scope"] = json!("openid admin");
    let text = assert_oauth_error(
        &register(secret_method).await,
        400,
        "invalid_client_metadata",
    );
    assert!(
        text.contains("token_endpoint_auth_method") && text.contains("scope"),
        "{text}"
    );
    let mut implicit = cli_metadata();
    implicit["response_types"] = json!(["token"]);
    assert_oauth_error(&register(implicit).await, 400, "invalid_client_metadata");
    let mut statement = cli_metadata();
    statement["software_statement"] = json!("eyJhbGciOiJub25lIn0.e30.");
    assert_oauth_error(
        &register(statement).await,
        400,
        "invalid_software_statement",
    );
    let mut typed = cli_metadata();
    typed["redirect_uris"] = json!("https://sync.partner.example/callback");
    let text = assert_oauth_error(&register(typed).await, 400, "invalid_client_metadata");
    assert!(text.contains("redirect_uris"), "{text}");
    let token_view = app
        .get_json(&format!("/api/v1/initial-access-tokens/{token_id}"))
        .await;
    assert_eq!(token_view["uses"], 0, "refusals use nothing");

    // Within the policy: registered, held for approval (disabled) until an admin enables it.
    let mut public = cli_metadata();
    public["token_endpoint_auth_method"] = json!("none");
    let registered = register(public).await;
    registered.assert_status(201);
    let body = registered.json();
    assert!(
        body.get("client_secret").is_none(),
        "a public client has none"
    );
    assert_eq!(body["enabled"], false);
    let client_id = body["client_id"].as_str().unwrap();
    assert_eq!(app.get_client(client_id).await.json()["enabled"], false);
    // Its own update cannot enable it, nor leave the policy.
    let access = body["registration_access_token"].as_str().unwrap();
    let mut replaced = cli_metadata();
    replaced["token_endpoint_auth_method"] = json!("none");
    replaced["enabled"] = json!(true);
    replaced["redirect_uris"] = json!(["https://elsewhere.example/callback"]);
    let put = with_token(
        &app,
        Method::PUT,
        &format!("/register/{client_id}"),
        Some(access),
        Some(&replaced),
    )
    .await;
    assert_oauth_error(&put, 400, "invalid_redirect_uri");
    replaced["redirect_uris"] = json!(["https://other.partner.example/callback"]);
    let put = with_token(
        &app,
        Method::PUT,
        &format!("/register/{client_id}"),
        Some(access),
        Some(&replaced),
    )
    .await;
    put.assert_status(200);
    assert_eq!(put.json()["enabled"], false, "still held");
    // Approved, then changed by itself: held again until approved again.
    let access = put.json()["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let enabled = app
        .call(Method::PATCH, &format!("/api/v1/clients/{client_id}"))
        .body(
            "application/merge-patch+json",
            json!({"enabled": true}).to_string(),
        )
        .send()
        .await;
    enabled.assert_status(200);
    replaced["redirect_uris"] = json!(["https://third.partner.example/callback"]);
    let put = with_token(
        &app,
        Method::PUT,
        &format!("/register/{client_id}"),
        Some(&access),
        Some(&replaced),
    )
    .await;
    put.assert_status(200);
    assert_eq!(
        app.get_client(client_id).await.json()["enabled"],
        false,
        "held again"
    );
    // A redirect URI not written as parsers read it cannot slip past a pattern.
    let mut sneaky = cli_metadata();
    sneaky["token_endpoint_auth_method"] = json!("none");
    sneaky["redirect_uris"] = json!(["https://evil%2Ecom\\.partner.example/callback"]);
    let text = assert_oauth_error(&register(sneaky).await, 400, "invalid_redirect_uri");
    assert!(text.contains("normal form"), "{text}");
}

async fn used_up_expired_revoked_and_unknown_tokens_are_refused(backend: Backend) {
    let app = app(backend).await;
    let (_, once) = initial_token(&app, json!(1), json!({})).await;
    with_token(
        &app,
        Method::POST,
        "/register",
        Some(&once),
        Some(&cli_metadata()),
    )
    .await
    .assert_status(201);
    let again = with_token(
        &app,
        Method::POST,
        "/register",
        Some(&once),
        Some(&cli_metadata()),
    )
    .await;
    assert_oauth_error(&again, 401, "invalid_token");
    assert_eq!(
        again.header("www-authenticate"),
        Some("Bearer error=\"invalid_token\"")
    );
    assert_oauth_error(
        &with_token(&app, Method::POST, "/register", None, Some(&cli_metadata())).await,
        401,
        "invalid_token",
    );
    assert_oauth_error(
        &with_token(
            &app,
            Method::POST,
            "/register",
            Some("iat_made-up"),
            Some(&cli_metadata()),
        )
        .await,
        401,
        "invalid_token",
    );
    // The admin token is not an initial access token.
    assert_oauth_error(
        &with_token(
            &app,
            Method::POST,
            "/register",
            Some(registry_tests::ADMIN_TOKEN),
            Some(&cli_metadata()),
        )
        .await,
        401,
        "invalid_token",
    );
    let (revoked_id, revoked) = initial_token(&app, Value::Null, json!({})).await;
    app.request(
        Method::DELETE,
        &format!("/api/v1/initial-access-tokens/{revoked_id}"),
        None,
        &[],
    )
    .await
    .assert_status(204);
    assert_oauth_error(
        &with_token(
            &app,
            Method::POST,
            "/register",
            Some(&revoked),
            Some(&cli_metadata()),
        )
        .await,
        401,
        "invalid_token",
    );
    let (expired_id, expired) = initial_token(&app, Value::Null, json!({})).await;
    app.execute(&format!(
        "update initial_access_tokens set expires_at = 1 where token_id = '{expired_id}'"
    ))
    .await;
    assert_oauth_error(
        &with_token(
            &app,
            Method::POST,
            "/register",
            Some(&expired),
            Some(&cli_metadata()),
        )
        .await,
        401,
        "invalid_token",
    );
    let list = app.get_json("/api/v1/initial-access-tokens").await;
    assert_eq!(list["tokens"].as_array().unwrap().len(), 3);
    assert!(
        list["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["usable"] == false),
        "{list}"
    );
}

async fn two_registrations_racing_for_the_last_use_get_one_client(backend: Backend) {
    let app = app(backend).await;
    let (token_id, token) = initial_token(&app, json!(1), json!({})).await;
    let metadata = cli_metadata();
    let second = app
        .second_process_with(|c| c.dynamic_registration = true)
        .await;
    let (a, b) = tokio::join!(
        with_token(
            &app,
            Method::POST,
            "/register",
            Some(&token),
            Some(&metadata)
        ),
        with_token(
            &second,
            Method::POST,
            "/register",
            Some(&token),
            Some(&metadata)
        ),
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 401], "one use, one client");
    let token_view = app
        .get_json(&format!("/api/v1/initial-access-tokens/{token_id}"))
        .await;
    assert_eq!(token_view["uses"], 1);
    assert_eq!(
        token_view["registered_clients"].as_array().unwrap().len(),
        1
    );
}

async fn floods_and_oversized_bodies_are_refused_clearly(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.dynamic_registration = true;
        c.registration_rate_per_minute = 3;
    })
    .await;
    let (_, token) = initial_token(&app, Value::Null, json!({})).await;
    let huge =
        json!({"client_name": "x".repeat(256 * 1024), "redirect_uris": ["https://a.example/cb"]});
    let refused = with_token(&app, Method::POST, "/register", Some(&token), Some(&huge)).await;
    assert_oauth_error(&refused, 413, "invalid_request");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = with_token(
            &app,
            Method::POST,
            "/register",
            Some(&token),
            Some(&cli_metadata()),
        )
        .await;
        statuses.push(response.status.as_u16());
        if response.status.as_u16() == 429 {
            let retry: u64 = response.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry), "{retry}");
            assert_oauth_error(&response, 429, "temporarily_unavailable");
        }
    }
    // The oversized body took one of the three.
    assert_eq!(statuses, [201, 201, 429, 429]);
}

async fn only_registration_admins_manage_initial_access_tokens(backend: Backend) {
    let mut lines = String::new();
    let mut make = |name: &str, roles: &str| {
        let (key, line) = generate(name, Roles::parse(roles).unwrap());
        lines.push_str(&line);
        lines.push('\n');
        key
    };
    let writer = make("writer", "clients:write,clients:read,audit:read");
    let registrar = make("registrar", "registration:admin");
    let app = TestApp::spawn_with(backend, |c| {
        c.api_keys = Some(lines.clone());
        c.dynamic_registration = true;
    })
    .await;
    let body = json!({"description": "CI pipeline", "expires_in": 3600});
    let denied = with_token(
        &app,
        Method::POST,
        "/api/v1/initial-access-tokens",
        Some(&writer),
        Some(&body),
    )
    .await;
    denied.assert_status(403);
    with_token(
        &app,
        Method::GET,
        "/api/v1/initial-access-tokens",
        Some(&writer),
        None,
    )
    .await
    .assert_status(403);
    let created = with_token(
        &app,
        Method::POST,
        "/api/v1/initial-access-tokens",
        Some(&registrar),
        Some(&body),
    )
    .await;
    created.assert_status(201);
    assert_eq!(created.json()["created_by"], "registrar");
    assert_eq!(created.json()["max_uses"], 1, "one use unless said");
    let bad = json!({"description": "", "expires_in": 5, "max_uses": 0,
        "policy": {"grant_types": ["implicit"], "redirect_uri_patterns": ["https://*.com/cb"], "refuse_findings_of": "fapi9"}});
    let refused = with_token(
        &app,
        Method::POST,
        "/api/v1/initial-access-tokens",
        Some(&registrar),
        Some(&bad),
    )
    .await;
    let fields = refused.assert_problem(422, "validation_failed");
    assert_eq!(
        fields,
        [
            "description",
            "expires_in",
            "max_uses",
            "policy.grant_types[0]",
            "policy.refuse_findings_of",
            "policy.redirect_uri_patterns[0]"
        ]
    );
}

/// The pruner deletes a dynamically registered client with a secret that has not been used
/// for the configured days — as an event of its own, once even with two processes pruning —
/// and keeps one used since, and a public one (whose use the registry cannot see).
async fn unused_dynamic_registrations_are_pruned_and_the_history_says_so(backend: Backend) {
    use registry_commands::pruner::{prune_unused_registrations, Pruned, PRUNER};
    let app = app(backend).await;
    let (token_id, token) = initial_token(&app, Value::Null, json!({})).await;
    let mut ids = Vec::new();
    let mut secrets = Vec::new();
    for public in [false, false, true] {
        let mut metadata = cli_metadata();
        if public {
            metadata["token_endpoint_auth_method"] = json!("none");
            metadata["grant_types"] = json!(["authorization_code"]);
        }
        let registered = with_token(
            &app,
            Method::POST,
            "/register",
            Some(&token),
            Some(&metadata),
        )
        .await;
        registered.assert_status(201);
        ids.push(registered.json()["client_id"].as_str().unwrap().to_owned());
        secrets.push(
            registered.json()["client_secret"]
                .as_str()
                .map(str::to_owned),
        );
    }
    let (unused, used, public) = (&ids[0], &ids[1], &ids[2]);
    app.execute("update registration_access_tokens set issued_at = 1")
        .await;
    assert!(crate::attacks::verify(&app, used, secrets[1].as_deref().unwrap()).await);
    app.commands.last_authenticated().flush().await.unwrap();

    let second = app
        .second_process_with(|c| c.dynamic_registration = true)
        .await;
    let now = registry_api::extract::now();
    let (a, b) = tokio::join!(
        prune_unused_registrations(&app.commands, &app.database, now, 30, &|| {}),
        prune_unused_registrations(&second.commands, &second.database, now, 30, &|| {}),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.deleted + b.deleted, 1, "{a:?} {b:?}");
    assert_eq!(a.unseen, 1);
    app.get_client(unused).await.assert_status(404);
    app.get_client(used).await.assert_status(200);
    app.get_client(public).await.assert_status(200);
    let history = app
        .get_json(&format!("/api/v1/clients/{unused}/history"))
        .await;
    let last = history["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["event_type"], "ClientDeleted");
    assert_eq!(last["actor"], PRUNER);
    assert_eq!(
        last["reason"],
        "registered dynamically and not authenticated for 30 days"
    );
    let token_view = app
        .get_json(&format!("/api/v1/initial-access-tokens/{token_id}"))
        .await;
    assert_eq!(
        token_view["registered_clients"].as_array().unwrap().len(),
        2
    );
    let again = prune_unused_registrations(&app.commands, &app.database, now, 30, &|| {}).await;
    assert_eq!(
        again.unwrap(),
        Pruned {
            deleted: 0,
            unseen: 1
        }
    );
}

/// An administrator deletes a self-registered client and later registers the id again: the
/// old registration access token is for the old registration and manages nothing now.
async fn a_registration_access_token_manages_only_the_registration_it_was_issued_for(
    backend: Backend,
) {
    let app = app(backend).await;
    let (_, token) = initial_token(&app, json!(1), json!({})).await;
    let registered = with_token(
        &app,
        Method::POST,
        "/register",
        Some(&token),
        Some(&cli_metadata()),
    )
    .await;
    registered.assert_status(201);
    let body = registered.json();
    let client_id = body["client_id"].as_str().unwrap().to_owned();
    let access = body["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete_client(&client_id).await.assert_status(204);
    let mut again = registry_tests::service_client(&client_id, None);
    again["client_name"] = json!("The administrator's own");
    app.create_client(&again).await.assert_status(201);
    let path = format!("/register/{client_id}");
    assert_oauth_error(
        &with_token(&app, Method::GET, &path, Some(&access), None).await,
        401,
        "invalid_token",
    );
    assert_oauth_error(
        &with_token(&app, Method::DELETE, &path, Some(&access), None).await,
        401,
        "invalid_token",
    );
    assert_eq!(
        app.get_client(&client_id).await.json()["client_name"],
        "The administrator's own"
    );
}

async fn the_list_filters_clients_registered_dynamically_and_by_which_token(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.dynamic_registration = true;
        c.seed_default_clients = false;
    })
    .await;
    app.follow_feed().await;
    let (first_id, first) = initial_token(&app, Value::Null, json!({})).await;
    let (_, second) = initial_token(&app, Value::Null, json!({})).await;
    for token in [&first, &first, &second] {
        with_token(
            &app,
            Method::POST,
            "/register",
            Some(token),
            Some(&cli_metadata()),
        )
        .await
        .assert_status(201);
    }
    app.create_client(&registry_tests::service_client("admin-made", None))
        .await
        .assert_status(201);
    let ids = |page: &Value| -> Vec<String> {
        (page["clients"].as_array().unwrap().iter())
            .map(|c| c["client_id"].as_str().unwrap().to_owned())
            .collect()
    };
    registry_tests::eventually(10, "the index has every client", || async {
        app.get_json("/api/v1/clients").await["total"] == 4
    })
    .await;
    let any = app.get_json("/api/v1/clients?registered_by=any").await;
    assert_eq!(any["total"], 3, "{any}");
    assert!(!ids(&any).contains(&"admin-made".to_owned()));
    let by_first = app
        .get_json(&format!("/api/v1/clients?registered_by={first_id}&limit=1"))
        .await;
    assert_eq!(by_first["total"], 2, "{by_first}");
    let cursor = by_first["next_cursor"].as_str().unwrap().to_owned();
    let next = app
        .get_json(&format!(
            "/api/v1/clients?registered_by={first_id}&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(ids(&next).len(), 1);
    assert_ne!(ids(&next), ids(&by_first), "pages do not repeat");
    let searched = app
        .get_json("/api/v1/clients?registered_by=any&search=admin")
        .await;
    assert_eq!(searched["total"], 0);
    let unknown = app
        .get_json("/api/v1/clients?registered_by=iat-unknown")
        .await;
    assert_eq!(unknown["total"], 0);
}

/// The screens of a `registration:admin`: a token made (shown once, working at once), listed,
/// its policy and clients shown, revoked; errors beside the form; other roles refused.
async fn the_screens_make_show_and_revoke_initial_access_tokens(backend: Backend) {
    let mut lines = String::new();
    let (reader, line) = generate(
        "reader",
        Roles::parse("clients:read,clients:write").unwrap(),
    );
    lines.push_str(&line);
    let app = TestApp::spawn_with(backend, |c| {
        c.dynamic_registration = true;
        c.api_keys = Some(lines.clone());
    })
    .await;
    let admin = app.sign_in(registry_tests::ADMIN_TOKEN).await;
    let page = String::from_utf8(admin.get("/registration").await.body.clone()).unwrap();
    assert!(page.contains("No initial access token yet"), "{page}");
    let refused = admin
        .post(
            "/registration",
            &[("description", ""), ("days", "0"), ("max_uses", "1")],
        )
        .await;
    refused.assert_status(422);
    let text = String::from_utf8(refused.body.clone()).unwrap();
    assert!(
        text.contains("description") && text.contains("expires_in"),
        "{text}"
    );
    let made = admin
        .post(
            "/registration",
            &[
                ("description", "ACME onboarding"),
                ("days", "7"),
                ("max_uses", "2"),
                ("grant_types", "authorization_code"),
                ("methods", "none"),
                ("patterns", "https://*.partner.example/callback"),
                ("scopes", "openid"),
                ("refuse", "oauth2.1"),
            ],
        )
        .await;
    made.assert_status(200);
    let text = String::from_utf8(made.body.clone()).unwrap();
    let token = text
        .split("value=\"")
        .find_map(|rest| {
            rest.strip_prefix("iat_")
                .map(|t| format!("iat_{}", &t[..t.find('"').unwrap()]))
        })
        .expect("the token on the page");
    let mut metadata = cli_metadata();
    metadata["token_endpoint_auth_method"] = json!("none");
    metadata["grant_types"] = json!(["authorization_code"]);
    metadata["scope"] = json!("openid");
    let registered = with_token(
        &app,
        Method::POST,
        "/register",
        Some(&token),
        Some(&metadata),
    )
    .await;
    registered.assert_status(201);
    let client_id = registered.json()["client_id"].as_str().unwrap().to_owned();
    let list = String::from_utf8(admin.get("/registration").await.body.clone()).unwrap();
    assert!(
        list.contains("ACME onboarding") && list.contains("1 of 2") && list.contains("Usable"),
        "{list}"
    );
    let token_id = app.get_json("/api/v1/initial-access-tokens").await["tokens"][0]["token_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let detail = String::from_utf8(
        admin
            .get(&format!("/registration/{token_id}"))
            .await
            .body
            .clone(),
    )
    .unwrap();
    assert!(
        detail.contains("https://*.partner.example/callback") && detail.contains(&client_id),
        "{detail}"
    );
    assert!(!detail.contains(&token), "never the token again");
    admin
        .post(&format!("/registration/{token_id}/revoke"), &[])
        .await
        .assert_status(303);
    let again = with_token(
        &app,
        Method::POST,
        "/register",
        Some(&token),
        Some(&metadata),
    )
    .await;
    assert_oauth_error(&again, 401, "invalid_token");
    // Without the role: refused, and the header has no link to it.
    let other = app.sign_in(&reader).await;
    assert_eq!(other.get("/registration").await.status.as_u16(), 403);
    let clients = String::from_utf8(other.get("/clients").await.body.clone()).unwrap();
    assert!(!clients.contains("href=\"/registration\""));
}

/// Callers that go away at any moment of a registration: each use of the token has its
/// client and its access token, every client its access token — nothing half-written.
async fn registrations_abandoned_mid_request_are_whole_or_not_at_all(backend: Backend) {
    let app = app(backend).await;
    let (token_id, token) = initial_token(&app, Value::Null, json!({})).await;
    let metadata = cli_metadata();
    for micros in [0u64, 200, 1_000, 3_000, 10_000, 30_000, 100_000] {
        let call = with_token(
            &app,
            Method::POST,
            "/register",
            Some(&token),
            Some(&metadata),
        );
        let _ = tokio::time::timeout(std::time::Duration::from_micros(micros), call).await;
    }
    // The writes that began finish on their own; then everything adds up: each use has its
    // client and access token, and each access token its client.
    let consistent = || async {
        let token_view = app
            .get_json(&format!("/api/v1/initial-access-tokens/{token_id}"))
            .await;
        let ids = token_view["registered_clients"].as_array().unwrap().clone();
        let rows = app
            .scalars("select count(*) from registration_access_tokens")
            .await;
        let mut readable = true;
        for id in &ids {
            readable &= app.get_client(id.as_str().unwrap()).await.status.as_u16() == 200;
        }
        token_view["uses"] == ids.len() && rows == [ids.len() as i64] && readable
    };
    registry_tests::eventually(30, "the abandoned writes settle whole", consistent).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(consistent().await, "and stay so");
}
