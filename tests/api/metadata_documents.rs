//! Client ID metadata documents: a client whose id is an https URL is what the document there
//! says, fetched by the registry (guarded) when the identity service looks it up; cached by
//! `Cache-Control`; each changed version an event; pinned (a change held for approval) or
//! blocked by an administrator; and every way a fetch can be turned against the registry
//! refused, with the reason, writing nothing.

use std::time::Duration;

use axum::http::Method;
use registry_tests::document_server::{
    native_document as document, test_ca, DocumentServer, Reply,
};
use registry_tests::{backend_tests, Backend, TestApp, TestResponse};
use serde_json::{json, Value};

backend_tests!(
    a_document_client_is_resolved_cached_and_each_change_is_an_event,
    a_pinned_document_holds_its_changes_until_approved,
    a_blocked_url_is_unknown_and_never_fetched,
    fetches_that_could_be_turned_against_the_registry_are_refused,
    a_document_on_a_private_address_is_refused_by_default,
    administrators_cannot_register_a_document_url_by_hand,
    many_lookups_at_once_fetch_once_and_register_once_across_processes,
    a_lookup_abandoned_mid_fetch_still_records_the_client_whole,
    a_server_in_trouble_keeps_the_last_version_a_while_a_withdrawn_document_does_not,
    a_block_while_the_document_is_fetched_wins,
    the_policy_holds_document_clients_for_approval_when_configured,
    administrators_change_only_what_the_document_has_no_field_for,
    the_document_screen_shows_its_state_and_pins_approves_and_blocks,
);

async fn app(backend: Backend, min_seconds: u64) -> TestApp {
    TestApp::spawn_with(backend, |c| {
        c.client_id_documents = "localhost".to_owned();
        c.client_id_document_private_addresses = true;
        c.client_id_document_ca_file = Some(test_ca());
        c.client_id_document_min_seconds = min_seconds;
        c.client_id_document_timeout_ms = 1000;
    })
    .await
}

/// The path of a client id in the API (the URL percent-encoded as one segment).
fn segment(url: &str) -> String {
    form_urlencoded::byte_serialize(url.as_bytes()).collect()
}

async fn lookup(app: &TestApp, url: &str) -> TestResponse {
    app.get(&format!("/api/v1/clients/{}", segment(url)))
        .send()
        .await
}

async fn document_status(app: &TestApp, url: &str) -> Value {
    app.get_json(&format!("/api/v1/clients/{}/document", segment(url)))
        .await
}

async fn act(app: &TestApp, method: Method, url: &str, action: &str) -> TestResponse {
    let path = format!("/api/v1/clients/{}/document/{action}", segment(url));
    app.request(method, &path, None, &[]).await
}

async fn history(app: &TestApp, url: &str) -> Vec<Value> {
    let history = app
        .get_json(&format!("/api/v1/clients/{}/history", segment(url)))
        .await;
    history["events"].as_array().unwrap().clone()
}

