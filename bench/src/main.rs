//! `registry-bench`: builds its own data set, starts the release service on a fresh PostgreSQL
//! database and a fresh SQLite file, drives it over HTTP with its own closed-loop load
//! generator, measures the machine's limits in the same run (pgbench with the same SQL,
//! argon2id hashes per second), and writes the figures, limits and ratios to `BENCHMARKS.md`
//! (between the `results` markers).
//!
//! ```sh
//! cargo build --release -p client-registry -p registry-bench
//! target/release/registry-bench --clients 100000 --write BENCHMARKS.md
//! ```
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    missing_docs
)]

mod bulk;
mod http;
mod identity;
mod limits;
mod load;
mod server;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use load::{LoadResult, Request};
use server::Server;
use sqlx::Connection as _;

struct Args {
    clients: usize,
    events: usize,
    backends: Vec<String>,
    write: Option<String>,
    postgres_url: String,
    quick: bool,
    /// Only seeding and this phase (`documents`, `seal`, `identity`): a partial run, not for `--write`.
    only: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        clients: 100_000,
        events: 1_000_000,
        backends: vec!["postgres".into(), "sqlite".into()],
        write: None,
        postgres_url: std::env::var("REGISTRY_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
        quick: false,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--clients" => args.clients = value()?.parse()?,
            "--events" => args.events = value()?.parse()?,
            "--backends" => args.backends = value()?.split(',').map(str::to_owned).collect(),
            "--write" => args.write = Some(value()?),
            "--postgres-url" => args.postgres_url = value()?,
            "--quick" => args.quick = true,
            "--only" => args.only = Some(value()?),
            other => anyhow::bail!(
                "unknown flag {other}; flags: --clients N --events N --backends postgres,sqlite \
                 --write BENCHMARKS.md --postgres-url URL --quick --only documents|seal|identity"
            ),
        }
    }
    anyhow::ensure!(
        args.only.is_none() || args.write.is_none(),
        "--only runs part of the benchmark: its figures go to standard output, not --write"
    );
    anyhow::ensure!(
        matches!(
            args.only.as_deref(),
            None | Some("documents" | "seal" | "identity")
        ),
        "--only takes: documents, seal, identity"
    );
    Ok(args)
}

/// One measured figure, with the limit it is compared to where there is one.
struct Figure {
    backend: String,
    what: String,
    value: String,
    limit: String,
    ratio: String,
    note: String,
}

fn ratio(value: f64, limit: f64) -> String {
    if limit > 0.0 {
        format!("{:.0} %", value / limit * 100.0)
    } else {
        String::new()
    }
}

/// A fresh database for one backend; dropped (PostgreSQL) or deleted (SQLite) afterwards.
struct BenchDatabase {
    url: String,
    cleanup: Option<Box<dyn FnOnce()>>,
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            cleanup();
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn fresh_database(backend: &str, admin_url: &str) -> anyhow::Result<BenchDatabase> {
    let name = format!("registry_bench_{}", uuid::Uuid::new_v4().simple());
    match backend {
        "postgres" => {
            let admin = admin_url.to_owned();
            runtime().block_on(async {
                let mut connection = sqlx::PgConnection::connect(&admin).await?;
                sqlx::query(&format!("create database {name}"))
                    .execute(&mut connection)
                    .await?;
                anyhow::Ok(())
            })?;
            let (server, _) = admin_url
                .rsplit_once('/')
                .context("the URL must name a database")?;
            Ok(BenchDatabase {
                url: format!("{server}/{name}"),
                cleanup: Some(Box::new(move || {
                    let _ = runtime().block_on(async {
                        let mut connection = sqlx::PgConnection::connect(&admin).await?;
                        sqlx::query(&format!("drop database if exists {name} with (force)"))
                            .execute(&mut connection)
                            .await?;
                        anyhow::Ok(())
                    });
                })),
            })
        }
        "sqlite" => {
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir)?;
            Ok(BenchDatabase {
                url: format!("sqlite://{}/registry.db", dir.display()),
                cleanup: Some(Box::new(move || {
                    let _ = std::fs::remove_dir_all(dir);
                })),
            })
        }
        other => anyhow::bail!("unknown backend {other}"),
    }
}

