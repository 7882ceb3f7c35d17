//! Exports (xlsx, pdf) with the server's memory sampled, and a client with a long stream.

#[allow(clippy::wildcard_imports)]
use crate::*;

impl Bench<'_> {
    pub(crate) fn exports(&mut self, server: &Server) -> anyhow::Result<()> {
        for format in ["xlsx", "pdf"] {
            let before = server.rss_kib();
            let (response, peak) = server.sample_rss(|| {
                let started = Instant::now();
                let mut connection = http::Connection::open(&server.addr, &server.token)?;
                let response =
                    connection.send("GET", &format!("/api/v1/clients/export.{format}"), None)?;
                anyhow::Ok((response, started.elapsed()))
            });
            let (response, elapsed) = response?;
            anyhow::ensure!(
                response.status == 200,
                "export.{format} answered {}",
                response.status
            );
            let rows: usize = response
                .header("x-export-rows")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            self.figure(
                format!("export of {rows} clients to {format}"),
                format!("{:.2} s", elapsed.as_secs_f64()),
                "",
                "",
                format!(
                    "{:.1} MiB file; server RSS {} before, peak {} during (+{})",
                    response.body.len() as f64 / 1_048_576.0,
                    mib(before),
                    mib(peak),
                    mib(peak.saturating_sub(before))
                ),
            );
        }
        Ok(())
    }

    pub(crate) fn long_stream(&mut self, server: &Server) -> anyhow::Result<()> {
        let events = 10_000;
        let inserted = bulk::insert(&self.database.url, "long", 1, events)?;
        anyhow::ensure!(inserted == events, "inserted {inserted} events");
        // Let the background projector apply them before measuring.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut connection = http::Connection::open(&server.addr, &server.token)?;
            let metrics = connection.send("GET", "/metrics", None)?;
            let text = String::from_utf8_lossy(&metrics.body).into_owned();
            if text.lines().any(|l| l == "registry_projector_lag_events 0") {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "the projector did not catch up");
            std::thread::sleep(Duration::from_millis(200));
        }
        let id = bulk::client_id("long", 1);
        let result = self.load(server, 1, 20, &[200], |i| Request {
            method: "PUT",
            path: format!("/api/v1/clients/{id}"),
            body: Some(public_client(&id, &format!("Long stream edit {i}"))),
        });
        self.figure(
            format!("PUT on a client with {events} events, 1 conn"),
            format!("p50 {:.1} ms", result.percentile_ms(50.0)),
            "",
            "",
            latency_note(&result),
        );
        Ok(())
    }
}
