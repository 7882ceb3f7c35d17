//! Secret verification against the argon2id limit, and the list while a flood saturates
//! the hashing queue.

#[allow(clippy::wildcard_imports)]
use crate::*;

impl Bench<'_> {
    pub(crate) fn secrets(&mut self, server: &Server, argon2: f64) {
        let confidential = self.scaled(240);
        let result = self.load(server, 16, self.scaled(240), &[200], |i| {
            let id = format!("conf16-{:06}", i % confidential);
            verify(&id, &format!("secret-of-{id}-0123456789"))
        });
        self.figure(
            "POST /clients/{id}/secret/verify, 16 conn",
            format!("{:.1} /s", result.rate()),
            format!("{argon2:.1} hashes/s (argon2id, 2 cores)"),
            ratio(result.rate(), argon2),
            latency_note(&result),
        );

        // The list endpoint while secret verifications saturate the hashing pool.
        let flood_total = self.scaled(400);
        let (list, _) = std::thread::scope(|scope| {
            let flood = scope.spawn(|| {
                load::run(
                    &server.addr,
                    &server.token,
                    "",
                    8,
                    flood_total,
                    &[200],
                    |i| {
                        let id = format!("conf16-{:06}", i % confidential);
                        verify(&id, "wrong-secret-0123456789")
                    },
                )
            });
            std::thread::sleep(Duration::from_millis(300));
            let list = load::run(
                &server.addr,
                &server.token,
                "",
                1,
                self.scaled(300),
                &[200],
                |_| Request {
                    method: "GET",
                    path: "/api/v1/clients?limit=50".into(),
                    body: None,
                },
            );
            (list, flood.join())
        });
        self.figure(
            "GET /clients (first page) while 8 conn flood secret verification",
            format!("p99 {:.1} ms", list.percentile_ms(99.0)),
            "",
            "",
            latency_note(&list),
        );
    }
}

/// A verification of `secret` for client `id`.
fn verify(id: &str, secret: &str) -> Request {
    Request {
        method: "POST",
        path: format!("/api/v1/clients/{id}/secret/verify"),
        body: Some(serde_json::json!({ "client_secret": secret }).to_string()),
    }
}