async fn a_document_client_is_resolved_cached_and_each_change_is_an_event(backend: Backend) {
    let app = app(backend, 0).await;
    let server = DocumentServer::start().await;
    let url = server.url("/oauth/client.json");
    server.set(
        "/oauth/client.json",
        Reply::json(&document(&url, "MCP Tool"), "max-age=2"),
    );

    // The identity service looks the client up: resolved from its document.
    let first = lookup(&app, &url).await;
    first.assert_status(200);
    let client = first.json();
    assert_eq!(client["client_id"], url);
    assert_eq!(client["client_name"], "MCP Tool");
    assert_eq!(client["require_client_secret"], false);
    assert_eq!(client["token_endpoint_auth_method"], "none");
    assert_eq!(client["application_type"], "native");
    assert_eq!(client["software_version"], "1.0.0");
    assert_eq!(client["require_pkce"], true);
    let cache = first.header("cache-control").unwrap().to_owned();
    assert!(cache.starts_with("private, max-age="), "{cache}");
    assert_eq!(server.hits("/oauth/client.json"), 1);

    // Cached as its Cache-Control says: asked again at once, not fetched again.
    lookup(&app, &url).await.assert_status(200);
    lookup(&app, &url).await.assert_status(200);
    assert_eq!(
        server.hits("/oauth/client.json"),
        1,
        "served from the cache"
    );

    // Unchanged after it went stale: fetched again, no new event.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    lookup(&app, &url).await.assert_status(200);
    assert_eq!(server.hits("/oauth/client.json"), 2);
    assert_eq!(
        history(&app, &url).await.len(),
        1,
        "an unchanged version is no event"
    );

    // The document changes: once stale, the next lookup records the new version as an event
    // of the document's, with the fields that changed.
    let mut changed = document(&url, "MCP Tool 2");
    changed["software_version"] = json!("2.0.0");
    server.set("/oauth/client.json", Reply::json(&changed, "max-age=2"));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let after = lookup(&app, &url).await;
    after.assert_status(200);
    assert_eq!(after.json()["client_name"], "MCP Tool 2");
    let events = history(&app, &url).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["actor"], "client-id-document");
    assert_eq!(events[1]["actor"], "client-id-document");
    assert_eq!(events[1]["event_type"], "ClientUpdated");
    let reason = events[1]["reason"].as_str().unwrap();
    assert!(reason.contains("changed (sha256 "), "{reason}");
    let text = events[1].to_string();
    assert!(
        text.contains("2.0.0") && text.contains("MCP Tool 2"),
        "{text}"
    );
    let status = document_status(&app, &url).await;
    assert_eq!(status["registered"], true);
    assert!(status["sha256"].as_str().unwrap().len() == 64, "{status}");

    // On the screens like any client: in the list, its page and its history open at its
    // (percent-encoded) URL.
    let screens = app.sign_in(registry_tests::ADMIN_TOKEN).await;
    let list = screens.get("/clients?search=MCP").await;
    list.assert_status(200);
    let html = String::from_utf8_lossy(&list.body).to_string();
    assert!(
        html.contains(&format!("/clients/{}", segment(&url))),
        "a link to it"
    );
    for page in ["", "/history"] {
        let shown = screens
            .get(&format!("/clients/{}{page}", segment(&url)))
            .await;
        shown.assert_status(200);
        assert!(
            String::from_utf8_lossy(&shown.body).contains("MCP Tool 2"),
            "{page}"
        );
    }

    // The client as it was before the change, for an auditor.
    let before = app
        .get_json(&format!(
            "/api/v1/clients/{}?as_of_version=1",
            segment(&url)
        ))
        .await;
    assert_eq!(before["client_name"], "MCP Tool");
}

