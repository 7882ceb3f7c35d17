//! Writes: public and confidential registrations against the same SQL run by pgbench, and
//! full updates.

#[allow(clippy::wildcard_imports)]
use crate::*;

impl Bench<'_> {
    pub(crate) fn registrations(
        &mut self,
        server: &Server,
        limit: Option<&limits::PgbenchResult>,
        argon2: f64,
    ) {
        for connections in [1, 16] {
            let total = self.scaled(if connections == 1 { 2000 } else { 8000 });
            let prefix = format!("pub{connections}");
            let result = self.load(server, connections, total, &[201], |i| Request {
                method: "POST",
                path: "/api/v1/clients".into(),
                body: Some(public_client(&format!("{prefix}-{i:06}"), &client_name(i))),
            });
            let (limit_text, ratio_text) = match limit {
                Some(l) if connections == 16 => (
                    format!("{:.0} /s (pgbench, same SQL, 16 conn)", l.tps),
                    ratio(result.rate(), l.tps),
                ),
                _ => (String::new(), String::new()),
            };
            self.figure(
                format!("POST /clients, public, {connections} conn"),
                format!("{:.0} /s", result.rate()),
                limit_text,
                ratio_text,
                latency_note(&result),
            );
        }
        for connections in [1, 16] {
            let total = self.scaled(if connections == 1 { 60 } else { 240 });
            let prefix = format!("conf{connections}");
            let result = self.load(server, connections, total, &[201], |i| Request {
                method: "POST",
                path: "/api/v1/clients".into(),
                body: Some(confidential_client(&format!("{prefix}-{i:06}"))),
            });
            let limit = if connections == 1 {
                argon2 / 2.0
            } else {
                argon2
            };
            self.figure(
                format!("POST /clients, confidential (given secret), {connections} conn"),
                format!("{:.1} /s", result.rate()),
                format!(
                    "{limit:.1} hashes/s (argon2id, {} core{})",
                    if connections == 1 { 1 } else { 2 },
                    if connections == 1 { "" } else { "s" }
                ),
                ratio(result.rate(), limit),
                latency_note(&result),
            );
        }
    }

    pub(crate) fn updates(&mut self, server: &Server) {
        for connections in [1, 16] {
            let total = self.scaled(if connections == 1 { 2000 } else { 8000 });
            let seeded = self.seeded;
            let result = self.load(server, connections, total, &[200], |i| {
                let n = (i * 7919 + connections) % seeded;
                let id = format!("bench-{n:06}");
                Request {
                    method: "PUT",
                    path: format!("/api/v1/clients/{id}"),
                    body: Some(public_client(
                        &id,
                        &format!("{} (edit {i})", client_name(n)),
                    )),
                }
            });
            self.figure(
                format!("PUT /clients/{{id}}, {connections} conn"),
                format!("{:.0} /s", result.rate()),
                "",
                "",
                latency_note(&result),
            );
        }
    }
}
