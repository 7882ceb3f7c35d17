//! What RFC 7591 §2 says about a client besides its flows (`application_type`, `logo_uri`,
//! `tos_uri`, `policy_uri`, `contacts`, `software_id`, `software_version`): validated, kept
//! by writes that do not mention it, in the history and in clients as code.

use axum::http::Method;
use registry_tests::{backend_tests, service_client, spa_client, Backend, TestApp};
use serde_json::{json, Value};

backend_tests!(
    a_description_is_registered_read_and_kept_by_writes_that_leave_it_out,
    a_bad_description_is_refused_naming_each_field,
    a_description_is_in_the_history_and_round_trips_through_a_document,
    the_token_endpoint_auth_method_follows_the_client_unless_it_names_one,
);

fn described(client_id: &str) -> Value {
    let mut body = spa_client(client_id, "Partner CLI");
    body["application_type"] = json!("native");
    body["redirect_uris"] = json!(["http://127.0.0.1/callback", "com.example.cli:/callback"]);
    body["logo_uri"] = json!("https://partner.example.com/logo.png");
    body["tos_uri"] = json!("https://partner.example.com/tos");
    body["policy_uri"] = json!("https://partner.example.com/privacy");
    body["contacts"] = json!(["identity@partner.example.com", "oncall@partner.example.com"]);
    body["software_id"] = json!("partner-cli");
    body["software_version"] = json!("2.4.1");
    body
}

pub(crate) async fn patch(
    app: &TestApp,
    client_id: &str,
    body: &Value,
) -> registry_tests::TestResponse {
    app.call(Method::PATCH, &format!("/api/v1/clients/{client_id}"))
        .body("application/merge-patch+json", body.to_string())
        .send()
        .await
}

async fn a_description_is_registered_read_and_kept_by_writes_that_leave_it_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app.create_client(&described("partner-cli")).await;
    created.assert_status(201);
    let created = created.json();
    assert_eq!(created["application_type"], "native");
    assert_eq!(created["software_version"], "2.4.1");
    assert_eq!(
        created["contacts"],
        json!(["identity@partner.example.com", "oncall@partner.example.com"])
    );
    let plain = app
        .create_client(&spa_client("plain", "Plain"))
        .await
        .json();
    assert_eq!(plain["application_type"], "web", "the default");
    assert_eq!(plain["logo_uri"], Value::Null);
    assert_eq!(plain["contacts"], json!([]));

    // A PUT of the flows only (a body written before these fields existed) keeps them.
    let mut flows = spa_client("partner-cli", "Partner CLI, renamed");
    flows["redirect_uris"] = json!(["http://127.0.0.1/callback"]);
    app.update_client("partner-cli", &flows, Some(1))
        .await
        .assert_status(200);
    let kept = app.get_client("partner-cli").await.json();
    assert_eq!(kept["client_name"], "Partner CLI, renamed");
    assert_eq!(kept["application_type"], "native");
    assert_eq!(kept["logo_uri"], "https://partner.example.com/logo.png");

    // A merge patch changes one field of it and keeps the rest.
    let patched = patch(
        &app,
        "partner-cli",
        &json!({"logo_uri": null, "software_version": "2.5.0"}),
    )
    .await;
    patched.assert_status(200);
    let patched = patched.json();
    assert_eq!(patched["logo_uri"], Value::Null);
    assert_eq!(patched["software_version"], "2.5.0");
    assert_eq!(patched["tos_uri"], "https://partner.example.com/tos");
    assert_eq!(patched["application_type"], "native");
    assert_eq!(patched["version"], 3);
}

async fn a_bad_description_is_refused_naming_each_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut body = described("bad");
    body["application_type"] = json!("desktop");
    body["logo_uri"] = json!("javascript:alert(1)");
    body["contacts"] = json!(["ops@example.com", "not an address"]);
    body["software_id"] = json!("  ");
    let refused = app.create_client(&body).await;
    refused.assert_status(422);
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    let fields: Vec<String> = refused.json()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fields,
        ["application_type", "logo_uri", "contacts[1]", "software_id"]
    );
    app.get_client("bad").await.assert_status(404);
    let too_many: Vec<String> = (0..21).map(|i| format!("p{i}@example.com")).collect();
    let mut body = described("crowded");
    body["contacts"] = json!(too_many);
    let refused = app.create_client(&body).await;
    refused.assert_status(422);
    assert_eq!(refused.json()["errors"][0]["field"], "contacts");
}

