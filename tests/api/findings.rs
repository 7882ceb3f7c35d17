//! Profile checks: `GET /api/v1/clients/{id}/findings?profile=` lists what a client's settings
//! break in OAuth 2.1, RFC 9700 or FAPI 2.0, naming the setting and the section; the findings
//! follow the client's changes.

use axum::http::Method;
use registry_tests::{backend_tests, service_client, spa_client, Backend, TestApp};
use serde_json::Value;

backend_tests!(
    a_weak_public_client_gets_each_finding_with_its_field_and_section,
    findings_follow_the_clients_changes,
    unknown_profiles_clients_and_callers_are_refused,
    the_report_lists_every_client_with_findings_from_one_snapshot,
    the_list_filters_clients_with_findings_or_a_secret_ending_soon,
);

/// `(rule, level, field)` of each finding, and the section of the first one of `rule`.
fn rules(answer: &Value) -> Vec<(String, String, String)> {
    answer["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["level"].as_str().unwrap().to_owned(),
                f["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn section<'a>(answer: &'a Value, rule: &str) -> &'a str {
    answer["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
        .and_then(|f| f["section"].as_str())
        .unwrap_or_default()
}

async fn a_weak_public_client_gets_each_finding_with_its_field_and_section(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut body = spa_client("weak-spa", "Weak SPA");
    body["require_pkce"] = false.into();
    body["offline_access"] = true.into();
    body["grant_types"] = serde_json::json!(["authorization_code", "refresh_token"]);
    body["redirect_uris"] = serde_json::json!([
        "https://studio.example.com/callback",
        "http://localhost:4200/callback"
    ]);
    app.create_client(&body).await.assert_status(201);

    let bcp = app.get("/api/v1/clients/weak-spa/findings").send().await;
    bcp.assert_status(200);
    let bcp = bcp.json();
    assert_eq!(bcp["profile"], "rfc9700", "the default profile");
    assert_eq!(bcp["version"], 1);
    assert_eq!(
        rules(&bcp),
        [
            (
                "pkce-not-required".into(),
                "must".into(),
                "require_pkce".into()
            ),
            (
                "http-redirect-uri".into(),
                "must".into(),
                "redirect_uris[1]".into()
            ),
            (
                "localhost-redirect-uri".into(),
                "should".into(),
                "redirect_uris[1]".into()
            ),
            (
                "public-client-refresh-tokens".into(),
                "must".into(),
                "offline_access".into()
            ),
        ]
    );
    assert_eq!(section(&bcp, "pkce-not-required"), "RFC 9700 §2.1.1");
    assert_eq!(
        section(&bcp, "public-client-refresh-tokens"),
        "RFC 9700 §2.2.2"
    );

    let fapi = app
        .get("/api/v1/clients/weak-spa/findings?profile=fapi2")
        .send()
        .await
        .json();
    assert_eq!(fapi["profile"], "fapi2");
    assert!(rules(&fapi).contains(&(
        "public-client".into(),
        "must".into(),
        "require_client_secret".into()
    )));
    assert_eq!(section(&fapi, "pkce-not-required"), "FAPI 2.0 §5.3.2.2 (5)");
    let oauth21 = app
        .get("/api/v1/clients/weak-spa/findings?profile=oauth2.1")
        .send()
        .await
        .json();
    assert_eq!(section(&oauth21, "pkce-not-required"), "OAuth 2.1 §4.1.1");
}

async fn findings_follow_the_clients_changes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut body = service_client("portal", None);
    body["grant_types"] = serde_json::json!(["authorization_code"]);
    body["require_pkce"] = false.into();
    body["redirect_uris"] = serde_json::json!(["http://127.0.0.1:8080/cb"]);
    app.create_client(&body).await.assert_status(201);
    let before = app
        .get("/api/v1/clients/portal/findings")
        .send()
        .await
        .json();
    let found: Vec<String> = rules(&before).into_iter().map(|r| r.0).collect();
    assert_eq!(
        found,
        [
            "shared-secret-authentication",
            "pkce-not-required",
            "http-redirect-uri"
        ],
        "a web client: loopback http is a finding"
    );

    app.call(Method::PATCH, "/api/v1/clients/portal")
        .body(
            "application/merge-patch+json",
            serde_json::json!({
                "require_pkce": true,
                "redirect_uris": ["https://portal.example.com/cb"]
            })
            .to_string(),
        )
        .send()
        .await
        .assert_status(200);
    let after = app
        .get("/api/v1/clients/portal/findings")
        .send()
        .await
        .json();
    assert_eq!(after["version"], 2);
    let found: Vec<String> = rules(&after).into_iter().map(|r| r.0).collect();
    assert_eq!(found, ["shared-secret-authentication"]);
    let oauth21 = app
        .get("/api/v1/clients/portal/findings?profile=oauth2.1")
        .send()
        .await
        .json();
    assert_eq!(oauth21["findings"], serde_json::json!([]), "{oauth21}");
}

async fn unknown_profiles_clients_and_callers_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_client(&spa_client("spa", "SPA"))
        .await
        .assert_status(201);
    let unknown = app
        .get("/api/v1/clients/spa/findings?profile=fapi1")
        .send()
        .await;
    unknown.assert_status(400);
    assert_eq!(
        unknown.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(unknown.json()["errors"][0]["field"], "profile");
    app.get("/api/v1/clients/nobody/findings")
        .send()
        .await
        .assert_status(404);
    app.call(Method::DELETE, "/api/v1/clients/spa")
        .send()
        .await
        .assert_status(204);
    app.get("/api/v1/clients/spa/findings")
        .send()
        .await
        .assert_status(404);
    app.call(Method::GET, "/api/v1/clients/spa/findings")
        .anonymous()
        .send()
        .await
        .assert_status(401);
}

async fn the_report_lists_every_client_with_findings_from_one_snapshot(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let mut weak = spa_client("weak-spa", "Weak SPA");
    weak["require_pkce"] = false.into();
    app.create_client(&weak).await.assert_status(201);
    app.create_client(&spa_client("clean-spa", "Clean SPA"))
        .await
        .assert_status(201);
    app.create_client(&service_client("worker", None))
        .await
        .assert_status(201);
    let ids = |report: &Value| -> Vec<String> {
        report["clients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["client_id"].as_str().unwrap().to_owned())
            .collect()
    };

    let every = app.get("/api/v1/findings").send().await;
    every.assert_status(200);
    let every = every.json();
    assert_eq!(every["profile"], "rfc9700");
    assert_eq!(every["checked"], 3);
    assert_eq!(ids(&every), ["weak-spa", "worker"], "{every}");
    assert!(every["position"].as_i64().unwrap() >= 3);
    let must = app.get("/api/v1/findings?level=must").send().await.json();
    assert_eq!(ids(&must), ["weak-spa"], "the worker only has advice");
    assert!(must["clients"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["level"] == "must"));
    let fapi = app
        .get("/api/v1/findings?profile=fapi2")
        .send()
        .await
        .json();
    assert_eq!(ids(&fapi), ["clean-spa", "weak-spa", "worker"]);
    let searched = app.get("/api/v1/findings?search=weak").send().await.json();
    assert_eq!(searched["checked"], 1);

    let bad = app.get("/api/v1/findings?level=could").send().await;
    bad.assert_status(400);
    assert_eq!(bad.json()["errors"][0]["field"], "level");
    app.call(Method::GET, "/api/v1/findings")
        .anonymous()
        .send()
        .await
        .assert_status(401);

    let screens = app.sign_in(registry_tests::ADMIN_TOKEN).await;
    let page = screens.get("/findings?profile=fapi2&level=must").await;
    page.assert_status(200);
    let page = String::from_utf8_lossy(&page.body).into_owned();
    assert!(page.contains("3 of 3 clients with findings"), "{page}");
    assert!(page.contains("/clients/worker/findings?profile=fapi2"));
    let odd = screens.get("/findings?profile=nonsense&level=could").await;
    odd.assert_status(200);
    let odd = String::from_utf8_lossy(&odd.body).into_owned();
    assert!(
        odd.contains("2 of 3 clients with findings in OAuth 2.0 Security BCP"),
        "{odd}"
    );
}

/// `GET /api/v1/clients?findings=<profile>` and `?secret_expires_within_days=N`: the list
/// narrowed to the clients that pass, paged and searched like any list.
async fn the_list_filters_clients_with_findings_or_a_secret_ending_soon(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.seed_default_clients = false;
        c.secret_lifetime_days = 30;
    })
    .await;
    app.follow_feed().await;
    let mut weak = spa_client("weak", "Weak SPA");
    weak["require_pkce"] = false.into();
    app.create_client(&weak).await.assert_status(201);
    app.create_client(&service_client("mortal", None))
        .await
        .assert_status(201);
    app.create_client(&spa_client("fine", "Fine SPA"))
        .await
        .assert_status(201);
    registry_tests::eventually(10, "the index has every client", || async {
        app.get_json("/api/v1/clients").await["total"] == 3
    })
    .await;
    let ids = |page: Value| -> Vec<String> {
        (page["clients"].as_array().unwrap().iter())
            .map(|c| c["client_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(app.get_json("/api/v1/clients?findings=rfc9700").await),
        ["mortal", "weak"],
        "a public client without PKCE, and a shared secret (RFC 9700 advises keys)"
    );
    assert_eq!(
        ids(app.get_json("/api/v1/clients?findings=oauth2.1").await),
        ["weak"]
    );
    assert_eq!(
        ids(app
            .get_json("/api/v1/clients?secret_expires_within_days=31")
            .await),
        ["mortal"]
    );
    assert!(ids(app
        .get_json("/api/v1/clients?secret_expires_within_days=29")
        .await)
    .is_empty());
    let both = app
        .get_json("/api/v1/clients?findings=rfc9700&secret_expires_within_days=31&search=mor")
        .await;
    assert_eq!(both["total"], 1);
    // The screens' list has the same filters, kept by its links; its exports (which cover
    // the search and Enabled only) are not offered for such a list.
    let screens = app.sign_in(registry_tests::ADMIN_TOKEN).await;
    let rows = |html: &str| -> Vec<String> {
        (html.split("data-client=\"").skip(1))
            .map(|rest| rest.split('"').next().unwrap().to_owned())
            .collect()
    };
    let page = screens
        .get("/clients?findings=rfc9700&sort=-client_id")
        .await;
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert_eq!(rows(&html), ["weak", "mortal"], "filtered and sorted");
    assert!(
        html.contains("<option value=\"rfc9700\" selected"),
        "the control shows it"
    );
    assert!(
        html.contains("findings=rfc9700"),
        "the sort and page links keep it"
    );
    assert!(!html.contains("Export to Excel"));
    let page = screens.get("/clients?secret_expires_within_days=30").await;
    assert_eq!(rows(&String::from_utf8_lossy(&page.body)), ["mortal"]);
    // Values the API refuses are ignored here, as any unreadable list parameter.
    let odd = screens
        .get("/clients?findings=nonsense&secret_expires_within_days=99999")
        .await;
    odd.assert_status(200);
    assert_eq!(rows(&String::from_utf8_lossy(&odd.body)).len(), 3);
    let page = screens.get("/clients").await;
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert_eq!(rows(&html).len(), 3);
    assert!(html.contains("Export to Excel"));
    // Rotated with a grace: the retired secret ends within the hour, the current one in 30
    // days — the client's secret does not end within a day.
    app.rotate_secret(
        "mortal",
        Some(&serde_json::json!({"previous_secret_valid_for": 3600})),
    )
    .await
    .assert_status(200);
    registry_tests::eventually(10, "the rotation in the read model", || async {
        app.get_json("/api/v1/clients/mortal").await["secrets"]
            .as_array()
            .unwrap()
            .len()
            == 2
    })
    .await;
    assert!(ids(app
        .get_json("/api/v1/clients?secret_expires_within_days=1")
        .await)
    .is_empty());
    assert_eq!(
        ids(app
            .get_json("/api/v1/clients?secret_expires_within_days=31")
            .await),
        ["mortal"]
    );
    for bad in [
        "findings=fapi9",
        "secret_expires_within_days=4000",
        "secret_expires_within_days=-1",
    ] {
        let refused = app.get(&format!("/api/v1/clients?{bad}")).send().await;
        refused.assert_status(400);
        let name = bad.split('=').next().unwrap();
        assert!(
            String::from_utf8_lossy(&refused.body).contains(name),
            "{bad}"
        );
    }
}
