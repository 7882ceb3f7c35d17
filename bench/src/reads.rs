//! Reads: searches and lookups, the screens' list page, and what scraping `/metrics` costs
//! writers.

#[allow(clippy::wildcard_imports)]
use crate::*;

impl Bench<'_> {
    pub(crate) fn reads(&mut self, server: &Server) -> anyhow::Result<()> {
        let terms = [
            ("portal", "high selectivity"),
            ("gateway", "high selectivity"),
            ("bench-04213", "low selectivity"),
            ("t_x%", "LIKE wildcards, literal"),
        ];
        for (term, kind) in terms {
            self.search(server, term, kind)?;
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

    /// One search term at 1 and 16 connections, against pgbench running the same SQL.
    fn search(&mut self, server: &Server, term: &str, kind: &str) -> anyhow::Result<()> {
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
        Ok(())
    }

    /// The list screen at the store's size, server-rendered, with a session cookie.
    pub(crate) fn screens(&mut self, server: &Server) -> anyhow::Result<()> {
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
                let result = load::run(
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

    /// What keeping metrics costs writes: public registrations at 16 connections, in rounds
    /// without scraping and with a scrape of `/metrics` every second (more often than
    /// Prometheus's default), ordered A B B A … so that the store's growth over the rounds
    /// weighs on both alike; means compared. Recording is always on; the scrape is the part
    /// that can take time from writers.
    pub(crate) fn metrics_cost(&mut self, server: &Server) -> anyhow::Result<()> {
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
}
