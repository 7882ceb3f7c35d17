//! The admin screens over plain HTTP, as a browser without JavaScript uses them: sessions,
//! CSRF, forms, roles. (The browser tests drive the same screens in Chromium.)

use axum::http::Method;
use registry_api::auth::api_keys::generate;
use registry_api::auth::Roles;
use registry_tests::{backend_tests, input_value, spa_client, Backend, TestApp, ADMIN_TOKEN};

backend_tests!(
    signing_in_sets_a_host_only_strict_cookie_and_the_api_ignores_it,
    every_state_change_needs_the_token_and_the_same_origin,
    a_form_comes_back_with_what_was_typed_and_every_error,
    a_new_secret_is_shown_once_and_a_resent_form_changes_nothing,
    delete_needs_the_client_id_typed,
    a_save_that_lost_a_race_says_who_changed_what,
    a_read_only_session_is_offered_no_change_and_refused_one,
    sessions_end_when_idle_and_on_sign_out,
    a_session_ends_with_its_key_and_no_access_token_starts_one,
    the_delete_dialog_says_when_the_client_last_authenticated,
    the_newest_authentication_wins_whichever_process_writes_last,
    the_form_edits_the_description_and_an_older_form_keeps_it,
    the_form_sets_a_key_client_and_never_shows_a_private_key_again,
);

fn html(response: &registry_tests::TestResponse) -> String {
    String::from_utf8_lossy(&response.body).into_owned()
}

