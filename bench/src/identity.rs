//! `--only identity`: the registry as the client store of an identity service (issue 18).
//!
//! - `POST /secret/verify` of correct secrets verified once before (the memory of verified
//!   secrets), 8 connections;
//! - the same while 32 connections flood wrong secrets (both hashing threads busy), and
//!   while 96 do: more than the argon2id queue holds (64 places by default on 2 cores), so it
//!   is full and sheds;
//! - client_credentials tokens through a real oidc-provider backed by the registry (the
//!   adapter in `integrations/oidc-provider`) against the same provider with the client in
//!   memory, at 1 and 8 connections, in one run, and the time from a `DELETE` acknowledged by
//!   one registry process to the first refused token request at a provider behind another
//!   (`integrations/oidc-provider/bench/tokens.mjs`, run by this phase).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::Context as _;
use serde_json::Value;

use crate::http::Connection;
use crate::load::Request;
use crate::server::{self, Server};
use crate::{latency_note, ratio, Bench};

/// Confidential clients the verifications spread over.
const CLIENTS: usize = 200;

fn confidential(id: &str) -> String {
    serde_json::json!({
        "client_id": id,
        "client_name": format!("Worker {id}"),
        "require_client_secret": true,
        "enabled": true,
        "grant_types": ["client_credentials"],
        "allowed_scopes": ["octo_api"],
    })
    .to_string()
}

fn verify_request(id: &str, secret: &str) -> Request {
    Request {
        method: "POST",
        path: format!("/api/v1/clients/{id}/secret/verify"),
        body: Some(serde_json::json!({ "client_secret": secret }).to_string()),
    }
}

impl Bench<'_> {
    pub(crate) fn identity(&mut self, server: &Server) -> anyhow::Result<()> {
        let secrets = register(server)?;
        // Each secret verified once: the next verifications are answered from memory.
        let warm = self.load(server, 2, CLIENTS, &[200], |i| {
            let (id, secret) = &secrets[i];
            verify_request(id, secret)
        });
        anyhow::ensure!(warm.errors == 0, "warming the verifications failed");

        let cached = self.load(server, 8, self.scaled(40_000), &[200], |i| {
            let (id, secret) = &secrets[(i * 7919) % CLIENTS];
            verify_request(id, secret)
        });
        self.figure(
            "POST /secret/verify, correct secret verified before, 8 conn",
            format!(
                "{:.0} /s, p99 {:.2} ms",
                cached.rate(),
                cached.percentile_ms(99.0)
            ),
            "goal 5,000 /s, p99 < 2 ms",
            ratio(cached.rate(), 5000.0),
            latency_note(&cached),
        );

        // 32 connections keep both hashing threads busy and the queue half full (the issue's
        // scenario); 96 overflow the queue (64 places), so most wrong secrets are shed with a
        // 503 at once and the flood becomes a storm of cheap requests on the same two cores.
        for (flooders, total) in [(32, 80_000), (96, 10_000)] {
            let (during, flood) = under_flood(server, flooders, || {
                self.load(server, 4, self.scaled(total), &[200], |i| {
                    let (id, secret) = &secrets[(i * 104_729) % CLIENTS];
                    verify_request(id, secret)
                })
            });
            self.figure(
                format!(
                    "POST /secret/verify, cached correct secrets (4 conn) while {flooders} conn flood wrong ones"
                ),
                format!("p99 {:.2} ms, {} errors", during.percentile_ms(99.0), during.errors),
                "goal p99 < 5 ms, no 503",
                "",
                format!(
                    "{:.0} /s; {}; the flood: {} wrong secrets answered 200 (argon2id), {} shed with 503",
                    during.rate(),
                    latency_note(&during),
                    flood.0,
                    flood.1
                ),
            );
        }
        Ok(())
    }

    /// The oidc-provider comparison (`tokens.mjs`), against its own two registry processes
    /// on this run's database.
    pub(crate) fn identity_provider(&mut self) -> anyhow::Result<()> {
        let package = Path::new(env!("CARGO_MANIFEST_DIR")).join("../integrations/oidc-provider");
        if !package.join("node_modules/oidc-provider").exists() {
            let installed = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&package)
                .status()
                .context("npm (Debian package npm) runs the oidc-provider comparison")?;
            anyhow::ensure!(
                installed.success(),
                "npm ci failed in {}",
                package.display()
            );
        }
        let seconds = if self.args.quick { "2" } else { "8" };
        let output = Command::new("node")
            .args(["bench/tokens.mjs", seconds])
            .current_dir(&package)
            .env("REGISTRY_BIN", server::binary()?)
            .env("REGISTRY_DATABASE_URL", &self.database.url)
            .output()
            .context("node (Debian package nodejs) runs the oidc-provider comparison")?;
        anyhow::ensure!(
            output.status.success(),
            "tokens.mjs failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let start = stdout.find('{').context("tokens.mjs printed no result")?;
        let result: Value = serde_json::from_str(&stdout[start..])?;
        self.provider_figures(&result);
        Ok(())
    }

    /// The figures of `tokens.mjs`'s result: tokens per second each way, and how soon a
    /// delete is refused.
    fn provider_figures(&mut self, result: &Value) {
        for row in result["tokens"].as_array().into_iter().flatten() {
            let memory = &row["inMemory"];
            let backed = &row["registryBacked"];
            let rate = |v: &Value| v["perSecond"].as_f64().unwrap_or(0.0);
            self.figure(
                format!(
                    "client_credentials tokens through oidc-provider, client in the registry, {} conn",
                    row["connections"]
                ),
                format!("{:.0} /s", rate(backed)),
                format!("{:.0} /s with the client in the provider's memory", rate(memory)),
                ratio(rate(backed), rate(memory)),
                format!(
                    "goal 80 %; p50 {} ms, p99 {} ms, {} errors (in memory: p50 {} ms, p99 {} ms)",
                    backed["p50"], backed["p99"], backed["errors"], memory["p50"], memory["p99"]
                )
                .replace('"', ""),
            );
        }
        let mut deletions: Vec<u64> = result["deleteToRefusalMs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .collect();
        deletions.sort_unstable();
        self.figure(
            "DELETE acknowledged by process A → first refused token at a provider behind process B",
            format!(
                "median {} ms, max {} ms",
                deletions
                    .get(deletions.len() / 2)
                    .copied()
                    .unwrap_or_default(),
                deletions.last().copied().unwrap_or_default()
            ),
            "goal < 1,000 ms",
            "",
            format!("{} rounds: {deletions:?} ms", deletions.len()),
        );
    }
}