async fn a_pinned_document_holds_its_changes_until_approved(backend: Backend) {
    let app = app(backend, 60).await;
    let server = DocumentServer::start().await;
    let url = server.url("/pinned.json");
    server.set(
        "/pinned.json",
        Reply::json(&document(&url, "Pinned"), "max-age=60"),
    );
    lookup(&app, &url).await.assert_status(200);
    act(&app, Method::POST, &url, "pin")
        .await
        .assert_status(200);

    // The document changes (a new redirect URI): held, the pinned version keeps serving.
    let mut changed = document(&url, "Pinned");
    changed["redirect_uris"] = json!(["https://attacker.example/callback"]);
    server.set("/pinned.json", Reply::json(&changed, "max-age=60"));
    let refreshed = act(&app, Method::POST, &url, "refresh").await;
    refreshed.assert_status(200);
    let status = refreshed.json();
    assert!(status["pinned"]["by"].is_string(), "{status}");
    assert_eq!(
        status["held"]["document"]["redirect_uris"],
        json!(["https://attacker.example/callback"])
    );
    let served = lookup(&app, &url).await.json();
    assert_eq!(
        served["redirect_uris"],
        json!([
            "http://127.0.0.1/callback",
            "https://tool.example.com/callback"
        ])
    );
    assert_eq!(
        history(&app, &url).await.len(),
        1,
        "a held change is no event yet"
    );

    // Approved: the held version is the client, by the administrator, and stays pinned.
    let approved = act(&app, Method::POST, &url, "approve").await;
    approved.assert_status(200);
    assert!(approved.json()["held"].is_null());
    let served = lookup(&app, &url).await.json();
    assert_eq!(
        served["redirect_uris"],
        json!(["https://attacker.example/callback"])
    );
    let events = history(&app, &url).await;
    assert_eq!(events.len(), 2);
    assert_ne!(events[1]["actor"], "client-id-document", "{:?}", events[1]);
    assert!(events[1]["reason"]
        .as_str()
        .unwrap()
        .starts_with("approved the held version"));
    // Nothing left to approve.
    act(&app, Method::POST, &url, "approve")
        .await
        .assert_status(412);

    // Its client deleted by an administrator while pinned: the next version is not adopted
    // unreviewed; it is held, and approving it registers the client again.
    app.delete_client(&segment(&url)).await.assert_status(204);
    let mut third = document(&url, "Pinned, third");
    third["redirect_uris"] = json!(["https://third.example/callback"]);
    server.set("/pinned.json", Reply::json(&third, "max-age=60"));
    let detail = problem_detail(&act(&app, Method::POST, &url, "refresh").await);
    assert!(detail.contains("held for approval"), "{detail}");
    assert_eq!(lookup(&app, &url).await.status.as_u16(), 404);
    act(&app, Method::POST, &url, "approve")
        .await
        .assert_status(200);
    assert_eq!(
        lookup(&app, &url).await.json()["client_name"],
        "Pinned, third"
    );
}

async fn a_blocked_url_is_unknown_and_never_fetched(backend: Backend) {
    let app = app(backend, 0).await;
    let server = DocumentServer::start().await;
    let url = server.url("/blocked.json");
    server.set(
        "/blocked.json",
        Reply::json(&document(&url, "Noisy"), "max-age=60"),
    );
    lookup(&app, &url).await.assert_status(200);

    let blocked = act(&app, Method::POST, &url, "block").await;
    blocked.assert_status(200);
    assert_eq!(blocked.json()["registered"], false);
    let refused = lookup(&app, &url).await;
    let detail = problem_detail(&refused);
    assert!(detail.contains("blocked"), "{detail}");
    assert_eq!(
        server.hits("/blocked.json"),
        1,
        "a blocked URL is never fetched"
    );
    let events = history(&app, &url).await;
    assert_eq!(events.last().unwrap()["event_type"], "ClientDeleted");
    assert_eq!(
        events.last().unwrap()["reason"],
        "blocked its client ID metadata document URL"
    );

    // Unblocked: fetched again as a new registration.
    act(&app, Method::DELETE, &url, "block")
        .await
        .assert_status(200);
    lookup(&app, &url).await.assert_status(200);
    assert_eq!(server.hits("/blocked.json"), 2);
    assert_eq!(history(&app, &url).await.len(), 3);
}

fn problem_detail(response: &TestResponse) -> String {
    response.assert_problem(404, "client_not_found");
    response.json()["detail"].as_str().unwrap().to_owned()
}