async fn signing_in_sets_a_host_only_strict_cookie_and_the_api_ignores_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Not signed in: to the sign-in page, then back.
    let list = app
        .call(Method::GET, "/clients?search=octo")
        .anonymous()
        .send()
        .await;
    list.assert_status(303);
    assert_eq!(
        list.header("location"),
        Some("/sign-in?next=%2Fclients%3Fsearch%3Docto")
    );

    let wrong = app
        .call(Method::POST, "/sign-in")
        .anonymous()
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body("", "token=not-a-token&next=%2Fclients")
        .send()
        .await;
    wrong.assert_status(401);
    assert!(html(&wrong).contains("This token was not accepted"));
    assert!(wrong.header("set-cookie").is_none());

    let signed = app
        .call(Method::POST, "/sign-in")
        .anonymous()
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body("", format!("token={ADMIN_TOKEN}&next=%2F%2Fevil.example"))
        .send()
        .await;
    signed.assert_status(303);
    assert_eq!(
        signed.header("location"),
        Some("/clients"),
        "no open redirect"
    );
    let cookie = signed.header("set-cookie").unwrap();
    for attribute in [
        "__Host-registry-session=",
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Domain"));
    let session = cookie.split(';').next().unwrap();

    // The session id is not stored, only its digest.
    let id = session.split_once('=').unwrap().1;
    assert!(!app.dump_tables().await.contains(id));

    // The screens take the cookie; the API never does.
    let page = app
        .call(Method::GET, "/clients")
        .anonymous()
        .header("cookie", session)
        .send()
        .await;
    page.assert_status(200);
    assert!(html(&page).contains("octo-cli"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let api = app
        .call(Method::GET, "/api/v1/clients")
        .anonymous()
        .header("cookie", session)
        .send()
        .await;
    api.assert_problem(401, "unauthorized");
    assert_eq!(
        app.call(Method::GET, "/api/v1/clients")
            .anonymous()
            .send()
            .await
            .header("content-security-policy"),
        Some("default-src 'none'; frame-ancestors 'none'"),
        "the API's headers are unchanged"
    );
}

async fn every_state_change_needs_the_token_and_the_same_origin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let screens = app.sign_in(ADMIN_TOKEN).await;
    let fields = [
        ("client_id", "csrf-target"),
        ("client_name", "Target"),
        ("grant_types", "client_credentials"),
        ("require_client_secret", "on"),
        ("enabled", "on"),
        ("action", "save"),
    ];
    let with_token: Vec<(&str, &str)> = [("csrf", screens.csrf.as_str())]
        .into_iter()
        .chain(fields)
        .collect();
    // No token; a wrong one; the right one from another site; no origin at all.
    screens
        .post_raw("/clients", &fields, Some("same-origin"))
        .await
        .assert_status(403);
    let mut wrong = with_token.clone();
    wrong[0].1 = "forged";
    screens
        .post_raw("/clients", &wrong, Some("same-origin"))
        .await
        .assert_status(403);
    screens
        .post_raw("/clients", &with_token, Some("cross-site"))
        .await
        .assert_status(403);
    screens
        .post_raw("/clients", &with_token, None)
        .await
        .assert_status(403);
    app.get_client("csrf-target").await.assert_status(404);
    // Sign-in itself is refused from another site (login CSRF).
    app.call(Method::POST, "/sign-in")
        .anonymous()
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .body("", format!("token={ADMIN_TOKEN}"))
        .send()
        .await
        .assert_status(403);
    // All right: registered, the secret shown once.
    let created = screens
        .post_raw("/clients", &with_token, Some("same-origin"))
        .await;
    created.assert_status(200);
    assert!(html(&created).contains("Copy this secret now"));
    app.get_client("csrf-target").await.assert_status(200);
}

async fn a_form_comes_back_with_what_was_typed_and_every_error(backend: Backend) {
    let keys = generate("alice", Roles::all());
    let app = TestApp::spawn_with(backend, |c| c.api_keys = Some(keys.1.clone())).await;
    let screens = app.sign_in(&keys.0).await;
    let mut fields = vec![
        ("client_id", "studio"),
        ("client_name", "Data Refinery Studio"),
        ("enabled", "on"),
        ("require_pkce", "on"),
        ("grant_types", "authorization_code"),
        ("redirect_uris", "https://studio.example.com/cb"),
        ("redirect_uris", "https://studio.example.com/cb#fragment"),
        ("allowed_cors_origins", "https://studio.example.com/"),
        ("allowed_scopes", "openid"),
        ("reason", "ticket 42"),
    ];
    // "Add" works without JavaScript: the form comes back with one more entry, nothing saved.
    let mut adding = fields.clone();
    adding.push(("action", "add:post_logout_redirect_uris"));
    adding.push(("client_secret", "typed-secret-typed-secret"));
    let added = screens.post("/clients", &adding).await;
    added.assert_status(200);
    assert!(html(&added).contains("id=\"post_logout_redirect_uris-0\""));
    // Everything typed comes back but the secret.
    assert!(!html(&added).contains("typed-secret-typed-secret"));
    assert!(html(&added).contains("type it again"));
    app.get_client("studio").await.assert_status(404);

    fields.push(("action", "save"));
    let refused = screens.post("/clients", &fields).await;
    refused.assert_status(422);
    let page = html(&refused);
    // What was typed is still there, each error beside its entry (the second redirect URI).
    assert!(page.contains("value=\"https://studio.example.com/cb#fragment\""));
    assert!(page.contains("value=\"Data Refinery Studio\""));
    assert!(
        page.contains("redirect_uris[1]"),
        "the summary names the field"
    );
    assert!(page.contains("id=\"redirect_uris-1\""));
    assert!(page.contains("aria-invalid=\"true\""));
    // The CORS error offers the corrected origin in one click.
    let fix = "replace:allowed_cors_origins:0:https://studio.example.com";
    assert!(page.contains(&format!("value=\"{fix}\"")), "{page}");
    let mut fixing: Vec<(&str, &str)> = fields
        .iter()
        .copied()
        .filter(|(name, value)| {
            *name != "action" && *value != "https://studio.example.com/cb#fragment"
        })
        .collect();
    fixing.push(("action", fix));
    let fixed = screens.post("/clients", &fixing).await;
    fixed.assert_status(200);
    assert!(html(&fixed).contains("value=\"https://studio.example.com\""));
    let mut saving: Vec<(&str, &str)> = fixing
        .iter()
        .copied()
        .filter(|(name, _)| *name != "action" && *name != "allowed_cors_origins")
        .collect();
    saving.push(("allowed_cors_origins", "https://studio.example.com"));
    saving.push(("action", "save"));
    let saved = screens.post("/clients", &saving).await;
    saved.assert_status(303);
    let client = app.get_json("/api/v1/clients/studio").await;
    assert_eq!(
        client["allowed_cors_origins"][0],
        "https://studio.example.com"
    );
    assert_eq!(
        client["require_client_secret"], false,
        "the box was left unticked"
    );
    // The person signed in is the actor, the reason is recorded.
    let events = app.events_of("studio").await;
    assert_eq!(events[0].1["actor"], "alice");
    assert_eq!(events[0].1["reason"], "ticket 42");
}

async fn a_new_secret_is_shown_once_and_a_resent_form_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .create_client(&registry_tests::service_client("svc", None))
        .await;
    created.assert_status(201);
    let screens = app.sign_in(ADMIN_TOKEN).await;
    let form = screens.get("/clients/svc/secret").await;
    form.assert_status(200);
    let version = input_value(&html(&form), "version").unwrap();
    let fields = [
        ("version", version.as_str()),
        ("mode", "generate"),
        ("previous_secret_valid_for", "3600"),
    ];
    let shown = screens.post("/clients/svc/secret", &fields).await;
    shown.assert_status(200);
    assert_eq!(shown.header("cache-control"), Some("no-store"));
    let secret = input_value(&html(&shown), "secret").or_else(|| {
        let page = html(&shown);
        let at = page.find("id=\"secret\"")?;
        input_value(&page[at.saturating_sub(200)..], "secret")
    });
    let page = html(&shown);
    let secret = secret.unwrap_or_else(|| {
        let start = page.find("readonly value=\"").map(|i| i + 16).unwrap();
        page[start..].split('"').next().unwrap().to_owned()
    });
    assert_eq!(secret.len(), 43, "{page}");
    let verify = |plaintext: String| {
        let app = &app;
        async move {
            app.request(
                axum::http::Method::POST,
                "/api/v1/clients/svc/secret/verify",
                Some(&serde_json::json!({ "client_secret": plaintext })),
                &[],
            )
            .await
            .json()["valid"]
                .as_bool()
                .unwrap()
        }
    };
    assert!(verify(secret.clone()).await);
    // A grace period past the rule is refused with the API's words, not quietly shortened.
    let too_long = [
        ("version", version.as_str()),
        ("mode", "generate"),
        ("previous_secret_valid_for", "2592001"),
    ];
    let refused = screens.post("/clients/svc/secret", &too_long).await;
    refused.assert_status(422);
    assert!(
        html(&refused).contains("must be at most 2592000 seconds (30 days)"),
        "{}",
        html(&refused)
    );
    let api = app
        .rotate_secret(
            "svc",
            Some(&serde_json::json!({ "previous_secret_valid_for": 2_592_001 })),
        )
        .await;
    api.assert_problem(422, "validation_failed");
    assert!(api
        .json()
        .to_string()
        .contains("must be at most 2592000 seconds (30 days)"));
    // Sent again (a reload of the result): nothing is rotated again, no secret is shown.
    let again = screens.post("/clients/svc/secret", &fields).await;
    again.assert_status(422);
    assert!(!html(&again).contains("Copy this secret now"));
    assert_eq!(app.events_of("svc").await.len(), 2);
    // The secret appears in no stored row and no page of the client.
    assert!(!app.dump_tables().await.contains(&secret));
    assert!(!html(&screens.get("/clients/svc").await).contains(&secret));
}

