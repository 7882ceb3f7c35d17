//! `client-registry clients …` as a pipeline runs it: the real binary against a served
//! registry, its output and its exit codes (plan: 0 nothing to do, 2 changes pending, 1 error;
//! apply: 0 only when every step ran), and `clients convert` of a Keycloak realm export and a
//! Duende configuration.

use std::path::{Path, PathBuf};

use axum::http::Method;
use registry_tests::{backend_tests, spa_client, Backend, TestApp, ADMIN_TOKEN};
use serde_json::{json, Value};

backend_tests!(
    plan_and_apply_exit_codes_tell_a_pipeline_what_happened,
    a_converted_keycloak_realm_plans_and_applies,
);

/// The binary's answer: exit code, standard output, standard error.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `client-registry clients ARGS` with `env`, off the runtime's threads (the registry it
/// calls is served by this test's runtime).
pub(crate) async fn cli(args: &[&str], env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_registry-under-test"))
            .arg("clients")
            .args(&args)
            .env_remove("REGISTRY_URL")
            .env_remove("REGISTRY_TOKEN")
            .env("REGISTRY_LOG", "warn")
            .envs(env)
            .output()
            .unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

pub(crate) fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("registry-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn plan_and_apply_exit_codes_tell_a_pipeline_what_happened(backend: Backend) {
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let url = app.serve().await;
    let dir = temp_dir();
    let remote = ["--url", url.as_str(), "--token", ADMIN_TOKEN];
    let document = "clients:\n\
        - client_id: cli-worker\n  client_name: CLI worker\n  client_secret_env: CLI_WORKER_SECRET\n  grant_types: [client_credentials]\n\
        - client_id: cli-spa\n  client_name: CLI SPA\n  require_client_secret: false\n  redirect_uris: ['${CLIENTS_ORIGIN}/cb']\n";
    let file = write(&dir, "clients.yaml", document);
    let file = file.to_str().unwrap();

    // Without --env a `${…}` is refused before anything is sent (`https://${HOST}/cb` would
    // be a valid URL, registered as is), exit 1.
    let literal = cli(&[&["plan", "-f", file][..], &remote].concat(), &[]).await;
    assert_eq!(literal.code, 1, "{literal:?}");
    assert!(literal.stderr.contains("pass --env"), "{literal:?}");
    // The registry's errors come with their paths.
    let bad = write(
        &dir,
        "bad.yaml",
        "clients:\n- client_id: bad\n  client_name: Bad\n  redirect_uris: ['not a url']\n",
    );
    let refused = cli(
        &[&["plan", "-f", bad.to_str().unwrap()][..], &remote].concat(),
        &[],
    )
    .await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("clients[0].redirect_uris[0]"),
        "{refused:?}"
    );
    // A usage error is 1 too, never 2 ("changes pending").
    let usage = cli(&["plan", "--no-such-flag"], &[]).await;
    assert_eq!(usage.code, 1, "{usage:?}");
    // --env without the variable: named, exit 1, nothing sent.
    let unset = cli(&[&["plan", "--env", "-f", file][..], &remote].concat(), &[]).await;
    assert_eq!(unset.code, 1, "{unset:?}");
    assert!(unset.stderr.contains("CLIENTS_ORIGIN"), "{unset:?}");

    let host = [("CLIENTS_ORIGIN", "https://spa.example.com")];
    let pending = cli(
        &[&["plan", "--env", "-f", file][..], &remote].concat(),
        &host,
    )
    .await;
    assert_eq!(pending.code, 2, "changes pending: {pending:?}");
    assert!(
        pending.stdout.contains("+ create cli-worker"),
        "{pending:?}"
    );
    assert!(
        pending
            .stdout
            .contains("    + redirect_uris: [\"https://spa.example.com/cb\"]")
            || pending.stdout.contains("https://spa.example.com/cb"),
        "{pending:?}"
    );
    assert!(pending.stdout.contains("secret from $CLI_WORKER_SECRET"));
    assert!(pending.stdout.contains("2 to create, 0 to update"));
    assert!(
        !pending.stdout.contains('\u{1b}'),
        "no colour when not on a terminal"
    );
    app.get_client("cli-worker").await.assert_status(404);

    let saved = dir.join("plan.json");
    let json_plan = cli(
        &[
            &["plan", "--env", "-f", file, "--output", "json", "--save"][..],
            &[saved.to_str().unwrap()],
            &remote,
        ]
        .concat(),
        &host,
    )
    .await;
    assert_eq!(json_plan.code, 2, "{json_plan:?}");
    let printed: Value = serde_json::from_str(&json_plan.stdout).unwrap();
    assert_eq!(printed["summary"]["create"], 2);

    // The secret named by client_secret_env must be in the applier's environment.
    let no_secret = cli(
        &[&["apply", "--plan", saved.to_str().unwrap()][..], &remote].concat(),
        &[],
    )
    .await;
    assert_eq!(no_secret.code, 1, "{no_secret:?}");
    assert!(
        no_secret.stderr.contains("CLI_WORKER_SECRET"),
        "{no_secret:?}"
    );
    app.get_client("cli-worker").await.assert_status(404);

    let applied = cli(
        &[
            &[
                "apply",
                "--plan",
                saved.to_str().unwrap(),
                "--reason",
                "commit 0c1d2e3",
            ][..],
            &remote,
        ]
        .concat(),
        &[("CLI_WORKER_SECRET", "worker-secret-from-the-vault")],
    )
    .await;
    assert_eq!(applied.code, 0, "{applied:?}");
    assert!(
        applied.stdout.contains("cli-worker: now version 1"),
        "{applied:?}"
    );
    let verified = app
        .request(
            Method::POST,
            "/api/v1/clients/cli-worker/secret/verify",
            Some(&json!({ "client_secret": "worker-secret-from-the-vault" })),
            &[],
        )
        .await
        .json();
    assert_eq!(verified["valid"], true);
    let (_, metadata) = app.events_of("cli-spa").await.pop().unwrap();
    assert_eq!(metadata["reason"], "commit 0c1d2e3");

    // Applied: no drift, exit 0.
    let clean = cli(
        &[&["plan", "--env", "-f", file][..], &remote].concat(),
        &host,
    )
    .await;
    assert_eq!(clean.code, 0, "{clean:?}");
    assert!(clean
        .stdout
        .contains("0 to create, 0 to update, 0 to delete, 2 unchanged"));

    // Drift: a change by hand shows as an update back to the document (exit 2) …
    app.update_client(
        "cli-spa",
        &spa_client("cli-spa", "Renamed by hand"),
        Some(1),
    )
    .await
    .assert_status(200);
    let drift = cli(
        &[
            &["plan", "--env", "-f", file, "--save"][..],
            &[saved.to_str().unwrap()],
            &remote,
        ]
        .concat(),
        &host,
    )
    .await;
    assert_eq!(drift.code, 2, "{drift:?}");
    assert!(
        drift.stdout.contains("~ update cli-spa (version 2)"),
        "{drift:?}"
    );
    assert!(
        drift
            .stdout
            .contains("~ client_name: \"Renamed by hand\" → \"CLI SPA\""),
        "{drift:?}"
    );
    // … and when someone edits it again after the plan, apply reports the conflict: exit 1.
    app.update_client("cli-spa", &spa_client("cli-spa", "Edited again"), Some(2))
        .await
        .assert_status(200);
    let conflict = cli(
        &[&["apply", "--plan", saved.to_str().unwrap()][..], &remote].concat(),
        &[],
    )
    .await;
    assert_eq!(conflict.code, 1, "{conflict:?}");
    assert!(
        conflict.stdout.contains("not applied: cli-spa"),
        "{conflict:?}"
    );
    assert_eq!(
        app.get_client("cli-spa").await.json()["client_name"],
        "Edited again"
    );

    // Export through the CLI is the API's document.
    let exported = cli(&[&["export"][..], &remote].concat(), &[]).await;
    assert_eq!(exported.code, 0, "{exported:?}");
    let api = app
        .request(Method::GET, "/api/v1/clients/export.yaml", None, &[])
        .await;
    assert_eq!(exported.stdout.as_bytes(), &api.body[..]);

    // A wrong token and an unreachable registry: exit 1 with the reason.
    let denied = cli(
        &[
            "plan",
            "--env",
            "-f",
            file,
            "--url",
            &url,
            "--token",
            "not-a-token",
        ],
        &host,
    )
    .await;
    assert_eq!(denied.code, 1, "{denied:?}");
    assert!(denied.stderr.contains("401"), "{denied:?}");
    let unreachable = cli(
        &[
            "plan",
            "--env",
            "-f",
            file,
            "--url",
            "http://127.0.0.1:9",
            "--token",
            ADMIN_TOKEN,
        ],
        &host,
    )
    .await;
    assert_eq!(unreachable.code, 1, "{unreachable:?}");
    assert!(unreachable.stderr.contains("calling"), "{unreachable:?}");
    std::fs::remove_dir_all(dir).ok();
}

