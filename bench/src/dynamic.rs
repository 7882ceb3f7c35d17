//! `--only dynamic`: dynamic client registration (issue 19). A registry process with
//! `REGISTRY_DYNAMIC_REGISTRATION=true` (rate limit out of the way) on the run's database, one
//! initial access token without a use limit, then `POST /register` over 8 connections:
//! public clients (no secret: the event store's pace) and clients with a secret (each one an
//! argon2id hash: the hashing threads' pace). Then the pruner: every registration made old,
//! a process started with `REGISTRY_REGISTRATION_PRUNE_DAYS=1`, and the time until its first
//! pass has deleted every client with a secret (the public ones it keeps).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::Connection as _;

use crate::http::Connection;
use crate::load::{self, Request};
use crate::server::Server;
use crate::{latency_note, ratio, Bench};

fn register(i: usize, secret: bool) -> Request {
    let metadata = if secret {
        serde_json::json!({
            "client_name": format!("Self-registered worker {i}"),
            "grant_types": ["client_credentials"],
            "scope": "octo_api",
        })
    } else {
        serde_json::json!({
            "client_name": format!("Self-registered app {i}"),
            "token_endpoint_auth_method": "none",
            "redirect_uris": [format!("https://app-{i}.partner.example/callback")],
            "scope": "openid",
            "contacts": ["dev@partner.example"],
        })
    };
    Request {
        method: "POST",
        path: "/register".into(),
        body: Some(metadata.to_string()),
    }
}

impl Bench<'_> {
    pub(crate) fn dynamic(&mut self, argon2: f64) -> anyhow::Result<()> {
        let server = Server::start(
            &self.database.url,
            &[
                ("REGISTRY_DYNAMIC_REGISTRATION", "true"),
                ("REGISTRY_REGISTRATION_RATE_PER_MINUTE", "100000"),
            ],
        )?;
        let mut admin = Connection::open(&server.addr, &server.token)?;
        let created = admin.send(
            "POST",
            "/api/v1/initial-access-tokens",
            Some(
                &serde_json::json!({"description": "bench", "max_uses": null, "expires_in": 86_400})
                    .to_string(),
            ),
        )?;
        anyhow::ensure!(
            created.status == 201,
            "no initial access token: {}",
            created.status
        );
        let body: serde_json::Value = serde_json::from_slice(&created.body)?;
        let token = body["initial_access_token"]
            .as_str()
            .context("no token in the answer")?
            .to_owned();
        let mut registered = [0usize; 2];
        for (secret, total, what) in [
            (false, self.scaled(4_000), "public clients"),
            (
                true,
                self.args.prune_clients.unwrap_or_else(|| self.scaled(600)),
                "clients with a secret (argon2id each)",
            ),
        ] {
            let result = load::run(&server.addr, &token, "", 8, total, &[201], |i| {
                register(i, secret)
            });
            anyhow::ensure!(result.errors == 0, "{} registrations failed", result.errors);
            registered[usize::from(secret)] = total;
            let (limit, ratio_text) = if secret {
                (
                    format!("{argon2:.0} /s argon2id"),
                    ratio(result.rate(), argon2),
                )
            } else {
                (String::new(), String::new())
            };
            self.figure(
                format!("POST /register, {what}, 8 conn"),
                format!("{:.0} /s", result.rate()),
                limit,
                ratio_text,
                format!("{total} registrations; {}", latency_note(&result)),
            );
        }
        drop(server);
        self.prune(registered)
    }

    /// The pruner's first pass over `registered` (public, with a secret) old registrations.
    fn prune(&mut self, [public, with_secret]: [usize; 2]) -> anyhow::Result<()> {
        execute(
            &self.database.url,
            "update registration_access_tokens set issued_at = 1",
        )?;
        let started = Instant::now();
        let _server = Server::start(
            &self.database.url,
            &[
                ("REGISTRY_REGISTRATION_PRUNE_DAYS", "1"),
                ("REGISTRY_REGISTRATION_PRUNE_INTERVAL_SECONDS", "3600"),
            ],
        )?;
        let deadline = started + Duration::from_secs(1800);
        while crate::bulk::count_rows(&self.database.url, "registration_access_tokens")? > public {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the pruner did not finish in 30 min"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let seconds = started.elapsed().as_secs_f64();
        self.figure(
            "pruner: unused dynamic registrations deleted",
            format!("{:.0} /s", with_secret as f64 / seconds),
            "",
            "",
            format!(
                "{with_secret} clients with a secret deleted (and {public} public ones looked at and kept) in {seconds:.1} s, process start included"
            ),
        );
        Ok(())
    }
}

fn execute(url: &str, sql: &str) -> anyhow::Result<()> {
    crate::runtime().block_on(async {
        if url.starts_with("postgres") {
            let mut connection = sqlx::PgConnection::connect(url).await?;
            sqlx::query(sql).execute(&mut connection).await?;
        } else {
            let mut connection = sqlx::SqliteConnection::connect(url).await?;
            sqlx::query(sql).execute(&mut connection).await?;
        }
        anyhow::Ok(())
    })
}