async fn a_description_is_in_the_history_and_round_trips_through_a_document(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    app.create_client(&described("partner-cli"))
        .await
        .assert_status(201);
    app.create_client(&service_client("worker", None))
        .await
        .assert_status(201);
    patch(
        &app,
        "partner-cli",
        &json!({"contacts": ["new-team@partner.example.com"]}),
    )
    .await
    .assert_status(200);
    let history = app
        .get("/api/v1/clients/partner-cli/history")
        .send()
        .await
        .json();
    let registered = &history["events"][0]["changes"];
    let fields: Vec<&str> = registered
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    for field in ["application_type", "logo_uri", "contacts", "software_id"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    let updated = &history["events"][1]["changes"];
    assert_eq!(
        updated,
        &json!([{
            "field": "contacts",
            "before": ["identity@partner.example.com", "oncall@partner.example.com"],
            "after": ["new-team@partner.example.com"]
        }])
    );

    // The export states it; planned back against the same store, nothing changes.
    let export = app.get("/api/v1/clients/export.yaml").send().await;
    export.assert_status(200);
    let document = String::from_utf8(export.body.clone()).unwrap();
    assert!(document.contains("application_type: native"), "{document}");
    assert!(
        document.contains("new-team@partner.example.com"),
        "{document}"
    );
    assert!(
        !document.contains("application_type: web"),
        "the default is left out"
    );
    let plan = crate::documents::plan(&app, &document, "").await;
    plan.assert_status(200);
    let plan = plan.json();
    assert_eq!(
        plan["summary"],
        json!({"create": 0, "update": 0, "delete": 0, "unchanged": 2}),
        "{plan}"
    );
    // A document without the description clears it: the plan says so, field by field.
    let bare = document.replace("  application_type: native\n", "");
    let plan = crate::documents::plan(&app, &bare, "").await.json();
    let step = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["client_id"] == "partner-cli")
        .unwrap();
    assert_eq!(step["action"], "update", "{plan}");
    assert_eq!(
        step["changes"],
        json!([{"field": "application_type", "before": "native", "after": null}]),
        "{plan}"
    );
}

async fn the_token_endpoint_auth_method_follows_the_client_unless_it_names_one(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let web = |id: &str| {
        let mut body = spa_client(id, "Portal");
        body["require_client_secret"] = true.into();
        body
    };
    let derived = app.create_client(&web("portal")).await.json();
    assert_eq!(derived["token_endpoint_auth_method"], "client_secret_basic");
    let spa = app.create_client(&spa_client("spa", "SPA")).await.json();
    assert_eq!(spa["token_endpoint_auth_method"], "none");
    let mut posting = web("posting");
    posting["token_endpoint_auth_method"] = json!("client_secret_post");
    let posting = app.create_client(&posting).await.json();
    assert_eq!(posting["token_endpoint_auth_method"], "client_secret_post");

    // Inconsistent or unknown methods are refused, naming the field.
    for (require_secret, method, words) in [
        (false, "client_secret_basic", "needs a confidential client"),
        (true, "none", "is for a public client"),
        (true, "tls_client_auth", "must be client_secret_basic"),
    ] {
        let mut body = web("refused");
        body["require_client_secret"] = require_secret.into();
        body["token_endpoint_auth_method"] = json!(method);
        let refused = app.create_client(&body).await;
        refused.assert_status(422);
        let error = &refused.json()["errors"][0];
        assert_eq!(error["field"], "token_endpoint_auth_method", "{error}");
        assert!(
            error["message"].as_str().unwrap().contains(words),
            "{error}"
        );
    }

    // A method the client never named follows its confidentiality, also through a patch.
    let public = patch(&app, "portal", &json!({"require_client_secret": false})).await;
    public.assert_status(200);
    assert_eq!(public.json()["token_endpoint_auth_method"], "none");
    // A named one does not silently change: making the client public needs it said.
    let refused = patch(&app, "posting", &json!({"require_client_secret": false})).await;
    refused.assert_status(422);
    assert_eq!(
        refused.json()["errors"][0]["field"],
        "token_endpoint_auth_method"
    );
    // A PUT that leaves it out keeps it.
    let mut put = web("posting");
    put["client_name"] = json!("Posting, renamed");
    app.update_client("posting", &put, Some(1))
        .await
        .assert_status(200);
    let kept = app.get_client("posting").await.json();
    assert_eq!(kept["token_endpoint_auth_method"], "client_secret_post");
    let defaulted = patch(
        &app,
        "posting",
        &json!({"require_client_secret": false, "token_endpoint_auth_method": null}),
    )
    .await;
    defaulted.assert_status(200);
    assert_eq!(defaulted.json()["token_endpoint_auth_method"], "none");
    let history = app
        .get("/api/v1/clients/posting/history")
        .send()
        .await
        .json();
    let last = history["events"].as_array().unwrap().last().unwrap();
    assert!(
        last["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["field"] == "token_endpoint_auth_method"
                && c["before"] == "client_secret_post"
                && c["after"].is_null()),
        "{last}"
    );

    // In a document only when named; planned back, nothing changes.
    let export = app.get("/api/v1/clients/export.yaml").send().await;
    let document = String::from_utf8(export.body.clone()).unwrap();
    assert_eq!(
        document.matches("token_endpoint_auth_method").count(),
        0,
        "{document}"
    );
    let mut named = web("named");
    named["token_endpoint_auth_method"] = json!("client_secret_post");
    app.create_client(&named).await.assert_status(201);
    let export = app.get("/api/v1/clients/export.yaml").send().await;
    let document = String::from_utf8(export.body.clone()).unwrap();
    assert!(
        document.contains("token_endpoint_auth_method: client_secret_post"),
        "{document}"
    );
    let plan = crate::documents::plan(&app, &document, "").await.json();
    assert_eq!(plan["summary"]["unchanged"], 4, "{plan}");
}
