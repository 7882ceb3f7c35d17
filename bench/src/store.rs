//! The read model rebuilt from a million events, and the sealed log: sealing, proofs,
//! offline verify and what the sealer costs writers.

#[allow(clippy::wildcard_imports)]
use crate::*;

impl Bench<'_> {
    pub(crate) fn rebuild(&mut self) -> anyhow::Result<()> {
        let existing = bulk::count_events(&self.database.url)?;
        let wanted = self.args.events.max(existing);
        let missing = wanted.saturating_sub(existing);
        let per_client = 10;
        let clients = missing.div_ceil(per_client);
        let started = Instant::now();
        let inserted = bulk::insert(&self.database.url, "bulk", clients, per_client)?;
        let insert_time = started.elapsed();
        let total = existing + inserted;
        let started = Instant::now();
        let output = std::process::Command::new(server::binary()?)
            .args(["projections", "rebuild"])
            .env("REGISTRY_DATABASE_URL", &self.database.url)
            .env("REGISTRY_LOG", "warn")
            .output()?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            output.status.success(),
            "rebuild failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let rate = total as f64 / elapsed.as_secs_f64();
        self.figure(
            format!("projections rebuild over {total} events"),
            format!("{rate:.0} events/s"),
            "",
            "",
            format!(
                "{:.1} s (process start and migrations included); bulk insert of {inserted} events took {:.1} s",
                elapsed.as_secs_f64(),
                insert_time.as_secs_f64()
            ),
        );
        Ok(())
    }

    /// The sealed log over the whole store (a million events after the rebuild phase): how
    /// fast a fresh sealer catches up, an inclusion proof's latency, exporting the log and
    /// verifying it offline, and what sealing costs writers (rounds with the sealer on and
    /// off, ABBA).
    pub(crate) fn seal(&mut self) -> anyhow::Result<()> {
        let total = bulk::count_events(&self.database.url)?;
        let sealed_before = bulk::count_rows(&self.database.url, "seal_leaves")?;
        let server = Server::start(
            &self.database.url,
            &[("REGISTRY_AUDIT_HEAD_INTERVAL_MS", "100")],
        )?;
        let head = self.seal_catch_up(&server, total, sealed_before)?;
        self.seal_proofs(&server, total)?;
        self.seal_verify(server, &head, total)?;
        self.seal_cost()
    }

    /// How fast a fresh sealer catches up: until the head covers every event.
    fn seal_catch_up(
        &mut self,
        server: &Server,
        total: usize,
        sealed_before: usize,
    ) -> anyhow::Result<serde_json::Value> {
        let started = Instant::now();
        let mut connection = http::Connection::open(&server.addr, &server.token)?;
        let head = loop {
            let response = connection.send("GET", "/api/v1/audit/tree-heads", None)?;
            if response.status == 200 {
                let head: serde_json::Value = serde_json::from_slice(&response.body)?;
                if head["tree_size"].as_u64() == Some(total as u64) {
                    break head;
                }
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(600),
                "the sealer did not catch up within 10 minutes"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let elapsed = started.elapsed().as_secs_f64();
        let sealed = total - sealed_before;
        let rate = sealed as f64 / elapsed;
        self.figure(
            format!("sealing {sealed} events (a fresh process catching up)"),
            format!("{rate:.0} events/s"),
            "20000 events/s (issue 13)",
            ratio(rate, 20_000.0),
            format!("{elapsed:.1} s from the process answering to the head of {total} signed"),
        );

        Ok(head)
    }

    /// An inclusion proof's latency in the whole tree.
    fn seal_proofs(&mut self, server: &Server, total: usize) -> anyhow::Result<()> {
        let positions = bulk::sample_positions(&self.database.url, 997)?;
        let proofs = self.load(server, 1, self.scaled(2000), &[200], |i| Request {
            method: "GET",
            path: format!(
                "/api/v1/audit/proof/inclusion?position={}",
                positions[i % positions.len()]
            ),
            body: None,
        });
        self.figure(
            format!("inclusion proof in a tree of {total}, 1 conn"),
            format!("{:.2} ms p99", proofs.percentile_ms(99.0)),
            "5 ms (issue 13)",
            ratio(proofs.percentile_ms(99.0), 5.0),
            latency_note(&proofs),
        );

        Ok(())
    }

    /// Exporting the log and verifying it offline (the real binary, after the server ends).
    fn seal_verify(
        &mut self,
        server: Server,
        head: &serde_json::Value,
        total: usize,
    ) -> anyhow::Result<()> {
        let mut connection = http::Connection::open(&server.addr, &server.token)?;
        let dir =
            std::env::temp_dir().join(format!("registry-bench-seal-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)?;
        let head_path = dir.join("head.json");
        std::fs::write(&head_path, head.to_string())?;
        let key = connection.send("GET", "/api/v1/audit/key", None)?;
        let key_path = dir.join("key.json");
        std::fs::write(&key_path, &key.body)?;
        let started = Instant::now();
        let export = connection.send(
            "GET",
            &format!("/api/v1/events/export.jsonl?tree_size={total}"),
            None,
        )?;
        let export_time = started.elapsed().as_secs_f64();
        anyhow::ensure!(export.status == 200, "export answered {}", export.status);
        let log_path = dir.join("events.jsonl");
        std::fs::write(&log_path, &export.body)?;
        drop(server);
        let started = Instant::now();
        let verified = std::process::Command::new(server::binary()?)
            .args(["audit", "verify", "--log"])
            .arg(&log_path)
            .arg("--tree-head")
            .arg(&head_path)
            .arg("--public-key")
            .arg(&key_path)
            .output()?;
        let verify_time = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            verified.status.success(),
            "audit verify failed: {}",
            String::from_utf8_lossy(&verified.stdout)
        );
        self.figure(
            format!("audit verify of {total} events, offline"),
            format!("{verify_time:.1} s"),
            "10 s (issue 13)",
            ratio(verify_time, 10.0),
            format!(
                "{:.0} MB of JSON Lines, exported in {export_time:.1} s",
                export.body.len() as f64 / 1e6
            ),
        );
        std::fs::remove_dir_all(&dir).ok();

        Ok(())
    }

    /// What sealing costs writers: rounds with the sealer on and off, ABBA.
    fn seal_cost(&mut self) -> anyhow::Result<()> {
        // What sealing costs writers: public registrations at 16 connections, with the
        // sealer running and without, each round on a process of its own.
        // More rounds than the metrics cost: a process per round adds its start to the noise.
        let rounds = if self.args.quick { 2 } else { 4 };
        let per_round = 6000;
        let (mut without, mut with) = (Vec::new(), Vec::new());
        for round in 0..rounds * 2 {
            let sealing = matches!(round % 4, 1 | 2);
            let server = Server::start(
                &self.database.url,
                &[(
                    "REGISTRY_AUDIT_SEAL",
                    if sealing { "true" } else { "false" },
                )],
            )?;
            let prefix = format!("sealcost{round}");
            let result = self.load(&server, 16, per_round, &[201], |i| Request {
                method: "POST",
                path: "/api/v1/clients".into(),
                body: Some(public_client(&format!("{prefix}-{i:06}"), &client_name(i))),
            });
            if sealing {
                with.push(result.rate());
            } else {
                without.push(result.rate());
            }
        }
        let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len().max(1) as f64;
        let (plain, sealed_rate) = (mean(&without), mean(&with));
        self.figure(
            "POST /clients, public, 16 conn, with the sealer running",
            format!("{sealed_rate:.0} /s"),
            format!("{plain:.0} /s (same, sealer off)"),
            ratio(sealed_rate, plain),
            format!("mean of {rounds} rounds of {per_round} each, ordered ABBA, a process per round; goal ≥ 95 %"),
        );
        Ok(())
    }
}