async fn delete_needs_the_client_id_typed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("doomed", "Doomed"))
        .await
        .assert_status(201);
    let screens = app.sign_in(ADMIN_TOKEN).await;
    let dialog = screens.get("/clients/doomed/delete").await;
    dialog.assert_status(200);
    let page = html(&dialog);
    assert!(page.contains(
        "immediately prevents all applications using that client ID from authenticating"
    ));
    let version = input_value(&page, "version").unwrap();
    let wrong = screens
        .post(
            "/clients/doomed/delete",
            &[("version", &version), ("confirm", "doomed-not")],
        )
        .await;
    wrong.assert_status(422);
    app.get_client("doomed").await.assert_status(200);
    let gone = screens
        .post(
            "/clients/doomed/delete",
            &[
                ("version", &version),
                ("confirm", "doomed"),
                ("reason", "retired"),
            ],
        )
        .await;
    gone.assert_status(303);
    assert_eq!(gone.header("location"), Some("/clients?deleted=doomed"));
    app.get_client("doomed").await.assert_status(404);
    assert_eq!(app.events_of("doomed").await[1].1["reason"], "retired");
    assert!(
        html(&screens.get("/clients?deleted=doomed").await).contains("Client doomed was deleted.")
    );
    // A crafted link cannot put a sentence of its own in the page.
    let crafted = html(
        &screens
            .get("/clients?deleted=x%20was%20compromised.%20Call%20%2B1%20555")
            .await,
    );
    assert!(!crafted.contains("compromised"));
}

