//! `registry-bench`: builds its own data set, starts the release service on a fresh PostgreSQL
//! database and a fresh SQLite file, drives it over HTTP, and writes what it measured to
//! `BENCHMARKS.md` (between the `results` markers).
//!
//! ```sh
//! cargo build --release -p registry-api -p registry-bench
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

mod http;
mod load;
mod server;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use load::Request;
use server::Server;
use sqlx::Connection as _;

struct Args {
    clients: usize,
    backends: Vec<String>,
    scenarios: Vec<String>,
    write: Option<String>,
    postgres_url: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        clients: 100_000,
        backends: vec!["postgres".into(), "sqlite".into()],
        scenarios: vec!["exports".into()],
        write: None,
        postgres_url: std::env::var("REGISTRY_BENCH_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--clients" => args.clients = value()?.parse()?,
            "--backends" => args.backends = value()?.split(',').map(str::to_owned).collect(),
            "--scenarios" => args.scenarios = value()?.split(',').map(str::to_owned).collect(),
            "--write" => args.write = Some(value()?),
            "--postgres-url" => args.postgres_url = value()?,
            other => anyhow::bail!(
                "unknown flag {other}; flags: --clients N --backends postgres,sqlite \
                 --scenarios exports --write BENCHMARKS.md --postgres-url URL"
            ),
        }
    }
    Ok(args)
}

/// One measured figure.
struct Figure {
    backend: String,
    what: String,
    value: String,
    note: String,
}

/// A fresh database for one backend; dropped (PostgreSQL) or deleted (SQLite) afterwards.
struct BenchDatabase {
    url: String,
    cleanup: Box<dyn FnOnce()>,
}

fn fresh_database(backend: &str, admin_url: &str) -> anyhow::Result<BenchDatabase> {
    let name = format!("registry_bench_{}", uuid::Uuid::new_v4().simple());
    match backend {
        "postgres" => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let admin = admin_url.to_owned();
            runtime.block_on(async {
                let mut connection = sqlx::PgConnection::connect(&admin).await?;
                sqlx::query(&format!("create database {name}"))
                    .execute(&mut connection)
                    .await?;
                anyhow::Ok(())
            })?;
            let (server, _) = admin_url
                .rsplit_once('/')
                .context("the URL must name a database")?;
            let url = format!("{server}/{name}");
            let cleanup = Box::new(move || {
                let _ = runtime.block_on(async {
                    let mut connection = sqlx::PgConnection::connect(&admin).await?;
                    sqlx::query(&format!("drop database if exists {name} with (force)"))
                        .execute(&mut connection)
                        .await?;
                    anyhow::Ok(())
                });
            });
            Ok(BenchDatabase { url, cleanup })
        }
        "sqlite" => {
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir)?;
            let url = format!("sqlite://{}/registry.db", dir.display());
            Ok(BenchDatabase {
                url,
                cleanup: Box::new(move || {
                    let _ = std::fs::remove_dir_all(dir);
                }),
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

fn public_client(id: &str, name: &str) -> String {
    serde_json::json!({
        "client_id": id,
        "client_name": name,
        "require_client_secret": false,
        "client_uri": format!("https://{id}.example.com"),
        "redirect_uris": [format!("https://{id}.example.com/callback")],
        "allowed_scopes": ["openid", "profile"],
    })
    .to_string()
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Registers `count` public clients over 16 connections.
fn seed(server: &Server, count: usize) -> load::LoadResult {
    load::run(&server.addr, &server.token, 16, count, &[201], |i| {
        let id = format!("bench-{i:06}");
        Request {
            method: "POST",
            path: "/api/v1/clients".into(),
            body: Some(public_client(&id, &client_name(i))),
        }
    })
}

fn exports(
    server: &Server,
    backend: &str,
    clients: usize,
    figures: &mut Vec<Figure>,
) -> anyhow::Result<()> {
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
        anyhow::ensure!(
            rows == clients,
            "export.{format} had {rows} rows, not {clients}"
        );
        figures.push(Figure {
            backend: backend.into(),
            what: format!("export of {clients} clients to {format}"),
            value: format!("{:.2} s", elapsed.as_secs_f64()),
            note: format!(
                "{:.1} MiB file; server RSS {} before, peak {} during (+{})",
                response.body.len() as f64 / 1_048_576.0,
                mib(before),
                mib(peak),
                mib(peak.saturating_sub(before))
            ),
        });
    }
    Ok(())
}

fn run_backend(args: &Args, backend: &str, figures: &mut Vec<Figure>) -> anyhow::Result<()> {
    let database = fresh_database(backend, &args.postgres_url)?;
    let result = (|| {
        let server = Server::start(&database.url, &[])?;
        figures.push(Figure {
            backend: backend.into(),
            what: "idle RSS after start".into(),
            value: mib(server.rss_kib()),
            note: String::new(),
        });
        eprintln!("[{backend}] registering {} clients…", args.clients);
        let seeded = seed(&server, args.clients);
        anyhow::ensure!(seeded.errors == 0, "{} registrations failed", seeded.errors);
        figures.push(Figure {
            backend: backend.into(),
            what: format!(
                "seeding: {} public registrations, 16 connections",
                args.clients
            ),
            value: format!("{:.0} /s", seeded.rate()),
            note: format!(
                "p50 {:.1} ms, p99 {:.1} ms, {:.1} s in all",
                seeded.percentile_ms(50.0),
                seeded.percentile_ms(99.0),
                seeded.elapsed.as_secs_f64()
            ),
        });
        if args.scenarios.iter().any(|s| s == "exports") {
            eprintln!("[{backend}] exports…");
            exports(&server, backend, args.clients, figures)?;
        }
        figures.push(Figure {
            backend: backend.into(),
            what: "server peak RSS over the whole run".into(),
            value: mib(server.peak_kib()),
            note: String::new(),
        });
        anyhow::Ok(())
    })();
    (database.cleanup)();
    result
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
    format!(
        "{cores} cores ({cpu}), {:.0} GiB RAM",
        memory as f64 / 1_048_576.0
    )
}

fn render(figures: &[Figure], args: &Args, elapsed: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Run {} on {}; {} clients; {:.0} s in all.\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        machine(),
        args.clients,
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| backend | what | value | notes |\n| --- | --- | --- | --- |"
    );
    for f in figures {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            f.backend, f.what, f.value, f.note
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
    for backend in &args.backends {
        run_backend(&args, backend, &mut figures)?;
    }
    let table = render(&figures, &args, started.elapsed());
    print!("{table}");
    if let Some(path) = &args.write {
        write_results(path, &table)?;
    }
    Ok(())
}
