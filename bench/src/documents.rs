//! Clients as code: plan of a large document against many clients, apply against
//! one-by-one registration.

#[allow(clippy::wildcard_imports)]
use crate::*;

impl Bench<'_> {
    /// Clients as code: a plan of a 10,000-client document against the seeded store (7,000
    /// of them unchanged, 2,000 renamed, 1,000 new), three times, and the apply of 1,000
    /// creations, compared with registering them one by one over one connection.
    pub(crate) fn documents(&mut self, server: &Server) -> anyhow::Result<()> {
        self.plan_large_document(server)?;
        self.apply_creations(server)
    }

    /// Plans of a large document, three times; the median.
    fn plan_large_document(&mut self, server: &Server) -> anyhow::Result<()> {
        let size = self.scaled(10_000).min(self.seeded);
        let (renamed, new) = (size / 5, size / 10);
        let kept = size - renamed - new;
        let document = large_document(kept, renamed, new)?;
        let mut connection = http::Connection::open(&server.addr, &server.token)?;
        let mut timings = Vec::new();
        let mut plan = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let response = connection.send("POST", "/api/v1/clients/plan", Some(&document))?;
            timings.push(started.elapsed().as_secs_f64());
            anyhow::ensure!(
                response.status == 200,
                "plan answered {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
            plan = response.body;
        }
        let parsed: serde_json::Value = serde_json::from_slice(&plan)?;
        let summary = &parsed["summary"];
        anyhow::ensure!(
            summary["update"] == renamed
                && summary["create"] == new
                && summary["unchanged"] == kept,
            "unexpected plan summary {summary}"
        );
        timings.sort_by(f64::total_cmp);
        self.figure(
            format!(
                "plan of a {size}-client document against {} clients",
                self.seeded
            ),
            format!("{:.2} s", timings[1]),
            "2 s (issue 12)",
            ratio(timings[1], 2.0),
            format!(
                "median of 3 (min {:.2}, max {:.2} s); {kept} unchanged, {renamed} updates, {new} \
                 creates; document {:.1} MB, plan {:.1} MB",
                timings[0],
                timings[2],
                document.len() as f64 / 1e6,
                plan.len() as f64 / 1e6
            ),
        );

        Ok(())
    }

    /// Apply of creations only, against one-by-one registration over one connection.
    fn apply_creations(&mut self, server: &Server) -> anyhow::Result<()> {
        let mut connection = http::Connection::open(&server.addr, &server.token)?;
        let creates = self.scaled(1000);
        let make = |prefix: &str| -> String {
            let clients: Vec<serde_json::Value> = (0..creates)
                .map(|i| {
                    serde_json::from_str(&public_client(
                        &format!("{prefix}-{i:06}"),
                        &client_name(i),
                    ))
                    .unwrap()
                })
                .collect();
            serde_json::json!({ "clients": clients }).to_string()
        };
        let planned = connection.send("POST", "/api/v1/clients/plan", Some(&make("applied")))?;
        anyhow::ensure!(planned.status == 200, "plan answered {}", planned.status);
        let request = format!(
            "{{\"plan\":{},\"reason\":\"benchmark\"}}",
            String::from_utf8_lossy(&planned.body)
        );
        let started = Instant::now();
        let applied = connection.send("POST", "/api/v1/clients/apply", Some(&request))?;
        let apply_time = started.elapsed().as_secs_f64();
        let result: serde_json::Value = serde_json::from_slice(&applied.body)?;
        anyhow::ensure!(
            applied.status == 200 && result["complete"] == true,
            "apply answered {}: {result}",
            applied.status
        );
        let one_by_one = self.load(server, 1, creates, &[201], |i| Request {
            method: "POST",
            path: "/api/v1/clients".into(),
            body: Some(public_client(&format!("single-{i:06}"), &client_name(i))),
        });
        let rate = creates as f64 / apply_time;
        self.figure(
            format!("apply of {creates} creations (one request)"),
            format!("{rate:.0} /s"),
            format!(
                "{:.0} /s (POST /clients, 1 conn, same run)",
                one_by_one.rate()
            ),
            ratio(rate, one_by_one.rate()),
            format!("{apply_time:.2} s for the apply request"),
        );
        Ok(())
    }
}

/// A document of `kept` seeded clients as they are, `renamed` with a new name, and `new` ones.
fn large_document(kept: usize, renamed: usize, new: usize) -> anyhow::Result<String> {
    let mut clients: Vec<serde_json::Value> = Vec::with_capacity(kept + renamed + new);
    for i in 0..kept + renamed {
        let name = if i < kept {
            client_name(i)
        } else {
            format!("Renamed {}", client_name(i))
        };
        clients.push(serde_json::from_str(&public_client(
            &format!("bench-{i:06}"),
            &name,
        ))?);
    }
    for i in 0..new {
        clients.push(serde_json::from_str(&public_client(
            &format!("doc-new-{i:06}"),
            &client_name(i),
        ))?);
    }
    Ok(serde_json::json!({ "clients": clients }).to_string())
}