async fn a_save_that_lost_a_race_says_who_changed_what(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("raced", "Before"))
        .await
        .assert_status(201);
    let screens = app.sign_in(ADMIN_TOKEN).await;
    let form = screens.get("/clients/raced").await;
    let version = input_value(&html(&form), "version").unwrap();
    // Someone else renames it through the API meanwhile.
    let mut other = spa_client("raced", "Renamed elsewhere");
    other["client_uri"] = serde_json::Value::Null;
    app.request(
        axum::http::Method::PUT,
        "/api/v1/clients/raced",
        Some(&other),
        &[("x-change-reason", "hotfix")],
    )
    .await
    .assert_status(200);
    let lost = screens
        .post(
            "/clients/raced",
            &[
                ("version", &version),
                ("client_name", "Mine"),
                ("enabled", "on"),
                ("grant_types", "authorization_code"),
                ("redirect_uris", "https://studio.example.com/callback"),
                ("action", "save"),
            ],
        )
        .await;
    lost.assert_status(409);
    let page = html(&lost);
    assert!(page.contains("Someone changed this client while you were editing"));
    assert!(
        page.contains("hotfix") && page.contains("Renamed elsewhere"),
        "{page}"
    );
    assert!(page.contains("value=\"Mine\""), "what was typed is kept");
    assert_eq!(
        app.get_json("/api/v1/clients/raced").await["client_name"],
        "Renamed elsewhere"
    );
}

async fn a_read_only_session_is_offered_no_change_and_refused_one(backend: Backend) {
    let (key, line) = generate("auditor", Roles::parse("clients:read").unwrap());
    let app = TestApp::spawn_with(backend, |c| c.api_keys = Some(line.clone())).await;
    let screens = app.sign_in(&key).await;
    let list = html(&screens.get("/clients").await);
    assert!(list.contains("octo-cli"));
    // Nor a history it may not read (audit:read).
    for action in [
        "New Client",
        ">Edit<",
        "/delete",
        "Set New Secret",
        "/history",
    ] {
        assert!(
            !list.contains(action),
            "{action} offered to a read-only session"
        );
    }
    screens.get("/clients/new").await.assert_status(403);
    screens
        .post(
            "/clients/octo-cli/delete",
            &[("version", "1"), ("confirm", "octo-cli")],
        )
        .await
        .assert_status(403);
    app.get_client("octo-cli").await.assert_status(200);

    // htmx asks for a fragment of the list; restoring a page from history (Back), the whole
    // page.
    let fragment = |restore: bool| {
        let mut request = (app.get("/clients?search=octo").anonymous())
            .header("cookie", &screens.cookie)
            .header("hx-request", "true");
        if restore {
            request = request.header("hx-history-restore-request", "true");
        }
        request.send()
    };
    let partial = html(&fragment(false).await);
    assert!(partial.contains("octo-cli") && !partial.contains("<html"));
    let whole = html(&fragment(true).await);
    assert!(whole.contains("octo-cli") && whole.contains("<html"));
}