/// Varied names, some non-Latin.
fn client_name(i: usize) -> String {
    const WORDS: [&str; 8] = [
        "Billing",
        "Portal",
        "Analytics",
        "Gateway",
        "Studio",
        "Worker",
        "Importer",
        "Reports",
    ];
    match i % 13 {
        3 => format!("Łódź Portal {i}"),
        7 => format!("東京 サービス {i}"),
        11 => format!("Ωmega Gateway {i}"),
        _ => format!("{} {} {i}", WORDS[i % 8], WORDS[(i / 8) % 8]),
    }
}

/// A public client with every editable field (a `PUT` replaces them all).
fn public_client(id: &str, name: &str) -> String {
    serde_json::json!({
        "client_id": id,
        "client_name": name,
        "require_client_secret": false,
        "client_uri": format!("https://{id}.example.com"),
        "enabled": true,
        "offline_access": false,
        "require_pkce": true,
        "grant_types": ["authorization_code"],
        "redirect_uris": [format!("https://{id}.example.com/callback")],
        "post_logout_redirect_uris": [],
        "allowed_cors_origins": [],
        "allowed_scopes": ["openid", "profile"],
    })
    .to_string()
}

fn confidential_client(id: &str) -> String {
    serde_json::json!({
        "client_id": id,
        "client_name": format!("Service {id}"),
        "client_secret": format!("secret-of-{id}-0123456789"),
        "grant_types": ["client_credentials"],
        "allowed_scopes": ["octo_api"],
    })
    .to_string()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn latency_note(result: &LoadResult) -> String {
    let invalid = if result.errors > 0 {
        "NOT A MEASUREMENT (requests failed): "
    } else {
        ""
    };
    format!(
        "{invalid}p50 {:.1} ms, p99 {:.1} ms, {} requests, {} errors",
        result.percentile_ms(50.0),
        result.percentile_ms(99.0),
        result.requests,
        result.errors
    )
}

struct Bench<'a> {
    args: &'a Args,
    backend: String,
    database: BenchDatabase,
    figures: &'a mut Vec<Figure>,
    /// Clients registered so far by this run (ids bench-000000 …).
    seeded: usize,
}

