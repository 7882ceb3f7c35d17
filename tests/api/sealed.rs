//! The sealed log: signed tree heads, inclusion and consistency proofs that verify against
//! them (RFC 9162), the log export that recomputes to the signed root, the sealer resuming
//! exactly where it stopped, and one sealer among several processes.

use axum::http::Method;
use base64::Engine as _;
use registry_projections::seal::merkle::{self, Frontier, Hash};
use registry_projections::seal::{keys, leaf_hash_of, TreeHead};
use registry_tests::{backend_tests, spa_client, Backend, TestApp};
use serde_json::{json, Value};

backend_tests!(
    signed_heads_and_proofs_verify_against_the_registry_key,
    the_exported_log_recomputes_to_the_signed_root,
    the_sealer_resumes_exactly_where_it_stopped,
    one_sealer_among_several_processes,
);

pub async fn get(app: &TestApp, path: &str) -> Value {
    let response = app.request(Method::GET, path, None, &[]).await;
    response.assert_status(200);
    response.json()
}

fn hash(text: &Value) -> Hash {
    merkle::from_hex(text.as_str().unwrap()).unwrap()
}

pub async fn writes(app: &TestApp, prefix: &str, count: usize) {
    for i in 0..count {
        let id = format!("{prefix}-{i}");
        app.create_client(&spa_client(&id, "Sealed"))
            .await
            .assert_status(201);
        if i % 3 == 0 {
            app.update_client(&id, &spa_client(&id, "Sealed, renamed"), Some(1))
                .await
                .assert_status(200);
        }
    }
}

pub async fn public_key(app: &TestApp) -> [u8; 32] {
    let key = get(app, "/api/v1/audit/key").await;
    assert_eq!(key["algorithm"], "Ed25519");
    let public = keys::parse_public(key["public_key_pem"].as_str().unwrap()).unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD.encode(public),
        key["public_key"]
    );
    assert_eq!(key["key_id"], keys::key_id(&public));
    public
}

async fn signed_heads_and_proofs_verify_against_the_registry_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let public = public_key(&app).await;
    app.request(Method::GET, "/api/v1/audit/tree-heads", None, &[])
        .await
        .assert_problem(404, "not_sealed");
    writes(&app, "early", 7).await;
    app.seal().await;
    let early: TreeHead =
        serde_json::from_value(get(&app, "/api/v1/audit/tree-heads").await).unwrap();
    assert!(early.verify(&public), "{early:?}");
    writes(&app, "late", 20).await;
    app.seal().await;
    let late: TreeHead =
        serde_json::from_value(get(&app, "/api/v1/audit/tree-heads").await).unwrap();
    assert!(late.verify(&public));
    assert!(late.tree_size > early.tree_size);
    let events = app.feed_positions().await;
    assert_eq!(late.tree_size as usize, events.len(), "every event sealed");
    // A forged head (another size, same signature) does not verify.
    let mut forged = late.clone();
    forged.tree_size -= 1;
    assert!(!forged.verify(&public));

    // Inclusion of every event in the latest tree, and of the early ones in the early tree.
    let root = late.root().unwrap();
    for position in &events {
        let proof = get(
            &app,
            &format!("/api/v1/audit/proof/inclusion?position={position}"),
        )
        .await;
        let path: Vec<Hash> = proof["audit_path"]
            .as_array()
            .unwrap()
            .iter()
            .map(hash)
            .collect();
        assert_eq!(proof["root_hash"], late.root_hash);
        assert!(merkle::verify_inclusion(
            proof["leaf_index"].as_u64().unwrap(),
            late.tree_size,
            &hash(&proof["leaf_hash"]),
            &path,
            &root
        ));
    }
    let first = events[0];
    let proof = get(
        &app,
        &format!(
            "/api/v1/audit/proof/inclusion?position={first}&tree_size={}",
            early.tree_size
        ),
    )
    .await;
    let path: Vec<Hash> = proof["audit_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    assert!(merkle::verify_inclusion(
        0,
        early.tree_size,
        &hash(&proof["leaf_hash"]),
        &path,
        &early.root().unwrap()
    ));

    // The early head is consistent with the late one.
    let consistency = get(
        &app,
        &format!(
            "/api/v1/audit/proof/consistency?from_size={}&to_size={}",
            early.tree_size, late.tree_size
        ),
    )
    .await;
    let proof: Vec<Hash> = consistency["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    assert_eq!(consistency["from_root"], early.root_hash);
    assert!(merkle::verify_consistency(
        early.tree_size,
        late.tree_size,
        &early.root().unwrap(),
        &root,
        &proof
    ));
    // The head of a given size is served too.
    let by_size = get(
        &app,
        &format!("/api/v1/audit/tree-heads?tree_size={}", early.tree_size),
    )
    .await;
    assert_eq!(by_size["root_hash"], early.root_hash);

    // Out of range: problems naming the parameter, never a 500.
    for (path, field) in [
        (
            format!(
                "/api/v1/audit/proof/inclusion?position={first}&tree_size={}",
                late.tree_size + 5
            ),
            "tree_size",
        ),
        (
            format!(
                "/api/v1/audit/proof/consistency?from_size={}&to_size=1",
                late.tree_size
            ),
            "from_size",
        ),
        (
            "/api/v1/audit/proof/consistency?from_size=1&to_size=99999999".to_owned(),
            "to_size",
        ),
    ] {
        let refused = app.request(Method::GET, &path, None, &[]).await;
        assert_eq!(
            refused.assert_problem(400, "invalid_query"),
            [field],
            "{path}"
        );
    }
    app.request(
        Method::GET,
        "/api/v1/audit/proof/inclusion?position=999999",
        None,
        &[],
    )
    .await
    .assert_problem(404, "not_sealed");
}