async fn sessions_end_when_idle_and_on_sign_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let screens = app.sign_in(ADMIN_TOKEN).await;
    screens.get("/clients").await.assert_status(200);
    // Idle past its deadline (moved into the past by hand): gone.
    app.execute("update ui_sessions set expires_at = 0").await;
    screens.get("/clients").await.assert_status(303);

    let screens = app.sign_in(ADMIN_TOKEN).await;
    let out = screens.post("/sign-out", &[]).await;
    out.assert_status(303);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    screens.get("/clients").await.assert_status(303);
}

/// A session begun with an API key lives only while the key does: removed from the
/// configuration (another process started without it), the session is over there; its roles
/// follow the key's. An access token (JWT) cannot begin a session at all: it expires, and a
/// session would outlive it.
async fn a_session_ends_with_its_key_and_no_access_token_starts_one(backend: Backend) {
    let (key, line) = generate("ops", Roles::parse("clients:read,clients:write").unwrap());
    let app = TestApp::spawn_with(backend, |c| c.api_keys = Some(line.clone())).await;
    let screens = app.sign_in(&key).await;
    assert!(html(&screens.get("/clients").await).contains("New Client"));

    // The same key, now with read access only.
    let digest = line.split_whitespace().last().unwrap();
    let narrowed = app
        .second_process_with(|c| c.api_keys = Some(format!("ops clients:read {digest}")))
        .await;
    let page = html(&screens.on(&narrowed).get("/clients").await);
    assert!(page.contains("octo-cli") && !page.contains("New Client"));
    screens
        .on(&narrowed)
        .get("/clients/new")
        .await
        .assert_status(403);

    let removed = app.second_process_with(|c| c.api_keys = None).await;
    screens
        .on(&removed)
        .get("/clients")
        .await
        .assert_status(303);
    // Gone for good, also where the key is still configured.
    screens.get("/clients").await.assert_status(303);

    let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    let refused = app
        .call(Method::POST, "/sign-in")
        .anonymous()
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body("", format!("token={jwt}&next=%2Fclients"))
        .send()
        .await;
    refused.assert_status(401);
    assert!(html(&refused).contains("Access tokens are not accepted here"));
    assert!(refused.header("set-cookie").is_none());
}

/// "Make sure the client is no longer in use before deleting it": the registry notes when a
/// client last passed secret verification (in memory, written in batches) and the delete
/// dialog says so in warning colours when it is recent, in every process.
async fn the_delete_dialog_says_when_the_client_last_authenticated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = "the-secret-of-billing-0123";
    app.create_client(&registry_tests::service_client("billing", Some(secret)))
        .await
        .assert_status(201);
    app.create_client(&registry_tests::service_client("idle", None))
        .await
        .assert_status(201);
    for _ in 0..3 {
        let answer = app
            .request(
                axum::http::Method::POST,
                "/api/v1/clients/billing/secret/verify",
                Some(&serde_json::json!({ "client_secret": secret })),
                &[],
            )
            .await;
        assert_eq!(answer.json()["valid"], true);
    }
    // A wrong secret is not an authentication.
    app.request(
        axum::http::Method::POST,
        "/api/v1/clients/idle/secret/verify",
        Some(&serde_json::json!({ "client_secret": "wrong-wrong-wrong-wrong" })),
        &[],
    )
    .await;
    assert_eq!(
        app.commands.last_authenticated().flush().await.unwrap(),
        1,
        "three verifications of one client: one row written"
    );
    let second = app.second_process().await;
    let screens = second.sign_in(ADMIN_TOKEN).await;
    let dialog = html(&screens.get("/clients/billing/delete").await);
    assert!(dialog.contains("last-seen recent"), "{dialog}");
    assert!(dialog.contains("Last authenticated just now."));
    let idle = html(&screens.get("/clients/idle/delete").await);
    assert!(idle.contains("Never authenticated with a secret"));
    assert!(!idle.contains("last-seen recent"));
    let list = html(&screens.get("/clients?search=billing").await);
    assert!(list.contains("just now"));
}