async fn fetches_that_could_be_turned_against_the_registry_are_refused(backend: Backend) {
    let app = app(backend, 60).await;
    let server = DocumentServer::start().await;
    let mut redirect = Reply::status(302, b"");
    redirect.headers = vec![("location".to_owned(), server.url("/fine.json"))];
    let big_url = server.url("/big.json");
    let mut big = document(&big_url, "Big");
    big["padding"] = json!("x".repeat(6000));
    let slow_url = server.url("/slow.json");
    let mut slow = Reply::json(&document(&slow_url, "Slow"), "max-age=60");
    slow.delay = Duration::from_secs(3);
    let other_url = server.url("/other.json");
    let secret_url = server.url("/secret.json");
    let mut with_secret = document(&secret_url, "Secret");
    with_secret["token_endpoint_auth_method"] = json!("client_secret_basic");
    let member_url = server.url("/member.json");
    let mut member = document(&member_url, "Member");
    member["client_secret"] = json!("hunter2hunter2hunter2");
    let implicit_url = server.url("/implicit.json");
    let mut implicit = document(&implicit_url, "Implicit");
    implicit["redirect_uris"] = json!(["javascript:alert(1)"]);
    let machine_url = server.url("/machine.json");
    let mut machine = document(&machine_url, "Machine");
    machine["grant_types"] = json!(["client_credentials"]);
    machine["response_types"] = json!([]);
    machine["token_endpoint_auth_method"] = json!("private_key_jwt");
    machine["jwks_uri"] = json!("https://keys.elsewhere.example/jwks.json");
    let scope_url = server.url("/scope.json");
    let mut scope = document(&scope_url, "Scope");
    scope["scope"] = json!("openid octo_api");
    let cases: Vec<(&str, Reply, &str)> = vec![
        (
            "/machine.json",
            Reply::json(&machine, "max-age=60"),
            "jwks_uri must be on the document's own host",
        ),
        (
            "/scope.json",
            Reply::json(&scope, "max-age=60"),
            "the scope octo_api is not allowed",
        ),
        ("/redirect.json", redirect, "redirects are not followed"),
        (
            "/big.json",
            Reply::json(&big, "max-age=60"),
            "larger than 5120 bytes",
        ),
        ("/slow.json", slow, "did not answer in full within 1000 ms"),
        (
            "/mismatch.json",
            Reply::json(&document(&other_url, "Mismatch"), "max-age=60"),
            "client_id is not the URL it was fetched from",
        ),
        (
            "/secret.json",
            Reply::json(&with_secret, "max-age=60"),
            "client_secret_basic needs a shared secret",
        ),
        (
            "/member.json",
            Reply::json(&member, "max-age=60"),
            "contains client_secret",
        ),
        (
            "/implicit.json",
            Reply::json(&implicit, "max-age=60"),
            "redirect_uris[0]",
        ),
        (
            "/text.json",
            Reply::status(200, b"<html>hello</html>"),
            "not JSON",
        ),
        ("/missing.json", Reply::status(404, b""), "answered 404"),
    ];
    for (path, reply, expected) in cases {
        server.set(path, reply);
        let url = server.url(path);
        let refused = lookup(&app, &url).await;
        // The provider may keep the refusal for the minimum freshness.
        assert_eq!(refused.header("cache-control"), Some("private, max-age=60"));
        let detail = problem_detail(&refused);
        assert!(detail.contains(expected), "{path}: {detail}");
        assert!(!detail.contains("hunter2"), "never a secret echoed");
        assert!(
            app.events_of(&url).await.is_empty(),
            "{path}: nothing registered"
        );
        let status = document_status(&app, &url).await;
        assert!(
            status["last_error"].as_str().unwrap().contains(expected),
            "{status}"
        );
        // The refusal stands for the minimum freshness: asked again, not fetched again.
        let before = server.hits(path);
        lookup(&app, &url).await.assert_status(404);
        assert_eq!(server.hits(path), before, "{path}: the refusal is cached");
    }
    // A host outside the allowed domains is never fetched at all.
    let elsewhere = "https://documents.example.org/client.json";
    let detail = problem_detail(&lookup(&app, elsewhere).await);
    assert!(detail.contains("not resolved here"), "{detail}");
    assert!(app.events_of(elsewhere).await.is_empty());
}

async fn a_document_on_a_private_address_is_refused_by_default(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.client_id_documents = "*".to_owned();
        c.client_id_document_ca_file = Some(test_ca());
    })
    .await;
    let server = DocumentServer::start().await;
    let url = server.url("/client.json");
    server.set(
        "/client.json",
        Reply::json(&document(&url, "Inside"), "max-age=60"),
    );
    let detail = problem_detail(&lookup(&app, &url).await);
    assert!(
        detail.contains("resolves only to loopback, private or link-local addresses"),
        "{detail}"
    );
    assert_eq!(server.hits("/client.json"), 0, "no connection was made");
    assert!(app.events_of(&url).await.is_empty());
}