/// The export's lines, parsed.
pub async fn export(app: &TestApp, query: &str) -> (Vec<Value>, String) {
    let response = app
        .request(
            Method::GET,
            &format!("/api/v1/events/export.jsonl{query}"),
            None,
            &[],
        )
        .await;
    response.assert_status(200);
    assert_eq!(response.header("content-type"), Some("application/jsonl"));
    let text = String::from_utf8(response.body.clone()).unwrap();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, text)
}

async fn the_exported_log_recomputes_to_the_signed_root(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    writes(&app, "export", 12).await;
    app.create_client(&registry_tests::service_client(
        "sealed-worker",
        Some("sealed-worker-secret-0123"),
    ))
    .await
    .assert_status(201);
    app.request(
        Method::POST,
        "/api/v1/clients/sealed-worker/secret",
        Some(&json!({})),
        &[],
    )
    .await
    .assert_status(200);
    app.seal().await;
    let head: TreeHead =
        serde_json::from_value(get(&app, "/api/v1/audit/tree-heads").await).unwrap();
    // Written after the head: not in the export of that head.
    writes(&app, "after", 2).await;
    let (lines, text) = export(&app, "").await;
    let log_text = text.clone();
    assert_eq!(lines.len() as u64, head.tree_size);
    let mut frontier = Frontier::default();
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["leaf_index"], index);
        let recomputed = leaf_hash_of(&line["event"]);
        assert_eq!(merkle::hex(&recomputed), line["leaf_hash"]);
        assert_eq!(line["event"]["position"], line["position"]);
        frontier.push(recomputed);
    }
    assert_eq!(merkle::hex(&frontier.root()), head.root_hash);
    // Each line is canonical JSON: the event's text inside it is exactly what was hashed.
    for raw in text.lines() {
        let value: Value = serde_json::from_str(raw).unwrap();
        assert_eq!(
            registry_projections::seal::canonical::canonical(&value),
            raw
        );
    }
    // The feed and the history carry the same leaf hashes; the events written after the
    // head are not sealed yet.
    app.projector.drain().await.unwrap();
    let feed = get(&app, "/api/v1/events?limit=1000").await;
    for event in feed["events"].as_array().unwrap() {
        let line = lines.iter().find(|l| l["position"] == event["position"]);
        match line {
            Some(line) => assert_eq!(event["leaf_hash"], line["leaf_hash"], "{event}"),
            None => assert!(event["leaf_hash"].is_null(), "{event}"),
        }
    }
    let history = get(&app, "/api/v1/clients/export-0/history").await;
    for event in history["events"].as_array().unwrap() {
        let line = lines
            .iter()
            .find(|l| l["position"] == event["position"])
            .unwrap();
        assert_eq!(event["leaf_hash"], line["leaf_hash"]);
    }
    // The PDF export names the head it reflects (and its document keywords the whole root).
    let pdf = app
        .request(Method::GET, "/api/v1/clients/export.pdf", None, &[])
        .await;
    pdf.assert_status(200);
    let file = std::env::temp_dir().join(format!("sealed-{}.pdf", uuid::Uuid::new_v4()));
    std::fs::write(&file, &pdf.body).unwrap();
    let text = std::process::Command::new(registry_tests::require_tool("pdftotext"))
        .arg(&file)
        .arg("-")
        .output()
        .unwrap();
    let info = std::process::Command::new(registry_tests::require_tool("pdfinfo"))
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_file(&file).ok();
    let text = String::from_utf8_lossy(&text.stdout);
    let expected = format!(
        "sealed log head: {} events, root {}",
        head.tree_size,
        &head.root_hash[..16]
    );
    assert!(text.contains(&expected), "{expected} in {text}");
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains(&head.root_hash), "{info}");
    // A smaller tree exports its prefix.
    let (prefix, _) = export(&app, "?tree_size=3").await;
    assert_eq!(prefix.len(), 3);
    assert_eq!(prefix[..], lines[..3]);
    // And a range.
    let (range, _) = export(&app, "?tree_size=9&from_leaf=4").await;
    assert_eq!(range[..], lines[4..9]);
    app.request(
        Method::GET,
        "/api/v1/events/export.jsonl?tree_size=3&from_leaf=4",
        None,
        &[],
    )
    .await
    .assert_problem(400, "invalid_query");
    // No secret and no secret hash in the log: each argon2id hash is committed to by its
    // SHA-256 instead (an audit:read token must not allow guessing secrets offline).
    assert!(!log_text.contains("sealed-worker-secret"));
    assert!(!log_text.contains("$argon2"), "{log_text}");
    assert!(log_text.contains("\"hash\":\"sha256:"), "{log_text}");
    let stored: Vec<i64> = app
        .scalars("select count(*) from events where cast(payload as text) like '%$argon2id$%'")
        .await;
    assert!(stored[0] >= 2, "the events themselves keep the hashes");
}

