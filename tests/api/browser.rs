//! The admin screens in a real browser (headless Chromium over WebDriver), as an
//! administrator uses them. Screenshots go to `$REGISTRY_SCREENSHOTS` when it is set
//! (`scripts/screenshots.sh`).

use fantoccini::Locator;
use registry_api::auth::api_keys::generate;
use registry_api::auth::Roles;
use registry_tests::browser::Browser;
use registry_tests::document_server::{test_ca, DocumentServer, Reply};
use registry_tests::{backend_tests, service_client, Backend, TestApp};
use serde_json::json;

backend_tests!(
    an_administrator_works_through_the_guide_in_a_browser,
    signing_in_through_the_identity_service_in_a_browser,
);

/// The production sign-in: to the identity service and back, the session cookie (strict)
/// in place on the page that follows.
async fn signing_in_through_the_identity_service_in_a_browser(backend: Backend) {
    use registry_tests::idp::{Idp, IdpUser};
    let idp = Idp::start(IdpUser::new(
        "248289761001",
        "Alice Admin",
        "openid profile octo_api.read_only",
    ))
    .await;
    let issuer = idp.issuer.clone();
    let app = TestApp::spawn_with(backend, move |c| {
        c.oidc_issuer = Some(issuer);
        c.oidc_client_id = Some("registry-screens".to_owned());
        c.jwt_scope_roles = crate::sign_in::SCOPE_ROLES.to_owned();
    })
    .await;
    let base = app.serve().await;
    let browser = Browser::start(1280, 900).await;
    browser
        .client
        .goto(&format!("{base}/clients?search=octo"))
        .await
        .unwrap();
    click(&browser, "a[href^='/oidc/login']").await;
    browser.wait_text("Alice Admin <248289761001>").await;
    browser.wait_text("octo-cli").await;
    assert!(browser
        .client
        .current_url()
        .await
        .unwrap()
        .as_str()
        .ends_with("/clients?search=octo"));
    // octo_api.read_only: reading, no writing.
    assert!(!browser
        .client
        .source()
        .await
        .unwrap()
        .contains("New Client"));
    assert!(idp.pkce_always_checked());
    browser.close().await;
}