async fn administrators_cannot_register_a_document_url_by_hand(backend: Backend) {
    let app = app(backend, 60).await;
    let url = "https://tool.example.com/client.json";
    let mut body = registry_tests::spa_client("x", "By hand");
    body["client_id"] = json!(url);
    let created = app.create_client(&body).await;
    let fields = created.assert_problem(422, "validation_failed");
    assert!(fields.iter().any(|f| f == "client_id"), "{fields:?}");
    assert!(app.events_of(url).await.is_empty());
    // Not a document URL: the document routes say so.
    let status = app
        .get("/api/v1/clients/octo-idenityServices-swagger/document")
        .send()
        .await;
    status.assert_status(404);
}

async fn many_lookups_at_once_fetch_once_and_register_once_across_processes(backend: Backend) {
    let app = app(backend, 60).await;
    let other = app.second_process().await;
    let server = DocumentServer::start().await;
    let url = server.url("/popular.json");
    let mut reply = Reply::json(&document(&url, "Popular"), "max-age=60");
    reply.delay = Duration::from_millis(300);
    server.set("/popular.json", reply);

    // Ten lookups in each of two processes at once (an identity service's burst).
    let lookups = (0..20).map(|i| {
        let (api, path) = (
            if i % 2 == 0 { app.api() } else { other.api() },
            format!("/api/v1/clients/{}", segment(&url)),
        );
        tokio::spawn(async move { api.get(&path).send().await.status })
    });
    for lookup in lookups {
        assert_eq!(lookup.await.unwrap().as_u16(), 200);
    }
    // One fetch per process at most, one registration in all.
    assert!(
        server.hits("/popular.json") <= 2,
        "{}",
        server.hits("/popular.json")
    );
    let events = app.events_of(&url).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "ClientRegistered");
}

async fn a_lookup_abandoned_mid_fetch_still_records_the_client_whole(backend: Backend) {
    let app = app(backend, 60).await;
    let server = DocumentServer::start().await;
    let url = server.url("/abandoned.json");
    let mut reply = Reply::json(&document(&url, "Abandoned"), "max-age=60");
    reply.delay = Duration::from_millis(300);
    server.set("/abandoned.json", reply);

    // The caller gives up while the document is being fetched.
    let path = format!("/api/v1/clients/{}", segment(&url));
    let gave_up = tokio::time::timeout(Duration::from_millis(50), app.get(&path).send()).await;
    assert!(gave_up.is_err(), "the lookup was still running");

    // The fetch went on: the client and its document's state were recorded together.
    registry_tests::eventually(10, "the abandoned fetch recorded", || async {
        document_status(&app, &url).await["sha256"].is_string()
    })
    .await;
    assert_eq!(app.events_of(&url).await.len(), 1);
    assert_eq!(document_status(&app, &url).await["registered"], true);
    lookup(&app, &url).await.assert_status(200);
    assert_eq!(
        server.hits("/abandoned.json"),
        1,
        "fresh: not fetched again"
    );
}

async fn a_server_in_trouble_keeps_the_last_version_a_while_a_withdrawn_document_does_not(
    backend: Backend,
) {
    let app = app(backend, 0).await;
    let server = DocumentServer::start().await;
    let url = server.url("/flaky.json");
    server.set(
        "/flaky.json",
        Reply::json(&document(&url, "Flaky"), "max-age=1"),
    );
    lookup(&app, &url).await.assert_status(200);

    // Its server fails for a moment (503): the last version keeps serving, the trouble shown.
    let trouble = Reply::status(503, b"");
    server.set("/flaky.json", trouble);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let served = lookup(&app, &url).await;
    served.assert_status(200);
    assert_eq!(served.json()["client_name"], "Flaky");
    let status = document_status(&app, &url).await;
    assert!(
        status["last_error"].as_str().unwrap().contains("503"),
        "{status}"
    );

    // The document withdrawn (404): its answer, final at once.
    let gone = Reply::status(404, b"");
    server.set("/flaky.json", gone);
    let detail = problem_detail(&lookup(&app, &url).await);
    assert!(detail.contains("answered 404"), "{detail}");

    // With the documents off in a process, a stored document client is unknown there.
    let off = app
        .second_process_with(|c| c.client_id_documents = "off".to_owned())
        .await;
    let detail = problem_detail(&lookup(&off, &url).await);
    assert!(detail.contains("off"), "{detail}");
}