/// Two processes note successes of the same clients and flush in either order: the table keeps
/// the newest time of each. A flush of more clients than one statement carries writes them all.
async fn the_newest_authentication_wins_whichever_process_writes_last(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let second = app.second_process().await;
    let first_notes = app.commands.last_authenticated();
    let second_notes = second.commands.last_authenticated();
    let ids: Vec<String> = (0..2_500).map(|n| format!("client-{n:04}")).collect();
    for id in &ids {
        first_notes.record(id, 2_000);
        second_notes.record(id, 1_000);
    }
    second_notes.record("client-0007", 3_000);
    assert_eq!(first_notes.flush().await.unwrap(), 2_500);
    assert_eq!(second_notes.flush().await.unwrap(), 2_500);
    let seen = app.second_process().await;
    let found = seen
        .commands
        .last_authenticated()
        .lookup(&ids)
        .await
        .unwrap();
    assert_eq!(found.len(), 2_500, "every client of both flushes is stored");
    assert_eq!(found["client-0007"], 3_000, "the later flush's newer time");
    assert_eq!(
        found["client-0008"], 2_000,
        "an older time written later loses"
    );
    assert_eq!(found["client-2499"], 2_000);
}

/// "About the Application" and "Contacts" on the form: saved with the client, shown again
/// for editing, their errors beside them; a form posted without that section (a page from
/// before it existed) keeps the client's description.
async fn the_form_edits_the_description_and_an_older_form_keeps_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let screens = app.sign_in(ADMIN_TOKEN).await;
    let flows = [
        ("client_id", "partner-cli"),
        ("client_name", "Partner CLI"),
        ("enabled", "on"),
        ("require_pkce", "on"),
        ("grant_types", "authorization_code"),
        ("redirect_uris", "com.example.cli:/callback"),
        ("allowed_scopes", "openid"),
    ];
    let mut described = flows.to_vec();
    described.extend([
        ("application_type", "native"),
        ("logo_uri", "https://partner.example.com/logo.png"),
        ("tos_uri", ""),
        ("policy_uri", "https://partner.example.com/privacy"),
        ("software_id", "partner-cli"),
        ("software_version", "2.4.1"),
        ("contacts", "identity@partner.example.com"),
        ("contacts", "not an address"),
        ("action", "save"),
    ]);
    let refused = screens.post("/clients", &described).await;
    refused.assert_status(422);
    let page = html(&refused);
    assert!(page.contains("contacts[1]"), "the summary names the entry");
    assert!(page.contains("value=\"not an address\""), "kept as typed");
    assert!(
        page.contains("<option value=\"native\" selected>"),
        "{page}"
    );

    described.retain(|(name, value)| *value != "not an address" && *name != "action");
    described.push(("action", "save"));
    screens
        .post("/clients", &described)
        .await
        .assert_status(303);
    let saved = app.get_client("partner-cli").await.json();
    assert_eq!(saved["application_type"], "native");
    assert_eq!(saved["tos_uri"], serde_json::Value::Null, "blank: none");
    assert_eq!(
        saved["contacts"],
        serde_json::json!(["identity@partner.example.com"])
    );
    assert_eq!(saved["software_version"], "2.4.1");
    let form = html(&screens.get("/clients/partner-cli").await);
    assert!(form.contains("value=\"https://partner.example.com/privacy\""));
    assert!(form.contains("value=\"identity@partner.example.com\""));

    // A form without the section (as a page loaded before this build posts it) keeps it.
    let mut older: Vec<(&str, &str)> = flows.to_vec();
    older.retain(|(name, _)| *name != "client_id");
    older.push(("client_name", "Partner CLI, renamed"));
    older.push(("version", "1"));
    older.push(("action", "save"));
    older.retain(|pair| *pair != ("client_name", "Partner CLI"));
    screens
        .post("/clients/partner-cli", &older)
        .await
        .assert_status(303);
    let kept = app.get_client("partner-cli").await.json();
    assert_eq!(kept["client_name"], "Partner CLI, renamed");
    assert_eq!(kept["application_type"], "native");
    assert_eq!(
        kept["contacts"],
        serde_json::json!(["identity@partner.example.com"])
    );

    // Such an older form that comes back (an Add) still keeps them when saved from there.
    let mut posting = registry_tests::service_client("posting", None);
    posting["token_endpoint_auth_method"] = "client_secret_post".into();
    posting["contacts"] = serde_json::json!(["ops@example.com"]);
    app.create_client(&posting).await.assert_status(201);
    let older = [
        ("client_name", "Billing worker"),
        ("require_client_secret", "on"),
        ("enabled", "on"),
        ("require_pkce", "on"),
        ("grant_types", "client_credentials"),
        ("version", "1"),
    ];
    let mut adding = older.to_vec();
    adding.push(("action", "add:allowed_scopes"));
    let again = screens.post("/clients/posting", &adding).await;
    again.assert_status(200);
    let again = html(&again);
    assert!(
        again.contains("<option value=\"keep\" selected>As it is</option>"),
        "{again}"
    );
    assert!(
        !again.contains("id=\"about\""),
        "no description section to reset"
    );
    let mut saving = older.to_vec();
    saving.extend([("token_endpoint_auth_method", "keep"), ("action", "save")]);
    screens
        .post("/clients/posting", &saving)
        .await
        .assert_status(303);
    let kept = app.get_client("posting").await.json();
    assert_eq!(kept["token_endpoint_auth_method"], "client_secret_post");
    assert_eq!(kept["contacts"], serde_json::json!(["ops@example.com"]));
}