impl Bench<'_> {
    fn figure(
        &mut self,
        what: impl Into<String>,
        value: impl Into<String>,
        limit: impl Into<String>,
        ratio: impl Into<String>,
        note: impl Into<String>,
    ) {
        self.figures.push(Figure {
            backend: self.backend.clone(),
            what: what.into(),
            value: value.into(),
            limit: limit.into(),
            ratio: ratio.into(),
            note: note.into(),
        });
    }

    fn scaled(&self, n: usize) -> usize {
        if self.args.quick {
            (n / 10).max(20)
        } else {
            n
        }
    }

    fn is_postgres(&self) -> bool {
        self.backend == "postgres"
    }

    fn load(
        &self,
        server: &Server,
        connections: usize,
        total: usize,
        ok: &[u16],
        make: impl Fn(usize) -> Request + Sync,
    ) -> LoadResult {
        let result = load::run(&server.addr, &server.token, connections, total, ok, make);
        if result.errors > 0 {
            // A rate over failed requests measures nothing: say so where it is read.
            eprintln!(
                "WARNING: {} of {} requests answered another status than {ok:?}",
                result.errors, result.requests
            );
        }
        result
    }

    fn registrations(
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

    /// What keeping metrics costs writes: public registrations at 16 connections, in rounds
    /// without scraping and with a scrape of `/metrics` every second (more often than
    /// Prometheus's default), ordered A B B A … so that the store's growth over the rounds
    /// weighs on both alike; means compared. Recording is always on; the scrape is the part
    /// that can take time from writers.
    fn metrics_cost(&mut self, server: &Server) -> anyhow::Result<()> {
        let rounds = if self.args.quick { 2 } else { 3 };
        // Not scaled down by --quick: a round must last several scrapes.
        let total = 6000;
        let (mut without, mut with) = (Vec::new(), Vec::new());
        let mut scrapes = Vec::new();
        let mut size = 0;
        for round in 0..rounds * 2 {
            let scraping = matches!(round % 4, 1 | 2);
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let scraper = scraping.then(|| {
                let (stop, addr, token) = (stop.clone(), server.addr.clone(), server.token.clone());
                std::thread::spawn(move || -> anyhow::Result<(Vec<f64>, usize)> {
                    let mut connection = http::Connection::open(&addr, &token)?;
                    let (mut took, mut size) = (Vec::new(), 0);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let started = Instant::now();
                        let page = connection.send("GET", "/metrics", None)?;
                        anyhow::ensure!(page.status == 200, "/metrics answered {}", page.status);
                        took.push(started.elapsed().as_secs_f64() * 1000.0);
                        size = page.body.len();
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    Ok((took, size))
                })
            });
            let prefix = format!("metrics{round}");
            let result = self.load(server, 16, total, &[201], |i| Request {
                method: "POST",
                path: "/api/v1/clients".into(),
                body: Some(public_client(&format!("{prefix}-{i:06}"), &client_name(i))),
            });
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Some(scraper) = scraper {
                let (took, bytes) = scraper
                    .join()
                    .map_err(|_| anyhow::anyhow!("the scraper panicked"))??;
                scrapes.extend(took);
                size = bytes;
                with.push(result.rate());
            } else {
                without.push(result.rate());
            }
        }
        let mean = |rates: &[f64]| rates.iter().sum::<f64>() / rates.len().max(1) as f64;
        let (plain, scraped) = (mean(&without), mean(&with));
        scrapes.sort_by(f64::total_cmp);
        self.figure(
            "POST /clients, public, 16 conn, scraping /metrics every second",
            format!("{scraped:.0} /s"),
            format!("{plain:.0} /s (same, not scraped)"),
            ratio(scraped, plain),
            format!(
                "mean of {rounds} rounds of {total} each, ordered ABBA; {} scrapes of {:.1} KB, \
                 p50 {:.1} ms, max {:.1} ms",
                scrapes.len(),
                size as f64 / 1024.0,
                scrapes.get(scrapes.len() / 2).copied().unwrap_or_default(),
                scrapes.last().copied().unwrap_or_default(),
            ),
        );
        Ok(())
    }

    fn updates(&mut self, server: &Server) {
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

    /// The list screen at the store's size, server-rendered, with a session cookie.
    fn screens(&mut self, server: &Server) -> anyhow::Result<()> {
        let mut connection = http::Connection::open(&server.addr, &server.token)?;
        let signed = connection.send_form(
            "/sign-in",
            &format!("token={}&next=%2Fclients", encode(&server.token)),
            "Sec-Fetch-Site: same-origin\r\n",
        )?;
        let cookie = signed
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .context("signing in to the screens")?
            .to_owned();
        let extra = format!("Cookie: {cookie}\r\n");
        let mut connection =
            http::Connection::open(&server.addr, &server.token)?.with_headers(&extra);
        for (path, what) in [
            ("/clients", "first page"),
            (
                "/clients?search=portal",
                "search matching 28 % of the clients",
            ),
        ] {
            let page = connection.send("GET", path, None)?;
            anyhow::ensure!(page.status == 200, "{path} answered {}", page.status);
            for connections in [1, 16] {
                let total = self.scaled(if connections == 1 { 300 } else { 2000 });
                let result = load::run_with_headers(
                    &server.addr,
                    &server.token,
                    &extra,
                    connections,
                    total,
                    &[200],
                    |_| Request {
                        method: "GET",
                        path: path.to_owned(),
                        body: None,
                    },
                );
                self.figure(
                    format!("screen GET {path} ({what}, 50 rows), {connections} conn"),
                    format!("p99 {:.1} ms", result.percentile_ms(99.0)),
                    "",
                    "",
                    format!(
                        "page {:.1} KB before compression; {:.0} /s; {}",
                        page.body.len() as f64 / 1024.0,
                        result.rate(),
                        latency_note(&result)
                    ),
                );
            }
        }
        Ok(())
    }

    fn reads(&mut self, server: &Server) -> anyhow::Result<()> {
        let terms = [
            ("portal", "high selectivity"),
            ("gateway", "high selectivity"),
            ("bench-04213", "low selectivity"),
            ("t_x%", "LIKE wildcards, literal"),
        ];
        for (term, kind) in terms {
            let total_matches = {
                let mut connection = http::Connection::open(&server.addr, &server.token)?;
                let response = connection.send(
                    "GET",
                    &format!("/api/v1/clients?search={}&limit=1", encode(term)),
                    None,
                )?;
                serde_json::from_slice::<serde_json::Value>(&response.body)?["total"]
                    .as_u64()
                    .unwrap_or(0)
            };
            let pattern = format!(
                "%{}%",
                term.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            let limit = if self.is_postgres() {
                limits::pgbench(&self.database.url, &limits::search_sql(&pattern), 16, 5).ok()
            } else {
                None
            };
            for connections in [1, 16] {
                let total = self.scaled(if connections == 1 { 300 } else { 2000 });
                let result = self.load(server, connections, total, &[200], |_| Request {
                    method: "GET",
                    path: format!("/api/v1/clients?search={}", encode(term)),
                    body: None,
                });
                let (limit_text, ratio_text) = match &limit {
                    Some(l) if connections == 16 => (
                        format!("{:.0} /s (pgbench, same SQL, 16 conn)", l.tps),
                        ratio(result.rate(), l.tps),
                    ),
                    _ => (String::new(), String::new()),
                };
                self.figure(
                    format!("GET /clients?search={term} ({kind}, {total_matches} matches, with total), {connections} conn"),
                    format!("p99 {:.1} ms", result.percentile_ms(99.0)),
                    limit_text,
                    ratio_text,
                    format!("{:.0} /s; {}", result.rate(), latency_note(&result)),
                );
            }
        }
        let seeded = self.seeded;
        let result = self.load(server, 16, self.scaled(5000), &[200], |i| Request {
            method: "GET",
            path: format!("/api/v1/clients/bench-{:06}", (i * 104_729) % seeded),
            body: None,
        });
        self.figure(
            "GET /clients/{id}, 16 conn",
            format!("{:.0} /s", result.rate()),
            "",
            "",
            latency_note(&result),
        );
        Ok(())
    }

    fn secrets(&mut self, server: &Server, argon2: f64) {
        let confidential = self.scaled(240);
        let result = self.load(server, 16, self.scaled(240), &[200], |i| {
            let id = format!("conf16-{:06}", i % confidential);
            Request {
                method: "POST",
                path: format!("/api/v1/clients/{id}/secret/verify"),
                body: Some(
                    serde_json::json!({"client_secret": format!("secret-of-{id}-0123456789")})
                        .to_string(),
                ),
            }
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
                load::run(&server.addr, &server.token, 8, flood_total, &[200], |i| {
                    let id = format!("conf16-{:06}", i % confidential);
                    Request {
                        method: "POST",
                        path: format!("/api/v1/clients/{id}/secret/verify"),
                        body: Some(
                            serde_json::json!({"client_secret": "wrong-secret-0123456789"})
                                .to_string(),
                        ),
                    }
                })
            });
            std::thread::sleep(Duration::from_millis(300));
            let list = load::run(
                &server.addr,
                &server.token,
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

    fn exports(&mut self, server: &Server) -> anyhow::Result<()> {
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

    /// Clients as code: a plan of a 10,000-client document against the seeded store (7,000
    /// of them unchanged, 2,000 renamed, 1,000 new), three times, and the apply of 1,000
    /// creations, compared with registering them one by one over one connection.
    fn documents(&mut self, server: &Server) -> anyhow::Result<()> {
        let size = self.scaled(10_000).min(self.seeded);
        let renamed = size / 5;
        let new = size / 10;
        let kept = size - renamed - new;
        let mut clients: Vec<serde_json::Value> = Vec::with_capacity(size);
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
        let document = serde_json::json!({ "clients": clients }).to_string();
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

        // Apply of creations only, against one-by-one registration over one connection.
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

    /// The sealed log over the whole store (a million events after the rebuild phase): how
    /// fast a fresh sealer catches up, an inclusion proof's latency, exporting the log and
    /// verifying it offline, and what sealing costs writers (rounds with the sealer on and
    /// off, ABBA).
    fn seal(&mut self) -> anyhow::Result<()> {
        let total = bulk::count_events(&self.database.url)?;
        let sealed_before = bulk::count_rows(&self.database.url, "seal_leaves")?;
        let server = Server::start(
            &self.database.url,
            &[("REGISTRY_AUDIT_HEAD_INTERVAL_MS", "100")],
        )?;
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

        let positions = bulk::sample_positions(&self.database.url, 997)?;
        let proofs = self.load(&server, 1, self.scaled(2000), &[200], |i| Request {
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

    fn long_stream(&mut self, server: &Server) -> anyhow::Result<()> {
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

    fn rebuild(&mut self) -> anyhow::Result<()> {
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
}

/// `term` percent-encoded for a query string.
fn encode(term: &str) -> String {
    form_urlencoded::byte_serialize(term.as_bytes()).collect()
}

/// Registers `count` public clients over 16 connections.
fn seed(server: &Server, count: usize) -> LoadResult {
    load::run(&server.addr, &server.token, 16, count, &[201], |i| {
        let id = format!("bench-{i:06}");
        Request {
            method: "POST",
            path: "/api/v1/clients".into(),
            body: Some(public_client(&id, &client_name(i))),
        }
    })
}

fn run_backend(
    args: &Args,
    backend: &str,
    figures: &mut Vec<Figure>,
    argon2: f64,
) -> anyhow::Result<()> {
    let database = fresh_database(backend, &args.postgres_url)?;
    let mut bench = Bench {
        args,
        backend: backend.to_owned(),
        database,
        figures,
        seeded: 0,
    };
    if args.only.as_deref() == Some("seal") {
        eprintln!("[{backend}] events for the sealed log…");
        // A first start migrates the fresh database.
        drop(Server::start(&bench.database.url, &[])?);
        bench.rebuild()?;
        eprintln!("[{backend}] sealed log…");
        return bench.seal();
    }
    let server = Server::start(&bench.database.url, &[])?;
    bench.figure("idle RSS after start", mib(server.rss_kib()), "", "", "");
    eprintln!("[{backend}] registering {} clients…", args.clients);
    let seeded = seed(&server, args.clients);
    anyhow::ensure!(seeded.errors == 0, "{} registrations failed", seeded.errors);
    bench.seeded = args.clients;
    bench.figure(
        format!("seeding: {} public registrations, 16 conn", args.clients),
        format!("{:.0} /s", seeded.rate()),
        "",
        "",
        format!(
            "{:.1} s; {}",
            seeded.elapsed.as_secs_f64(),
            latency_note(&seeded)
        ),
    );
    if args.only.as_deref() == Some("documents") {
        eprintln!("[{backend}] clients as code…");
        return bench.documents(&server);
    }
    if args.only.as_deref() == Some("identity") {
        eprintln!("[{backend}] serving an identity service…");
        bench.identity(&server)?;
        drop(server);
        return bench.identity_provider();
    }
    let registration_limit = if bench.is_postgres() {
        eprintln!("[{backend}] pgbench, registration SQL…");
        let limit = limits::pgbench(&bench.database.url, limits::REGISTRATION_SQL, 16, 10)?;
        let single = limits::pgbench(&bench.database.url, limits::REGISTRATION_SQL, 1, 5)?;
        bench.figure(
            "limit: pgbench, registration SQL, 1 conn",
            format!("{:.0} /s", single.tps),
            "",
            "",
            format!("latency {:.2} ms", single.latency_ms),
        );
        bench.figure(
            "limit: pgbench, registration SQL, 16 conn",
            format!("{:.0} /s", limit.tps),
            "",
            "",
            format!("latency {:.2} ms", limit.latency_ms),
        );
        Some(limit)
    } else {
        None
    };
    let mut rss = vec![("seeding", server.rss_kib())];
    eprintln!("[{backend}] registrations…");
    bench.registrations(&server, registration_limit.as_ref(), argon2);
    rss.push(("registrations", server.rss_kib()));
    eprintln!("[{backend}] updates…");
    bench.updates(&server);
    rss.push(("updates", server.rss_kib()));
    eprintln!("[{backend}] reads…");
    bench.reads(&server)?;
    eprintln!("[{backend}] screens…");
    bench.screens(&server)?;
    eprintln!("[{backend}] metrics cost…");
    bench.metrics_cost(&server)?;
    rss.push(("reads", server.rss_kib()));
    eprintln!("[{backend}] secrets…");
    bench.secrets(&server, argon2);
    eprintln!("[{backend}] serving an identity service…");
    bench.identity(&server)?;
    rss.push(("secrets", server.rss_kib()));
    let phases: Vec<String> = rss
        .iter()
        .map(|(phase, kib)| format!("after {phase} {}", mib(*kib)))
        .collect();
    bench.figure(
        "server RSS by phase",
        mib(server.rss_kib()),
        "",
        "",
        phases.join(", "),
    );
    eprintln!("[{backend}] exports…");
    bench.exports(&server)?;
    eprintln!("[{backend}] clients as code…");
    bench.documents(&server)?;
    eprintln!("[{backend}] long stream…");
    bench.long_stream(&server)?;
    bench.figure(
        "server peak RSS over the whole run",
        mib(server.peak_kib()),
        "",
        "",
        "",
    );
    drop(server);
    eprintln!("[{backend}] oidc-provider backed by the registry…");
    bench.identity_provider()?;
    eprintln!("[{backend}] rebuild…");
    bench.rebuild()?;
    eprintln!("[{backend}] sealed log…");
    bench.seal()?;
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kib| kib.parse::<u64>().ok())
        .unwrap_or(0);
    let postgres = std::process::Command::new("psql")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {:.0} GiB RAM, {postgres} on the same host",
        memory as f64 / 1_048_576.0
    )
}

fn render(figures: &[Figure], args: &Args, elapsed: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {} on {}; {} clients seeded; {:.0} s in all.\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine(),
        args.clients,
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| backend | what | value | limit | ratio | notes |\n| --- | --- | --- | --- | --- | --- |"
    );
    for f in figures {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            f.backend, f.what, f.value, f.limit, f.ratio, f.note
        );
    }
    out
}

fn write_results(path: &str, table: &str) -> anyhow::Result<()> {
    const START: &str = "<!-- results:start -->";
    const END: &str = "<!-- results:end -->";
    let existing = std::fs::read_to_string(path).unwrap_or_default();
    let updated = match (existing.find(START), existing.find(END)) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{START}\n{table}{}", &existing[..start], &existing[end..])
        }
        _ => format!("{existing}\n{START}\n{table}{END}\n"),
    };
    std::fs::write(path, updated)?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let started = Instant::now();
    let mut figures = Vec::new();
    eprintln!("argon2id limit…");
    let argon2 = limits::argon2_rate(2, Duration::from_secs(3));
    figures.push(Figure {
        backend: "-".into(),
        what: "limit: argon2id hashes/s, our parameters (m=19 MiB, t=2, p=1), 2 threads".into(),
        value: format!("{argon2:.1} /s"),
        limit: String::new(),
        ratio: String::new(),
        note: format!("1 thread ≈ {:.1} /s", argon2 / 2.0),
    });
    for backend in &args.backends {
        run_backend(&args, backend, &mut figures, argon2)?;
    }
    let table = render(&figures, &args, started.elapsed());
    print!("{table}");
    if let Some(path) = &args.write {
        write_results(path, &table)?;
    }
    Ok(())
}