async fn a_block_while_the_document_is_fetched_wins(backend: Backend) {
    let app = app(backend, 60).await;
    let server = DocumentServer::start().await;
    let url = server.url("/racing.json");
    let mut reply = Reply::json(&document(&url, "Racing"), "max-age=60");
    reply.delay = Duration::from_millis(400);
    server.set("/racing.json", reply);
    let (api, path) = (app.api(), format!("/api/v1/clients/{}", segment(&url)));
    let fetching = tokio::spawn(async move { api.get(&path).send().await });
    registry_tests::eventually(5, "the fetch under way", || async {
        server.hits("/racing.json") == 1
    })
    .await;
    act(&app, Method::POST, &url, "block")
        .await
        .assert_status(200);
    let answer = fetching.await.unwrap();
    let detail = problem_detail(&answer);
    assert!(detail.contains("blocked"), "{detail}");
    // Whatever the order, the client is not live and the block stands.
    assert_eq!(document_status(&app, &url).await["registered"], false);
    let events = app.events_of(&url).await;
    assert!(
        events.is_empty() || events.last().unwrap().0 == "ClientDeleted",
        "{events:?}"
    );
    assert!(problem_detail(&lookup(&app, &url).await).contains("blocked"));
}

async fn the_policy_holds_document_clients_for_approval_when_configured(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| {
        c.client_id_documents = "localhost".to_owned();
        c.client_id_document_private_addresses = true;
        c.client_id_document_ca_file = Some(test_ca());
        c.client_id_document_hold = true;
    })
    .await;
    let server = DocumentServer::start().await;
    let url = server.url("/held.json");
    server.set(
        "/held.json",
        Reply::json(&document(&url, "Held"), "max-age=60"),
    );
    let held = lookup(&app, &url).await;
    held.assert_status(200);
    assert_eq!(
        held.json()["enabled"],
        false,
        "registered, held until enabled"
    );
    let mut machine = document(&url, "Held");
    machine["grant_types"] = json!(["client_credentials"]);
    server.set("/held.json", Reply::json(&machine, "max-age=60"));
    let refused = act(&app, Method::POST, &url, "refresh").await;
    let detail = problem_detail(&refused);
    assert!(
        detail.contains("grant_types: client_credentials"),
        "{detail}"
    );
}

async fn patch(app: &TestApp, url: &str, body: &Value) -> TestResponse {
    crate::about::patch(app, &segment(url), body).await
}

