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
mod documents;
mod dynamic;
mod exports;
mod http;
mod identity;
mod limits;
mod load;
mod metadata;
mod reads;
mod secrets;
mod server;
mod store;
mod writes;

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
    /// Only seeding and this phase (`documents`, `seal`, `identity`, `dynamic`, `metadata`): a partial run, not for `--write`.
    only: Option<String>,
    /// How many clients with a secret the `dynamic` phase registers for the pruner to delete
    /// (default 600).
    prune_clients: Option<usize>,
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
        prune_clients: None,
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
            "--prune-clients" => args.prune_clients = Some(value()?.parse()?),
            other => anyhow::bail!(
                "unknown flag {other}; flags: --clients N --events N --backends postgres,sqlite \
                 --write BENCHMARKS.md --postgres-url URL --quick --only documents|seal|identity|dynamic|metadata --prune-clients N"
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
            None | Some("documents" | "seal" | "identity" | "dynamic" | "metadata")
        ),
        "--only takes: documents, seal, identity, dynamic, metadata"
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
        let result = load::run(
            &server.addr,
            &server.token,
            "",
            connections,
            total,
            ok,
            make,
        );
        if result.errors > 0 {
            // A rate over failed requests measures nothing: say so where it is read.
            eprintln!(
                "WARNING: {} of {} requests answered another status than {ok:?}",
                result.errors, result.requests
            );
        }
        result
    }
}

/// `term` percent-encoded for a query string.
fn encode(term: &str) -> String {
    form_urlencoded::byte_serialize(term.as_bytes()).collect()
}

/// Registers `count` public clients over 16 connections.
fn seed(server: &Server, count: usize) -> LoadResult {
    load::run(&server.addr, &server.token, "", 16, count, &[201], |i| {
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
    bench.seed_clients(&server)?;
    match args.only.as_deref() {
        Some("documents") => {
            eprintln!("[{backend}] clients as code…");
            bench.documents(&server)
        }
        Some("identity") => {
            eprintln!("[{backend}] serving an identity service…");
            bench.identity(&server)?;
            drop(server);
            bench.identity_provider()
        }
        Some("dynamic") => {
            eprintln!("[{backend}] dynamic client registration…");
            drop(server);
            bench.dynamic(argon2)
        }
        Some("metadata") => {
            eprintln!("[{backend}] client ID metadata documents…");
            drop(server);
            bench.metadata()
        }
        _ => bench.full_run(server, argon2),
    }
}

impl Bench<'_> {
    /// Registers the run's clients (the data set every phase works on).
    fn seed_clients(&mut self, server: &Server) -> anyhow::Result<()> {
        let backend = self.backend.clone();
        self.figure("idle RSS after start", mib(server.rss_kib()), "", "", "");
        eprintln!("[{backend}] registering {} clients…", self.args.clients);
        let seeded = seed(server, self.args.clients);
        anyhow::ensure!(seeded.errors == 0, "{} registrations failed", seeded.errors);
        self.seeded = self.args.clients;
        self.figure(
            format!(
                "seeding: {} public registrations, 16 conn",
                self.args.clients
            ),
            format!("{:.0} /s", seeded.rate()),
            "",
            "",
            format!(
                "{:.1} s; {}",
                seeded.elapsed.as_secs_f64(),
                latency_note(&seeded)
            ),
        );
        Ok(())
    }

    /// The limits pgbench measures with the registration SQL (PostgreSQL only).
    fn registration_limit(&mut self) -> anyhow::Result<Option<limits::PgbenchResult>> {
        if !self.is_postgres() {
            return Ok(None);
        }
        eprintln!("[{}] pgbench, registration SQL…", self.backend);
        let limit = limits::pgbench(&self.database.url, limits::REGISTRATION_SQL, 16, 10)?;
        let single = limits::pgbench(&self.database.url, limits::REGISTRATION_SQL, 1, 5)?;
        for (connections, result) in [(1, &single), (16, &limit)] {
            self.figure(
                format!("limit: pgbench, registration SQL, {connections} conn"),
                format!("{:.0} /s", result.tps),
                "",
                "",
                format!("latency {:.2} ms", result.latency_ms),
            );
        }
        Ok(Some(limit))
    }

    /// Every phase after seeding, on `server` and then on fresh processes.
    fn full_run(&mut self, server: Server, argon2: f64) -> anyhow::Result<()> {
        let backend = self.backend.clone();
        let registration_limit = self.registration_limit()?;
        let mut rss = vec![("seeding", server.rss_kib())];
        eprintln!("[{backend}] writes, reads, screens, metrics cost, secrets…");
        self.registrations(&server, registration_limit.as_ref(), argon2);
        rss.push(("registrations", server.rss_kib()));
        self.updates(&server);
        rss.push(("updates", server.rss_kib()));
        self.reads(&server)?;
        self.screens(&server)?;
        self.metrics_cost(&server)?;
        rss.push(("reads", server.rss_kib()));
        self.secrets(&server, argon2);
        self.identity(&server)?;
        rss.push(("secrets", server.rss_kib()));
        let phases: Vec<String> = (rss.iter())
            .map(|(phase, kib)| format!("after {phase} {}", mib(*kib)))
            .collect();
        let now = mib(server.rss_kib());
        self.figure("server RSS by phase", now, "", "", phases.join(", "));
        eprintln!("[{backend}] exports, clients as code, long stream…");
        self.exports(&server)?;
        self.documents(&server)?;
        self.long_stream(&server)?;
        let peak = mib(server.peak_kib());
        self.figure("server peak RSS over the whole run", peak, "", "", "");
        drop(server);
        eprintln!("[{backend}] oidc-provider, rebuild, sealed log…");
        self.identity_provider()?;
        self.dynamic(argon2)?;
        self.metadata()?;
        self.rebuild()?;
        self.seal()
    }
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