/// Registers the confidential clients, answering their ids and generated secrets.
fn register(server: &Server) -> anyhow::Result<Vec<(String, String)>> {
    let mut connection = Connection::open(&server.addr, &server.token)?;
    (0..CLIENTS)
        .map(|i| {
            let id = format!("idp-{i:04}");
            let response = connection.send("POST", "/api/v1/clients", Some(&confidential(&id)))?;
            anyhow::ensure!(
                response.status == 201,
                "registering {id}: {}",
                response.status
            );
            let body: Value = serde_json::from_slice(&response.body)?;
            let secret = body["client_secret"]
                .as_str()
                .context("a generated secret")?
                .to_owned();
            Ok((id, secret))
        })
        .collect()
}

/// Runs `measure` while `flooders` connections send wrong secrets back to back; answers what
/// `measure` returned and how many wrong secrets were verified (200) and shed (503).
fn under_flood<T>(
    server: &Server,
    flooders: usize,
    measure: impl FnOnce() -> T,
) -> (T, (usize, usize)) {
    let stop = AtomicBool::new(false);
    let verified = AtomicUsize::new(0);
    let shed = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for worker in 0..flooders {
            let (stop, verified, shed) = (&stop, &verified, &shed);
            scope.spawn(move || {
                let Ok(mut connection) = Connection::open(&server.addr, &server.token) else {
                    return;
                };
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let request = verify_request(
                        &format!("idp-{:04}", (worker * 31 + i) % CLIENTS),
                        "wrong-secret-0123456789abcdef",
                    );
                    match connection.send(request.method, &request.path, request.body.as_deref()) {
                        Ok(r) if r.status == 200 => verified.fetch_add(1, Ordering::Relaxed),
                        Ok(_) => shed.fetch_add(1, Ordering::Relaxed),
                        Err(_) => match Connection::open(&server.addr, &server.token) {
                            Ok(fresh) => {
                                connection = fresh;
                                0
                            }
                            Err(_) => return,
                        },
                    };
                }
            });
        }
        // Let the flood fill the queue first.
        std::thread::sleep(std::time::Duration::from_millis(500));
        let measured = measure();
        stop.store(true, Ordering::Relaxed);
        (
            measured,
            (
                verified.load(Ordering::Relaxed),
                shed.load(Ordering::Relaxed),
            ),
        )
    })
}