async fn click(browser: &Browser, css: &str) {
    browser
        .wait(css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn type_into(browser: &Browser, css: &str, text: &str) {
    let input = browser.wait(css).await;
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn value_of(browser: &Browser, css: &str) -> String {
    browser
        .wait(css)
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn an_administrator_works_through_the_guide_in_a_browser(backend: Backend) {
    let (key, line) = generate("alice", Roles::all());
    let app = TestApp::spawn_with(backend, |c| {
        c.api_keys = Some(line.clone());
        c.client_id_documents = "localhost".to_owned();
        c.client_id_document_private_addresses = true;
        c.client_id_document_ca_file = Some(test_ca());
    })
    .await;
    // A client ID metadata document, pinned, with a changed version held.
    let documents = DocumentServer::start().await;
    let document_url = documents.url("/mcp/client.json");
    let mut document = json!({
        "client_id": document_url, "client_name": "MCP assistant",
        "redirect_uris": ["http://127.0.0.1/callback"], "application_type": "native",
        "token_endpoint_auth_method": "none", "scope": "openid profile",
    });
    documents.set("/mcp/client.json", Reply::json(&document, "max-age=600"));
    let document_path = format!(
        "/api/v1/clients/{}",
        form_urlencoded::byte_serialize(document_url.as_bytes()).collect::<String>()
    );
    app.get(&document_path).send().await.assert_status(200);
    let pin = format!("{document_path}/document/pin");
    app.request(axum::http::Method::POST, &pin, None, &[])
        .await
        .assert_status(200);
    document["redirect_uris"] = json!([
        "http://127.0.0.1/callback",
        "https://assistant.example.com/cb"
    ]);
    documents.set("/mcp/client.json", Reply::json(&document, "max-age=600"));
    let refresh = format!("{document_path}/document/refresh");
    app.request(axum::http::Method::POST, &refresh, None, &[])
        .await
        .assert_status(200);
    let document_screen = format!("{}/document", document_path.trim_start_matches("/api/v1"));
    app.create_client(&service_client("billing-worker", None))
        .await
        .assert_status(201);
    let base = app.serve().await;
    let browser = Browser::start(1280, 900).await;
    let go = |path: &str| format!("{base}{path}");

    // Sign in with a token: the list of the guide, the defaults in it.
    browser.client.goto(&go("/clients")).await.unwrap();
    browser.wait_text("Admin token or API key").await;
    browser.screenshot("sign-in").await;
    type_into(&browser, "#token", &key).await;
    click(&browser, "form[action='/sign-in'] button[type=submit]").await;
    browser.wait_text("octo-data-refinery-studio").await;
    for label in [
        "New Client",
        "Export to Excel",
        "Export to PDF",
        "Refresh Data",
        "Client ID",
        "Name",
        "Enabled",
        "URI",
    ] {
        browser.wait_text(label).await;
    }
    browser.screenshot("list-1280").await;

    // Search as you type (htmx): only the matching client stays.
    type_into(&browser, "#search", "swagger").await;
    browser
        .wait_until("#client-table", "the search for swagger", |table| {
            table.contains("1 client matching “swagger”")
                && table.contains("octo-idenityServices-swagger")
                && !table.contains("octo-cli")
        })
        .await;

    // New Client with an invalid redirect URI and a CORS origin with a trailing slash.
    browser.client.goto(&go("/clients/new")).await.unwrap();
    type_into(&browser, "#client_id", "studio").await;
    type_into(&browser, "#client_name", "Data Refinery Studio").await;
    type_into(&browser, "#client_uri", "https://studio.example.com").await;
    click(&browser, "#require_client_secret").await; // a public SPA
    type_into(
        &browser,
        "#redirect_uris-0",
        "https://studio.example.com/callback#oops",
    )
    .await;
    click(&browser, "button[value='add:allowed_cors_origins']").await;
    type_into(
        &browser,
        "#allowed_cors_origins-0",
        "https://studio.example.com/",
    )
    .await;
    click(&browser, "button[value='save']").await;
    browser.wait_text("The client was not saved").await;
    browser.wait_text("redirect_uris[0]").await;
    assert_eq!(
        value_of(&browser, "#client_name").await,
        "Data Refinery Studio",
        "what was typed is kept"
    );
    browser.screenshot("form-errors-1280").await;
    // The corrected origin in one click; the redirect URI by hand; saved.
    click(
        &browser,
        "button[value='replace:allowed_cors_origins:0:https://studio.example.com']",
    )
    .await;
    browser
        .wait_value("#allowed_cors_origins-0", "https://studio.example.com")
        .await;
    type_into(
        &browser,
        "#redirect_uris-0",
        "https://studio.example.com/callback",
    )
    .await;
    type_into(&browser, "#reason", "onboarding the studio").await;
    click(&browser, "button[value='save']").await;
    browser.wait_text("Saved.").await;
    let studio = app.get_json("/api/v1/clients/studio").await;
    assert_eq!(
        studio["allowed_cors_origins"],
        json!(["https://studio.example.com"])
    );
    assert_eq!(studio["require_client_secret"], false);
    assert_eq!(app.events_of("studio").await[0].1["actor"], "alice");

    // Edit while someone else changes the client through the API: the conflict is shown.
    browser.client.goto(&go("/clients/studio")).await.unwrap();
    type_into(&browser, "#client_name", "My name").await;
    let mut other = studio.clone();
    other["client_name"] = json!("Their name");
    app.request(
        axum::http::Method::PUT,
        "/api/v1/clients/studio",
        Some(&other),
        &[("x-change-reason", "renamed by ops")],
    )
    .await
    .assert_status(200);
    click(&browser, "button[value='save']").await;
    browser
        .wait_text("Someone changed this client while you were editing")
        .await;
    browser.wait_text("renamed by ops").await;
    assert_eq!(
        app.get_json("/api/v1/clients/studio").await["client_name"],
        "Their name"
    );
    click(&browser, ".conflict a.button").await;
    browser.wait_value("#client_name", "Their name").await;

    // Set New Secret: shown once; a reload of that page does not show it again.
    browser
        .client
        .goto(&go("/clients/billing-worker/secret"))
        .await
        .unwrap();
    click(&browser, "form button.primary").await;
    browser.wait_text("Copy this secret now").await;
    let secret = value_of(&browser, "#secret").await;
    assert_eq!(secret.len(), 43);
    browser.screenshot("secret-1280").await;
    let verified = app
        .request(
            axum::http::Method::POST,
            "/api/v1/clients/billing-worker/secret/verify",
            Some(&json!({ "client_secret": secret })),
            &[],
        )
        .await;
    assert_eq!(verified.json()["valid"], true);
    browser.client.refresh().await.unwrap();
    browser.wait_text("Set New Secret").await;
    assert!(
        !browser.client.source().await.unwrap().contains(&secret),
        "never shown again"
    );
    assert_eq!(
        app.events_of("billing-worker").await.len(),
        2,
        "the reload rotated nothing"
    );

    // History: who, when, why, before and after.
    browser
        .client
        .goto(&go("/clients/studio/history"))
        .await
        .unwrap();
    browser.wait_text("History of studio").await;
    browser.wait_text("renamed by ops").await;
    browser.wait_text("Their name").await;
    browser.wait_text("onboarding the studio").await;
    browser.screenshot("history-1280").await;

    // A client that signs with its key: its keys on the form, no secret to set.
    let mut signing = registry_tests::service_client("signing-worker", None);
    signing["token_endpoint_auth_method"] = "private_key_jwt".into();
    signing["jwks"] = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "2026-12",
        "alg": "ES256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
    app.create_client(&signing).await.assert_status(201);
    browser
        .client
        .goto(&go("/clients/signing-worker"))
        .await
        .unwrap();
    browser.wait("#keys").await;
    assert!(!browser
        .client
        .source()
        .await
        .unwrap()
        .contains("Set New Secret"));
    browser
        .client
        .execute(
            "document.getElementById('token_endpoint_auth_method').scrollIntoView({block: 'start'});",
            vec![],
        )
        .await
        .unwrap();
    browser.screenshot("form-keys-1280").await;
    app.delete_client("signing-worker").await.assert_status(204);

    // Profile checks: reached from the client's page, one profile after another.
    browser.client.goto(&go("/clients/studio")).await.unwrap();
    click(&browser, "a[href='/clients/studio/findings']").await;
    browser.wait_text("Profile checks of studio").await;
    browser.wait_text("No findings").await;
    click(&browser, "a[href='/clients/studio/findings?profile=fapi2']").await;
    browser.wait_text("FAPI 2.0 §5.3.2.1 (3)").await;
    browser.screenshot("findings-1280").await;
    // Dynamic registration: a token made from the screens, shown once.
    browser.client.goto(&go("/registration")).await.unwrap();
    browser.wait_text("No initial access token yet").await;
    type_into(&browser, "#description", "ACME onboarding").await;
    type_into(&browser, "#patterns", "https://*.acme.example/callback").await;
    click(&browser, "button.primary[type='submit']").await;
    browser.wait_text("Copy this token now").await;
    browser.screenshot("registration-token-1280").await;
    browser.client.goto(&go("/registration")).await.unwrap();
    browser.wait_text("ACME onboarding").await;
    browser.screenshot("registration-1280").await;
    browser.client.goto(&go(&document_screen)).await.unwrap();
    browser.wait_text("Changed version held for approval").await;
    browser.screenshot("document-1280").await;
    browser.client.goto(&go("/clients")).await.unwrap();
    click(&browser, "a[href='/findings']").await;
    browser.wait_text("clients with findings").await;
    click(&browser, "a[href='/findings?profile=fapi2']").await;
    browser.wait_text("clients with findings in FAPI 2.0").await;
    browser.screenshot("report-1280").await;

    // Exports of the list: both download files that open.
    browser.client.goto(&go("/clients")).await.unwrap();
    click(&browser, "a[href^='/clients/export.xlsx']").await;
    let xlsx = browser.downloaded(".xlsx").await;
    let mut workbook: calamine::Xlsx<_> = calamine::open_workbook(&xlsx).unwrap();
    let rows = calamine::Reader::worksheet_range(&mut workbook, "Clients").unwrap();
    assert_eq!(
        rows.rows().count(),
        1 + 6,
        "header and six clients (one a metadata document's)"
    );
    click(&browser, "a[href^='/clients/export.pdf']").await;
    let pdf = browser.downloaded(".pdf").await;
    let text = std::process::Command::new(registry_tests::require_tool("pdftotext"))
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("billing-worker"));

    // Delete from the row: the dialog names the client and wants its id typed.
    click(&browser, "tr[data-client='studio'] a.button.danger").await;
    browser.wait("dialog[open] #confirm").await;
    browser
        .wait_text("immediately prevents all applications")
        .await;
    browser.screenshot("delete-1280").await;
    type_into(&browser, "dialog #confirm", "studio").await;
    click(&browser, "dialog button.danger").await;
    browser.wait_text("Client studio was deleted.").await;
    app.get_client("studio").await.assert_status(404);

    // At 390 px the list is one card per client and every action stays reachable, and a
    // client id of the longest kind (128 characters, no space) wraps instead of widening the
    // page, whole in its link.
    let long_id = format!("urn-example-partner-{}", "x1".repeat(54));
    assert_eq!(long_id.len(), 128);
    app.create_client(&service_client(&long_id, None))
        .await
        .assert_status(201);
    browser.resize(390, 844).await;
    browser.client.goto(&go("/clients")).await.unwrap();
    browser.wait_text("billing-worker").await;
    let link = browser
        .client
        .find(Locator::Css(&format!("td.id a[href='/clients/{long_id}']")))
        .await
        .unwrap();
    assert_eq!(link.text().await.unwrap().replace('\n', ""), long_id);
    assert_eq!(
        link.attr("title").await.unwrap().as_deref(),
        Some(long_id.as_str())
    );
    browser
        .assert_no_horizontal_scroll("no horizontal scrolling at 390 px")
        .await;
    browser.screenshot("list-390").await;
    browser
        .client
        .execute(
            "arguments[0].scrollIntoView({block: 'center'});",
            vec![serde_json::to_value(&link).unwrap()],
        )
        .await
        .unwrap();
    browser.screenshot("list-390-long-id").await;
    browser
        .client
        .goto(&go("/clients/billing-worker"))
        .await
        .unwrap();
    browser.wait_text("Allowed Grant Types").await;
    browser.screenshot("form-390").await;
    browser
        .client
        .goto(&go("/clients/billing-worker/findings?profile=fapi2"))
        .await
        .unwrap();
    browser.wait_text("Profile checks of billing-worker").await;
    browser
        .assert_no_horizontal_scroll("no horizontal scrolling at 390 px")
        .await;
    browser.screenshot("findings-390").await;
    browser
        .client
        .goto(&go("/clients/billing-worker"))
        .await
        .unwrap();
    browser.wait("#about").await;
    browser
        .client
        .execute(
            "document.getElementById('about').scrollIntoView({block: 'start'});",
            vec![],
        )
        .await
        .unwrap();
    browser
        .assert_no_horizontal_scroll("the form fits 390 px too")
        .await;
    browser.screenshot("form-about-390").await;
    browser
        .client
        .execute(
            "document.getElementById('token_endpoint_auth_method').scrollIntoView({block: 'center'});",
            vec![],
        )
        .await
        .unwrap();
    browser.screenshot("form-auth-390").await;
    browser
        .client
        .execute(
            "document.getElementById('keys').scrollIntoView({block: 'start'});",
            vec![],
        )
        .await
        .unwrap();
    browser.screenshot("form-keys-390").await;
    browser.client.goto(&go("/findings")).await.unwrap();
    browser.wait_text("clients with findings").await;
    browser
        .assert_no_horizontal_scroll("the report fits 390 px")
        .await;
    browser.screenshot("report-390").await;
    browser.client.goto(&go("/registration")).await.unwrap();
    browser.wait_text("New initial access token").await;
    browser.screenshot("registration-390").await;
    browser
        .assert_no_horizontal_scroll("the registration page fits 390 px")
        .await;
    browser.client.goto(&go(&document_screen)).await.unwrap();
    browser.wait_text("Changed version held for approval").await;
    browser
        .assert_no_horizontal_scroll("the document page fits 390 px")
        .await;
    browser.screenshot("document-390").await;

    // By keyboard alone: the form's fields come in reading order, and the row menu opens
    // and is walked with the keyboard.
    browser.resize(1280, 900).await;
    browser.client.goto(&go("/clients/new")).await.unwrap();
    click(&browser, "#client_id").await;
    let mut order = Vec::new();
    for _ in 0..8 {
        let focused = browser.client.active_element().await.unwrap();
        focused.send_keys("\u{e004}").await.unwrap();
        let now = browser.client.active_element().await.unwrap();
        order.push(now.attr("id").await.unwrap().unwrap_or_default());
    }
    assert_eq!(
        order,
        [
            "client_name",
            "client_uri",
            "client_secret",
            "require_client_secret",
            "enabled",
            "offline_access",
            "require_pkce",
            "token_endpoint_auth_method"
        ]
    );
    browser.client.goto(&go("/clients")).await.unwrap();
    let summary = browser
        .wait("tr[data-client='billing-worker'] details.menu summary")
        .await;
    summary.send_keys("\u{e007}").await.unwrap();
    browser
        .wait("tr[data-client='billing-worker'] details.menu[open] a")
        .await;

    // Sign out: the session ends.
    click(&browser, "form[action='/sign-out'] button").await;
    browser.wait_text("Admin token or API key").await;
    browser.client.goto(&go("/clients")).await.unwrap();
    browser.wait_text("Admin token or API key").await;
    browser.close().await;
}