fn fixture(name: &str) -> String {
    format!("{}/fixtures/convert/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `clients convert --from keycloak`: the document on stdout, the report on stderr.
async fn a_converted_keycloak_realm_plans_and_applies(backend: Backend) {
    let run = cli(
        &[
            "convert",
            "--from",
            "keycloak",
            &fixture("keycloak-realm.json"),
            "--format",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let document: Value = serde_json::from_str(&run.stdout).unwrap();
    let ids: Vec<&str> = document["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["data-refinery-studio", "octo-cli", "legacy-portal"]);
    for expected in [
        "skipped: account (Keycloak built-in), admin-cli (Keycloak built-in)",
        "saml-intranet (protocol saml)",
        "need a new secret",
        "data-refinery-studio: redirectUris: \"https://*.example.com/callback\" left out",
        "octo-cli: webOrigins: \"*\" left out",
        "legacy-portal: redirect_uris: plan will refuse this client until it is fixed",
    ] {
        assert!(run.stderr.contains(expected), "{expected} in {run:?}");
    }
    assert!(!run.stdout.contains("**********"), "no secret copied");

    // The report is right: as converted the document is refused, naming the broken client …
    let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
    let refused = app
        .request(Method::POST, "/api/v1/clients/plan", Some(&document), &[])
        .await;
    assert_eq!(
        refused.assert_problem(422, "validation_failed"),
        ["clients[2].redirect_uris"]
    );
    // … and without it, the plan creates the other two and apply runs it.
    let mut fixed = document.clone();
    fixed["clients"].as_array_mut().unwrap().pop();
    let planned = app
        .request(Method::POST, "/api/v1/clients/plan", Some(&fixed), &[])
        .await;
    planned.assert_status(200);
    let plan = planned.json();
    assert_eq!(plan["summary"]["create"], 2, "{plan}");
    let result = app
        .request(
            Method::POST,
            "/api/v1/clients/apply",
            Some(&json!({"plan": plan, "reason": "migrated from Keycloak"})),
            &[],
        )
        .await
        .json();
    assert_eq!(result["complete"], true, "{result}");
    assert_eq!(
        result["secrets"][0]["client_id"], "data-refinery-studio",
        "a new secret, shown once: {result}"
    );
    let studio = app.get_client("data-refinery-studio").await.json();
    assert_eq!(studio["offline_access"], true);
    assert_eq!(
        studio["redirect_uris"],
        json!([
            "https://studio.example.com/callback",
            "https://studio.example.com/silent-renew"
        ])
    );
}