async fn administrators_change_only_what_the_document_has_no_field_for(backend: Backend) {
    let app = app(backend, 0).await;
    let server = DocumentServer::start().await;
    let url = server.url("/edited.json");
    server.set(
        "/edited.json",
        Reply::json(&document(&url, "Edited"), "max-age=1"),
    );
    lookup(&app, &url).await.assert_status(200);

    // What the document says is the document's: a name, or a secret, is refused, named.
    let renamed = patch(&app, &url, &json!({"client_name": "By hand"})).await;
    let fields = renamed.assert_problem(422, "validation_failed");
    assert_eq!(fields, ["client_name"]);
    let secret = patch(&app, &url, &json!({"require_client_secret": true})).await;
    assert_eq!(
        secret.status.as_u16(),
        422,
        "no secret for a published client"
    );
    // A key client, replaced whole with its keys left out (kept as they are): the changed
    // redirect URI is still the document's, refused.
    let keys_url = server.url("/keys.json");
    let mut keyed = document(&keys_url, "Keyed");
    keyed["token_endpoint_auth_method"] = json!("private_key_jwt");
    keyed["jwks"] = json!({"keys": [crate::keys::ec_key("k1")]});
    server.set("/keys.json", Reply::json(&keyed, "max-age=60"));
    let stored = lookup(&app, &keys_url).await;
    stored.assert_status(200);
    let mut replaced = stored.json();
    for field in [
        "jwks",
        "jwks_uri",
        "secrets",
        "version",
        "created_at",
        "updated_at",
    ] {
        replaced.as_object_mut().unwrap().remove(field);
    }
    replaced["redirect_uris"] = json!(["https://attacker.example/cb"]);
    let put = app
        .update_client(&segment(&keys_url), &replaced, None)
        .await;
    let fields = put.assert_problem(422, "validation_failed");
    assert_eq!(fields, ["redirect_uris"], "{}", put.json());

    // What it has no field for is the administrator's, and survives its next version.
    patch(&app, &url, &json!({"enabled": false}))
        .await
        .assert_status(200);
    let mut changed = document(&url, "Edited 2");
    changed["software_version"] = json!("2.0.0");
    server.set("/edited.json", Reply::json(&changed, "max-age=1"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = lookup(&app, &url).await.json();
    assert_eq!(after["client_name"], "Edited 2");
    assert_eq!(
        after["enabled"], false,
        "the administrator's disable stands"
    );
}

async fn the_document_screen_shows_its_state_and_pins_approves_and_blocks(backend: Backend) {
    let app = app(backend, 60).await;
    let server = DocumentServer::start().await;
    let url = server.url("/screen.json");
    server.set(
        "/screen.json",
        Reply::json(&document(&url, "On screen"), "max-age=60"),
    );
    lookup(&app, &url).await.assert_status(200);
    let screens = app.sign_in(registry_tests::ADMIN_TOKEN).await;
    let base = format!("/clients/{}", segment(&url));
    let edit = String::from_utf8_lossy(&screens.get(&base).await.body).into_owned();
    assert!(
        edit.contains(&format!("{base}/document")),
        "linked from the client"
    );

    let text = |response: TestResponse| String::from_utf8_lossy(&response.body).into_owned();
    let page = text(screens.get(&format!("{base}/document")).await);
    assert!(
        page.contains("Version in use") && page.contains("sha256 "),
        "{page}"
    );
    assert!(page.contains(">Pin<"), "{page}");

    screens
        .post(&format!("{base}/document/pin"), &[])
        .await
        .assert_status(303);
    let mut changed = document(&url, "On screen, renamed");
    changed["software_version"] = json!("9.9.9");
    server.set("/screen.json", Reply::json(&changed, "max-age=60"));
    screens
        .post(&format!("{base}/document/refresh"), &[])
        .await
        .assert_status(303);
    let page = text(screens.get(&format!("{base}/document")).await);
    assert!(page.contains("Changed version held for approval"), "{page}");
    assert!(page.contains("9.9.9"), "the held document shown");
    screens
        .post(&format!("{base}/document/approve"), &[])
        .await
        .assert_status(303);
    assert_eq!(
        lookup(&app, &url).await.json()["client_name"],
        "On screen, renamed"
    );
    // Nothing held any more: the page says so, not an error page.
    let again = screens.post(&format!("{base}/document/approve"), &[]).await;
    again.assert_status(409);
    assert!(text(again).contains("Not done: no changed version of this document is held"));

    screens
        .post(&format!("{base}/document/block"), &[])
        .await
        .assert_status(303);
    let page = text(screens.get(&format!("{base}/document")).await);
    assert!(
        page.contains("Blocked by") && page.contains("Unblock URL"),
        "{page}"
    );
    // Without the CSRF token, nothing happens.
    let forged = screens
        .post_raw(
            &format!("{base}/document/unblock"),
            &[],
            Some("same-origin"),
        )
        .await;
    assert_ne!(forged.status.as_u16(), 303);
    assert!(document_status(&app, &url).await["blocked"].is_object());
}