/// "Client Keys" on the form: a private_key_jwt client saved with its JWK Set and no secret;
/// a private key pasted by mistake is refused, named, and not sent back in the page.
async fn the_form_sets_a_key_client_and_never_shows_a_private_key_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let screens = app.sign_in(ADMIN_TOKEN).await;
    let d = "Vx7IkN0IsrYmCsR3bUOKb9l8FQ6Wn5jDUHtXk3C4pY0";
    let key = |private: bool| {
        let mut key = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        if private {
            key["d"] = d.into();
        }
        serde_json::json!({ "keys": [key] }).to_string()
    };
    let form = |jwks: String| {
        vec![
            ("client_id", "signing-worker".to_owned()),
            ("client_name", "Signing worker".to_owned()),
            ("require_client_secret", "on".to_owned()),
            ("enabled", "on".to_owned()),
            ("grant_types", "client_credentials".to_owned()),
            ("allowed_scopes", "octo_api".to_owned()),
            ("token_endpoint_auth_method", "private_key_jwt".to_owned()),
            ("application_type", "web".to_owned()),
            ("jwks_uri", String::new()),
            ("jwks", jwks),
            ("action", "save".to_owned()),
        ]
    };
    let screens = &screens;
    let post = |fields: Vec<(&'static str, String)>| async move {
        let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        screens.post("/clients", &borrowed).await
    };
    let refused = post(form(key(true))).await;
    refused.assert_status(422);
    let page = html(&refused);
    assert!(page.contains("keys[0].d"), "the member is named");
    assert!(!page.contains(d), "the private key is not sent back");
    assert!(page.contains("may hold a private key"));
    // One private JWK (not a set), or a PEM key: refused, and not sent back either.
    for typed in [
        serde_json::json!({"kty": "EC", "crv": "P-256", "d": d}).to_string(),
        format!("-----BEGIN PRIVATE KEY-----\n{d}\n-----END PRIVATE KEY-----"),
    ] {
        let refused = post(form(typed)).await;
        refused.assert_status(422);
        assert!(!html(&refused).contains(d), "not sent back");
    }
    app.get_client("signing-worker").await.assert_status(404);

    let saved = post(form(key(false))).await;
    saved.assert_status(303);
    let client = app.get_client("signing-worker").await.json();
    assert_eq!(client["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(client["jwks"]["keys"][0]["kid"], "k1");
    assert_eq!(client["secrets"], serde_json::json!([]));
    let edit = html(&screens.get("/clients/signing-worker").await);
    assert!(
        edit.contains("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"),
        "the keys shown for editing"
    );
    assert!(!edit.contains("Set New Secret"), "no secret to set");
}