async fn the_sealer_resumes_exactly_where_it_stopped(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    writes(&app, "before", 10).await;
    app.seal().await;
    // A batch that fails (here: another sealer's leaf already at the next index) writes
    // nothing of itself.
    writes(&app, "during", 5).await;
    app.projector.drain().await.unwrap();
    let sealed: Vec<i64> = app
        .scalars("select leaf_index from seal_leaves order by leaf_index")
        .await;
    let next = sealed.len();
    app.execute(&format!(
        "insert into seal_leaves (leaf_index, position, leaf_hash) values ({next}, -1, {})",
        if backend == Backend::Postgres {
            "'\\x00'::bytea"
        } else {
            "x'00'"
        }
    ))
    .await;
    assert!(app.sealer.seal_available(true).await.is_err());
    assert_eq!(
        app.scalars("select leaf_index from seal_leaves where position <> -1")
            .await
            .len(),
        next,
        "the failed batch left nothing"
    );
    app.execute("delete from seal_leaves where position = -1")
        .await;
    // A restarted process (a new sealer) goes on from the stored edge.
    app.restart().await;
    writes(&app, "after", 7).await;
    app.seal().await;
    let indexes: Vec<i64> = app
        .scalars("select leaf_index from seal_leaves order by leaf_index")
        .await;
    let positions: Vec<i64> = app
        .scalars("select position from seal_leaves order by leaf_index")
        .await;
    assert_eq!(
        indexes,
        (0..indexes.len() as i64).collect::<Vec<_>>(),
        "no gap, no leaf twice"
    );
    assert_eq!(
        positions,
        app.feed_positions().await,
        "every event once, in feed order"
    );
    let head: TreeHead =
        serde_json::from_value(get(&app, "/api/v1/audit/tree-heads").await).unwrap();
    let (lines, _) = export(&app, "").await;
    let mut frontier = Frontier::default();
    for line in &lines {
        frontier.push(leaf_hash_of(&line["event"]));
    }
    assert_eq!(merkle::hex(&frontier.root()), head.root_hash);
    assert_eq!(head.tree_size as usize, positions.len());
}

async fn one_sealer_among_several_processes(backend: Backend) {
    let first = TestApp::spawn(backend).await;
    let second = first.second_process().await;
    let runs: Vec<_> = [&first, &second]
        .iter()
        .map(|app| {
            let (projector, sealer) = (app.projector.clone(), app.sealer.clone());
            (tokio::spawn(projector.run()), tokio::spawn(sealer.run()))
        })
        .collect();
    writes(&first, "one", 15).await;
    writes(&second, "two", 15).await;
    let expected = first.feed_positions().await;
    let mut waited = 0;
    loop {
        let sealed: Vec<i64> = first
            .scalars("select position from seal_leaves order by leaf_index")
            .await;
        if sealed == expected {
            break;
        }
        waited += 1;
        assert!(
            waited < 200,
            "sealed {} of {}",
            sealed.len(),
            expected.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        usize::from(first.sealer.is_leader()) + usize::from(second.sealer.is_leader()),
        1,
        "exactly one sealer"
    );
    for app in [&first, &second] {
        app.projector.stop();
        app.sealer.stop();
    }
    for (projector, sealer) in runs {
        let _ = projector.await;
        let _ = sealer.await;
    }
    let heads: Vec<i64> = first.scalars("select tree_size from seal_tree_heads").await;
    assert!(!heads.is_empty());
    let _ = json!(null);
}
