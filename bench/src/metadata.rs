//! `--only metadata`: client ID metadata documents (issue 19). A local https server (the
//! tests' document server, its test CA given to the registry) publishes one small document
//! (~400 bytes, `max-age=3600`) per client; a registry process resolves them through
//! `GET /api/v1/clients/{url}` over 8 connections: first cold (each lookup a guarded fetch —
//! name resolution, TCP, TLS handshake, the document — and a `ClientRegistered` event), then
//! cached (the stored client while fresh: a read). The document server runs on one thread of
//! the same two cores.

use anyhow::Context as _;
use registry_tests::document_server::{native_document, test_ca, DocumentServer, Reply};

use crate::load::{self, Request};
use crate::server::Server;
use crate::{latency_note, Bench};

impl Bench<'_> {
    pub(crate) fn metadata(&mut self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let documents = runtime.block_on(DocumentServer::start());
        let total = self.scaled(2_000);
        let urls: Vec<String> = (0..total)
            .map(|i| documents.url(&format!("/tool-{i}.json")))
            .collect();
        for (i, url) in urls.iter().enumerate() {
            let path = format!("/tool-{i}.json");
            let document = native_document(url, &format!("MCP tool {i}"));
            documents.set(&path, Reply::json(&document, "max-age=3600"));
        }
        let server = documents_registry(&self.database.url)?;
        self.lookups(&server, &urls)?;
        let fetched: usize = (0..total)
            .map(|i| documents.hits(&format!("/tool-{i}.json")))
            .sum();
        anyhow::ensure!(fetched == total, "{fetched} fetches for {total} documents");
        Ok(())
    }

    /// Every document looked up once (cold), then five times more (cached).
    fn lookups(&mut self, server: &Server, urls: &[String]) -> anyhow::Result<()> {
        let total = urls.len();
        let lookup = |i: usize| Request {
            method: "GET",
            path: format!(
                "/api/v1/clients/{}",
                form_urlencoded::byte_serialize(urls[i % total].as_bytes()).collect::<String>()
            ),
            body: None,
        };
        let cold = load::run(&server.addr, &server.token, "", 8, total, &[200], lookup);
        anyhow::ensure!(cold.errors == 0, "{} first lookups failed", cold.errors);
        self.figure(
            "metadata document, first lookup (guarded https fetch + ClientRegistered), 8 conn",
            format!("{:.0} /s", cold.rate()),
            "",
            "",
            format!(
                "{total} documents on a local https server; {}",
                latency_note(&cold)
            ),
        );
        let repeats = total * 5;
        let cached = load::run(&server.addr, &server.token, "", 8, repeats, &[200], lookup);
        anyhow::ensure!(
            cached.errors == 0,
            "{} cached lookups failed",
            cached.errors
        );
        self.figure(
            "metadata document, cached lookup (fresh: no fetch), 8 conn",
            format!("{:.0} /s", cached.rate()),
            "",
            "",
            format!(
                "{repeats} lookups of the {total}; {}",
                latency_note(&cached)
            ),
        );
        Ok(())
    }
}

/// A registry process resolving documents on `localhost` (the test CA trusted).
fn documents_registry(database_url: &str) -> anyhow::Result<Server> {
    let ca = test_ca();
    Server::start(
        database_url,
        &[
            ("REGISTRY_CLIENT_ID_DOCUMENTS", "localhost"),
            ("REGISTRY_CLIENT_ID_DOCUMENT_PRIVATE_ADDRESSES", "true"),
            (
                "REGISTRY_CLIENT_ID_DOCUMENT_CA_FILE",
                ca.to_str().context("a UTF-8 path")?,
            ),
        ],
    )
}
