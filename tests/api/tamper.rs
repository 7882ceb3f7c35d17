//! The sealed log against someone who can write the database: a payload changed with SQL, an
//! event deleted, a back-dated one inserted, two swapped, the tail truncated. `audit verify`
//! (offline, the real binary) and an independent checker in Python (standard library only,
//! from the README's description) each catch every one and name the same position; on the
//! untouched log both say OK. And a head taken before 1,000 more writes is proven consistent
//! with the later one.

use std::path::{Path, PathBuf};

use axum::http::Method;
use registry_projections::seal::merkle::{self, Hash};
use registry_projections::seal::TreeHead;
use registry_tests::{backend_tests, spa_client, Backend, TestApp};
use serde_json::Value;

use crate::sealed::{get, writes};

backend_tests!(
    every_kind_of_tampering_is_caught_at_its_position,
    a_head_before_a_thousand_writes_is_consistent_with_the_one_after,
);

struct Files {
    dir: PathBuf,
}

impl Files {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("registry-tamper-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the two checkers say: (exit code, first line) of `audit verify`, then of verify.py.
async fn check(
    log: &Path,
    head: &Path,
    key: &Path,
    previous: Option<&Path>,
) -> ((i32, String), (i32, String)) {
    let (log, head, key) = (log.to_owned(), head.to_owned(), key.to_owned());
    let previous = previous.map(Path::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut ours = std::process::Command::new(env!("CARGO_BIN_EXE_registry-under-test"));
        ours.args(["audit", "verify", "--log"])
            .arg(&log)
            .arg("--tree-head")
            .arg(&head)
            .arg("--public-key")
            .arg(&key)
            .env("REGISTRY_LOG", "warn");
        if let Some(previous) = &previous {
            ours.arg("--previous-tree-head").arg(previous);
        }
        let ours = ours.output().unwrap();
        let theirs = std::process::Command::new(registry_tests::require_tool("python3"))
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/audit/verify.py"))
            .args([&log, &head, &key])
            .output()
            .unwrap();
        let first = |out: &std::process::Output| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.code().is_some(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            (
                out.status.code().unwrap(),
                text.lines().next().unwrap_or_default().to_owned()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        };
        (first(&ours), first(&theirs))
    })
    .await
    .unwrap()
}

/// The position a checker's first line names (`TAMPERED at position P: …`).
fn position(line: &str) -> &str {
    line.strip_prefix("TAMPERED at position ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("not a tampering report: {line}"))
}

async fn export_text(app: &TestApp, query: &str) -> String {
    let response = app
        .request(
            Method::GET,
            &format!("/api/v1/events/export.jsonl{query}"),
            None,
            &[],
        )
        .await;
    response.assert_status(200);
    String::from_utf8(response.body).unwrap()
}

async fn position_of(app: &TestApp, client_id: &str, sequence: i64) -> i64 {
    app.scalars(&format!(
        "select global_position from events where aggregate_id = '{client_id}' and sequence = {sequence}"
    ))
    .await[0]
}

async fn every_kind_of_tampering_is_caught_at_its_position(backend: Backend) {
    let pg = backend == Backend::Postgres;
    // (name, SQL to run, the position the checkers must name: a function of the app)
    let kinds = [
        "payload",
        "delete",
        "backdated",
        "swap",
        "truncate",
        "truncate-all",
    ];
    for kind in kinds {
        let app = TestApp::spawn_with(backend, |c| c.seed_default_clients = false).await;
        writes(&app, "tamper", 12).await;
        app.seal().await;
        let files = Files::new();
        let key = get(&app, "/api/v1/audit/key").await;
        let key_path = files.write("key.pub", key["public_key_pem"].as_str().unwrap());
        let head_value = get(&app, "/api/v1/audit/tree-heads").await;
        let head: TreeHead = serde_json::from_value(head_value.clone()).unwrap();
        let head_path = files.write("head.json", &head_value.to_string());
        if kind == "payload" {
            // The untouched log first: both checkers agree it is whole.
            let clean = files.write("clean.jsonl", &export_text(&app, "").await);
            let (ours, theirs) = check(&clean, &head_path, &key_path, None).await;
            assert_eq!(ours.0, 0, "{ours:?}");
            assert!(ours.1.starts_with("OK: "), "{ours:?}");
            assert_eq!(theirs, (0, "OK".to_owned()));
        }
        let positions = app.feed_positions().await;
        let target = position_of(&app, "tamper-4", 1).await;
        let expected = match kind {
            "payload" => {
                app.execute(&if pg {
                    format!("update events set payload = (replace(payload::text, 'Sealed', 'Forged'))::jsonb where global_position = {target}")
                } else {
                    format!("update events set payload = replace(payload, 'Sealed', 'Forged') where global_position = {target}")
                })
                .await;
                target.to_string()
            }
            "delete" => {
                app.execute(&format!(
                    "delete from events where global_position = {target}"
                ))
                .await;
                target.to_string()
            }
            "backdated" => {
                // A registration slipped in before everything, dated last year.
                let source = position_of(&app, "tamper-2", 1).await;
                app.execute(&format!(
                    "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) \
                     select aggregate_type, 'ghost', sequence, event_type, event_version, payload, metadata \
                     from events where global_position = {source}"
                ))
                .await;
                app.execute("update events set global_position = 0 where aggregate_id = 'ghost'")
                    .await;
                "0".to_owned()
            }
            "swap" => {
                let other = position_of(&app, "tamper-7", 1).await;
                for sql in [
                    format!("update events set global_position = -1 where global_position = {target}"),
                    format!("update events set global_position = {target} where global_position = {other}"),
                    format!("update events set global_position = {other} where global_position = -1"),
                ] {
                    app.execute(&sql).await;
                }
                target.min(other).to_string()
            }
            "truncate" => {
                let keep = positions[positions.len() - 4];
                app.execute(&format!(
                    "delete from events where global_position > {keep}"
                ))
                .await;
                positions[positions.len() - 3].to_string()
            }
            // The tail removed, and the whole seal wiped so that the registry (the attacker
            // runs it: it signs what it is given) seals the shorter history afresh. The head
            // the auditor saved earlier still tells.
            _ => {
                let keep = positions[positions.len() - 4];
                app.execute(&format!(
                    "delete from events where global_position > {keep}"
                ))
                .await;
                for table in ["seal_leaves", "seal_nodes", "seal_tree_heads"] {
                    app.execute(&format!("delete from {table}")).await;
                }
                "-".to_owned()
            }
        };
        let mut app = app;
        if kind == "truncate-all" {
            app.restart().await;
            app.seal().await;
            let resealed: TreeHead =
                serde_json::from_value(get(&app, "/api/v1/audit/tree-heads").await).unwrap();
            assert_eq!(resealed.tree_size + 3, head.tree_size);
        }
        let log = files.write("log.jsonl", &export_text(&app, "").await);
        let (ours, theirs) = check(&log, &head_path, &key_path, None).await;
        assert_eq!(ours.0, 1, "{kind}: {ours:?}");
        assert_eq!(theirs.0, 1, "{kind}: {theirs:?}");
        assert_eq!(position(&ours.1), expected, "{kind}: {ours:?}");
        assert_eq!(position(&theirs.1), expected, "{kind}: {theirs:?}");
    }
}

async fn a_head_before_a_thousand_writes_is_consistent_with_the_one_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    writes(&app, "before", 5).await;
    app.seal().await;
    let files = Files::new();
    let earlier_value = get(&app, "/api/v1/audit/tree-heads").await;
    let earlier: TreeHead = serde_json::from_value(earlier_value.clone()).unwrap();
    let earlier_path = files.write("earlier.json", &earlier_value.to_string());
    for i in 0..1000 {
        app.create_client(&spa_client(&format!("many-{i:04}"), "Many"))
            .await
            .assert_status(201);
    }
    app.seal().await;
    let later_value = get(&app, "/api/v1/audit/tree-heads").await;
    let later: TreeHead = serde_json::from_value(later_value.clone()).unwrap();
    assert!(later.tree_size >= earlier.tree_size + 1000);
    let proof = get(
        &app,
        &format!(
            "/api/v1/audit/proof/consistency?from_size={}&to_size={}",
            earlier.tree_size, later.tree_size
        ),
    )
    .await;
    let hashes: Vec<Hash> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h: &Value| merkle::from_hex(h.as_str().unwrap()).unwrap())
        .collect();
    assert!(merkle::verify_consistency(
        earlier.tree_size,
        later.tree_size,
        &earlier.root().unwrap(),
        &later.root().unwrap(),
        &hashes
    ));
    // And offline: the later log verifies, with the earlier head as a prefix.
    let key = get(&app, "/api/v1/audit/key").await;
    let key_path = files.write("key.json", &key.to_string());
    let later_path = files.write("later.json", &later_value.to_string());
    let log = files.write("log.jsonl", &export_text(&app, "").await);
    let (ours, theirs) = check(&log, &later_path, &key_path, Some(&earlier_path)).await;
    assert_eq!(ours.0, 0, "{ours:?}");
    assert!(
        ours.1.contains("consistent with the earlier head"),
        "{ours:?}"
    );
    assert_eq!(theirs.0, 0, "{theirs:?}");
    // An earlier head that is not a prefix (its root changed: someone re-wrote history
    // before it) is caught.
    let mut forged = earlier_value.clone();
    forged["root_hash"] = Value::String(merkle::hex(&merkle::leaf_hash(b"other history")));
    let forged_path = files.write("forged.json", &forged.to_string());
    let (ours, _) = check(&log, &later_path, &key_path, Some(&forged_path)).await;
    assert_eq!(ours.0, 1, "{ours:?}");
}
