//! Test harness for end-to-end tests: a fresh database per test (a new PostgreSQL database or
//! a new SQLite file), the app built on it exactly as `serve` builds it, and a [`TestApp`]
//! that every test drives every route through: [`TestApp::call`] builds a request (the
//! admin's token, or [`Call::anonymous`], [`Call::bearer`], headers, a body) and
//! [`Call::send`] sends it in-process (`tower::ServiceExt::oneshot`); the endpoint methods
//! (`create_client`, `get_client`, …) and [`TestApp::request`] are shorthands over it, and
//! [`TestApp::api`] hands it to tasks of their own.
//!
//! PostgreSQL tests connect to `REGISTRY_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and create a database per test, dropped at
//! the end. Logs are silent unless `TEST_LOG=1`.
#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::too_many_lines
)]

pub mod browser;
pub mod document_server;
pub mod idp;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};

use tracing_subscriber::Layer as _;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use client_registry::Config;
use http_body_util::BodyExt;
use registry_commands::{ClientCommands, Database, PoolOptions, SecretHasher};
use registry_projections::{Projector, ReadStore, SearchIndex};
use serde_json::Value;
use sqlx::Connection;
use tower::ServiceExt;

/// The admin token every test app accepts.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh PostgreSQL database.
    Postgres,
    /// A fresh SQLite file.
    Sqlite,
}

/// Generates, for each listed `async fn name(backend: Backend)`, a module `name` with one test
/// per backend: `name::postgres` and `name::sqlite`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::Backend::Postgres).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            }
        )*
    };
}

/// The tree-head signing key the tests use (made by the first test that needs it).
pub fn test_audit_key() -> std::path::PathBuf {
    std::env::temp_dir().join("client-registry-tests-audit-key.pem")
}

/// Every log line of this test process, at debug level, whether or not `TEST_LOG` prints
/// them: the leak tests scan it for secrets and tokens.
static CAPTURED: Mutex<Vec<u8>> = Mutex::new(Vec::new());

#[derive(Clone, Copy)]
struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut captured) = CAPTURED.lock() {
            captured.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

fn init_logs() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let capture = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(Capture)
            .with_filter(tracing_subscriber::EnvFilter::new("debug"));
        let print = std::env::var_os("TEST_LOG").is_some().then(|| {
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_filter(tracing_subscriber::EnvFilter::new(
                    "debug,sqlx=warn,hyper=info",
                ))
        });
        let _ = tracing_subscriber::registry()
            .with(capture)
            .with(print)
            .try_init();
    });
}

/// Everything logged so far by this test process (all tests), at debug level.
pub fn captured_logs() -> String {
    CAPTURED
        .lock()
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .unwrap_or_default()
}

/// The server of the PostgreSQL test databases.
pub fn postgres_admin_url() -> String {
    std::env::var("REGISTRY_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test and is removed when dropped.
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    /// The SQLite file, for tests that read it raw.
    pub sqlite_file: Option<PathBuf>,
    postgres_name: Option<String>,
    sqlite_dir: Option<PathBuf>,
}

impl TestDatabase {
    /// Creates an empty database on `backend`.
    pub async fn create(backend: Backend) -> Self {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Postgres => {
                let name = format!("registry_test_{unique}");
                let admin = postgres_admin_url();
                let mut connection = match sqlx::PgConnection::connect(&admin).await {
                    Ok(connection) => connection,
                    Err(error) => fail_in_one_line(&format!(
                        "this test needs the PostgreSQL server at {admin} ({error}): run \
                         scripts/test (it starts the machine's server) or set \
                         REGISTRY_TEST_DATABASE_URL"
                    )),
                };
                sqlx::query(&format!("create database {name}"))
                    .execute(&mut connection)
                    .await
                    .unwrap();
                connection.close().await.unwrap();
                let url = match admin.rsplit_once('/') {
                    Some((server, _)) => format!("{server}/{name}"),
                    None => panic!("REGISTRY_TEST_DATABASE_URL must name a database"),
                };
                Self {
                    url,
                    sqlite_file: None,
                    postgres_name: Some(name),
                    sqlite_dir: None,
                }
            }
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("registry-test-{unique}"));
                let file = dir.join("registry.db");
                Self {
                    url: format!("sqlite://{}", file.display()),
                    sqlite_file: Some(file),
                    postgres_name: None,
                    sqlite_dir: Some(dir),
                }
            }
        }
    }

    /// The PostgreSQL database's name (`None` on SQLite).
    pub fn postgres_name(&self) -> Option<&str> {
        self.postgres_name.as_deref()
    }

    /// A new connection pool to it.
    pub async fn connect(&self) -> Database {
        Database::connect(&self.url, &PoolOptions::default())
            .await
            .unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(dir) = &self.sqlite_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(name) = self.postgres_name.take() {
            // Drop runs inside the test's runtime; a fresh thread with its own runtime may
            // block on the DROP without starving it.
            let admin = postgres_admin_url();
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(async move {
                        if let Ok(mut connection) = sqlx::PgConnection::connect(&admin).await {
                            let _ = sqlx::query(&format!(
                                "drop database if exists {name} with (force)"
                            ))
                            .execute(&mut connection)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// A handle on a [`TestApp`] for tasks of their own: see [`TestApp::api`].
#[derive(Clone)]
pub struct Api {
    router: Router,
}

impl Api {
    /// `call(Method::GET, path)`.
    pub fn get(&self, path: &str) -> Call {
        self.call(Method::GET, path)
    }

    /// See [`TestApp::call`].
    pub fn call(&self, method: Method, path: &str) -> Call {
        Call {
            router: self.router.clone(),
            request: Request::builder()
                .method(method)
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}")),
            body: Body::empty(),
        }
    }
}

/// A request being built: see [`TestApp::call`].
#[must_use = "a call does nothing until it is sent"]
pub struct Call {
    router: Router,
    request: axum::http::request::Builder,
    body: Body,
}

impl Call {
    /// Adds a header.
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        axum::http::HeaderName: TryFrom<K>,
        <axum::http::HeaderName as TryFrom<K>>::Error: Into<axum::http::Error>,
        axum::http::HeaderValue: TryFrom<V>,
        <axum::http::HeaderValue as TryFrom<V>>::Error: Into<axum::http::Error>,
    {
        self.request = self.request.header(name, value);
        self
    }

    /// Adds headers.
    pub fn headers(self, headers: &[(&str, &str)]) -> Self {
        headers
            .iter()
            .fold(self, |call, (name, value)| call.header(*name, *value))
    }

    /// Sends `body` as JSON.
    pub fn json(self, body: &Value) -> Self {
        self.body("application/json", body.to_string())
    }

    /// Sends `body` with `content_type` (`""`: no `Content-Type`).
    pub fn body(mut self, content_type: &str, body: impl Into<Body>) -> Self {
        if !content_type.is_empty() {
            self = self.header("content-type", content_type);
        }
        self.body = body.into();
        self
    }

    /// Without the admin's token: no `Authorization` at all.
    pub fn anonymous(mut self) -> Self {
        if let Some(headers) = self.request.headers_mut() {
            headers.remove(header::AUTHORIZATION);
        }
        self
    }

    /// With another bearer token than the admin's.
    pub fn bearer(self, token: &str) -> Self {
        self.anonymous()
            .header("authorization", format!("Bearer {token}"))
    }

    /// Sends it to the app in-process (`tower::ServiceExt::oneshot`) and reads the whole
    /// answer. Dropping the future mid-way is a client going away.
    pub async fn send(self) -> TestResponse {
        let request = self.request.body(self.body).unwrap();
        let response = self.router.oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        TestResponse {
            status,
            headers,
            body,
        }
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct TestResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The body as JSON (`Null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `ETag` as a version number.
    pub fn etag_version(&self) -> Option<u64> {
        self.header("etag")?.trim_matches('"').parse().ok()
    }

    /// Asserts the status, printing the body when it differs.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }

    /// Asserts a problem document with this status and code; returns the fields it names.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> Vec<String> {
        self.assert_status(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        let body = self.json();
        assert_eq!(body["code"], code, "body: {body}");
        assert_eq!(body["status"], status);
        assert!(
            body["title"].is_string() && body["detail"].is_string() && body["type"].is_string()
        );
        body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The app on a fresh database, with one method per endpoint.
pub struct TestApp {
    /// The router, as `serve` runs it: reached through [`TestApp::call`].
    router: Router,
    /// The database under the app.
    pub database: Database,
    /// Which backend.
    pub backend: Backend,
    /// The configuration it was built with.
    pub config: Config,
    /// The app's projector (its background loop is not running unless a test spawns it).
    pub projector: Arc<Projector>,
    /// The app's search index (its feed follower is not running unless a test spawns it).
    pub search: Arc<SearchIndex>,
    /// The app's supervisor of background tasks (none run unless a test starts them).
    pub supervisor: Arc<registry_api::supervisor::Supervisor>,
    /// The app's write side.
    pub commands: Arc<ClientCommands>,
    /// The app's sealer of the event log (its loop runs only if a test starts it).
    pub sealer: Arc<registry_projections::seal::sealer::Sealer>,
    // Declared last: dropped after the pools above are closed.
    test_database: TestDatabase,
}

impl TestApp {
    /// The app on a fresh database of `backend`, with the default clients seeded.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Like [`Self::spawn`], with the configuration adjusted first.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Self {
        init_logs();
        let test_database = TestDatabase::create(backend).await;
        let mut config = Config::with_database(&test_database.url);
        config.admin_token = Some(ADMIN_TOKEN.to_owned());
        // One signing key for every test (SQLite's default is beside its file anyway).
        config.audit_key_file = Some(test_audit_key());
        adjust(&mut config);
        let database = test_database.connect().await;
        let prepared = client_registry::prepare(database.clone(), &config)
            .await
            .unwrap();
        Self {
            router: prepared.router,
            database,
            backend,
            config,
            projector: prepared.projector,
            search: prepared.search,
            supervisor: prepared.supervisor,
            commands: prepared.commands,
            sealer: prepared.sealer,
            test_database,
        }
    }

    /// Serves the app on a free port of 127.0.0.1 (for a browser); returns its base URL.
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let router = self.router.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        format!("http://{address}")
    }

    /// Starts the feed follower as `serve` runs it, and waits until it has read the feed to
    /// its end: only then are the memory of verified secrets and the change stream trusted.
    pub async fn follow_feed(&self) {
        tokio::spawn(self.search.clone().follow(self.reads()));
        let commands = self.commands.clone();
        eventually(10, "the follower to read the feed", || {
            let commands = commands.clone();
            async move { commands.verified_secrets().is_listening() }
        })
        .await;
    }

    /// A second app on the same database: another process of a multi-process deployment.
    pub async fn second_process(&self) -> Self {
        self.second_process_with(|_| {}).await
    }

    /// Like [`Self::second_process`], configured differently (e.g. after a key was removed).
    pub async fn second_process_with(&self, adjust: impl FnOnce(&mut Config)) -> Self {
        let database = self.test_database.connect().await;
        let mut config = self.config.clone();
        adjust(&mut config);
        let prepared = client_registry::prepare(database.clone(), &config)
            .await
            .unwrap();
        Self {
            router: prepared.router,
            database,
            backend: self.backend,
            config,
            projector: prepared.projector,
            search: prepared.search,
            supervisor: prepared.supervisor,
            commands: prepared.commands,
            sealer: prepared.sealer,
            test_database: TestDatabase {
                url: self.test_database.url.clone(),
                sqlite_file: self.test_database.sqlite_file.clone(),
                // The first app owns the database and removes it.
                postgres_name: None,
                sqlite_dir: None,
            },
        }
    }

    /// The app as a restarted process would build it on the same database.
    pub async fn restart(&mut self) {
        self.database.close().await;
        self.database = self.test_database.connect().await;
        let prepared = client_registry::prepare(self.database.clone(), &self.config)
            .await
            .unwrap();
        self.router = prepared.router;
        self.projector = prepared.projector;
        self.search = prepared.search;
        self.supervisor = prepared.supervisor;
        self.commands = prepared.commands;
        self.sealer = prepared.sealer;
    }

    /// Projects what is committed and seals it, signing a head: the sealed log up to date.
    pub async fn seal(&self) -> u64 {
        self.projector.drain().await.unwrap();
        self.sealer.seal_available(true).await.unwrap()
    }

    /// The read side on the app's database.
    pub fn reads(&self) -> Arc<dyn ReadStore> {
        client_registry::read_store(&self.database)
    }

    /// A write side on the app's database that projects nothing: its commits are what a
    /// crash between commit and projection leaves behind.
    pub fn commands_without_projection(&self) -> ClientCommands {
        ClientCommands::new(&self.database, Vec::new(), SecretHasher::new(1))
    }

    /// A second, independent connection pool to the app's database (another process).
    pub async fn connect_again(&self) -> Database {
        self.test_database.connect().await
    }

    /// `GET` with the admin token, as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.request(Method::GET, path, None, &[]).await;
        response.assert_status(200);
        response.json()
    }

    /// The rows of the read models and the checkpoint, as text, in a stable order.
    pub async fn read_model_rows(&self) -> Vec<String> {
        const QUERIES: [&str; 3] = [
            "select client_id || '|' || version || '|' || last_position || '|' || \
             cast(deleted as text) || '|' || cast(document as text) || '|' || \
             cast(created_at as text) || '|' || cast(updated_at as text) \
             from client_detail order by client_id",
            "select client_id || '|' || client_name || '|' || name_key || '|' || \
             coalesce(client_uri, '-') || '|' || cast(enabled as text) || '|' || \
             cast(grant_types as text) || '|' || search_text || '|' || \
             cast(created_at as text) || '|' || cast(updated_at as text) \
             from client_list order by client_id",
            "select projection || '|' || position from projection_checkpoints \
             where projection <> 'clients_generation' order by projection",
        ];
        let mut rows = Vec::new();
        for sql in QUERIES {
            let part: Vec<String> = match &self.database {
                Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
                Database::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
            };
            rows.extend(part);
        }
        rows
    }

    /// The first column of every row of `sql`, as integers.
    pub async fn scalars(&self, sql: &str) -> Vec<i64> {
        match &self.database {
            Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
            Database::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The global position of every stored event, in order.
    pub async fn feed_positions(&self) -> Vec<i64> {
        self.scalars("select global_position from events order by global_position")
            .await
    }

    /// Runs one SQL statement on the app's database (to build a fault by hand); returns the
    /// rows it affected.
    pub async fn execute(&self, sql: &str) -> u64 {
        match &self.database {
            Database::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Database::Sqlite(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The SQLite file under the app, if on SQLite.
    pub fn sqlite_file(&self) -> Option<&PathBuf> {
        self.test_database.sqlite_file.as_ref()
    }

    /// A request to the app as the admin (its bearer token), built up with [`Call`]'s
    /// methods and sent with [`Call::send`]: the one way every test drives a route. A
    /// `Call` owns a handle on the app, so it can be sent from a task of its own.
    pub fn call(&self, method: Method, path: &str) -> Call {
        self.api().call(method, path)
    }

    /// A handle on the app that tasks of their own can keep and [`Api::call`] through.
    pub fn api(&self) -> Api {
        Api {
            router: self.router.clone(),
        }
    }

    /// `call(Method::GET, path)`.
    pub fn get(&self, path: &str) -> Call {
        self.call(Method::GET, path)
    }

    /// An authenticated request with an optional JSON body and extra headers: a shorthand
    /// for [`Self::call`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut call = self.call(method, path).headers(headers);
        if let Some(body) = body {
            call = call.json(body);
        }
        call.send().await
    }

    /// `POST /api/v1/clients`.
    pub async fn create_client(&self, body: &Value) -> TestResponse {
        self.request(Method::POST, "/api/v1/clients", Some(body), &[])
            .await
    }

    /// `GET /api/v1/clients/{id}`.
    pub async fn get_client(&self, client_id: &str) -> TestResponse {
        self.request(
            Method::GET,
            &format!("/api/v1/clients/{client_id}"),
            None,
            &[],
        )
        .await
    }

    /// `PUT /api/v1/clients/{id}`, with `If-Match` when `version` is given.
    pub async fn update_client(
        &self,
        client_id: &str,
        body: &Value,
        version: Option<u64>,
    ) -> TestResponse {
        let tag = version.map(|v| format!("\"{v}\""));
        let headers: Vec<(&str, &str)> = tag.iter().map(|t| ("if-match", t.as_str())).collect();
        self.request(
            Method::PUT,
            &format!("/api/v1/clients/{client_id}"),
            Some(body),
            &headers,
        )
        .await
    }

    /// `POST /api/v1/clients/{id}/secret`.
    pub async fn rotate_secret(&self, client_id: &str, body: Option<&Value>) -> TestResponse {
        self.request(
            Method::POST,
            &format!("/api/v1/clients/{client_id}/secret"),
            body,
            &[],
        )
        .await
    }

    /// `DELETE /api/v1/clients/{id}`.
    pub async fn delete_client(&self, client_id: &str) -> TestResponse {
        self.request(
            Method::DELETE,
            &format!("/api/v1/clients/{client_id}"),
            None,
            &[],
        )
        .await
    }

    /// `GET /api/v1/clients?{query}`.
    pub async fn list_clients(&self, query: &str) -> TestResponse {
        self.request(Method::GET, &format!("/api/v1/clients?{query}"), None, &[])
            .await
    }

    /// Every row of every table, as text (`row::text` on PostgreSQL, each column on SQLite).
    pub async fn dump_tables(&self) -> String {
        let mut dump = String::new();
        match &self.database {
            Database::Postgres(pool) => {
                let tables: Vec<String> = sqlx::query_scalar(
                    "select table_name::text from information_schema.tables \
                     where table_schema = 'public'",
                )
                .fetch_all(pool)
                .await
                .unwrap();
                for table in tables {
                    let rows: Vec<String> =
                        sqlx::query_scalar(&format!("select t::text from \"{table}\" t"))
                            .fetch_all(pool)
                            .await
                            .unwrap();
                    dump.push_str(&rows.join("\n"));
                }
            }
            Database::Sqlite(pool) => {
                let tables: Vec<String> =
                    sqlx::query_scalar("select name from sqlite_master where type = 'table'")
                        .fetch_all(pool)
                        .await
                        .unwrap();
                for table in tables {
                    let columns: Vec<String> = sqlx::query_scalar(&format!(
                        "select name from pragma_table_info('{table}')"
                    ))
                    .fetch_all(pool)
                    .await
                    .unwrap();
                    let concat = columns
                        .iter()
                        .map(|c| format!("quote(\"{c}\")"))
                        .collect::<Vec<_>>()
                        .join(" || ' ' || ");
                    let rows: Vec<String> =
                        sqlx::query_scalar(&format!("select {concat} from \"{table}\""))
                            .fetch_all(pool)
                            .await
                            .unwrap();
                    dump.push_str(&rows.join("\n"));
                }
            }
        }
        dump
    }

    /// The events of one client in stream order: `(event_type, metadata)`.
    pub async fn events_of(&self, client_id: &str) -> Vec<(String, Value)> {
        const SQL: &str = "select event_type, metadata from events \
                           where aggregate_id = $1 order by sequence";
        match &self.database {
            Database::Postgres(pool) => sqlx::query_as(SQL)
                .bind(client_id)
                .fetch_all(pool)
                .await
                .unwrap(),
            Database::Sqlite(pool) => sqlx::query_as(SQL)
                .bind(client_id)
                .fetch_all(pool)
                .await
                .unwrap(),
        }
    }
}

/// Polls `condition` every 20 ms until it holds, failing after `seconds`. For waiting on
/// background work (the projector), never as a stand-in for synchronisation of our own.
pub async fn eventually<F, Fut>(seconds: u64, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A valid public SPA client body, with every editable field (so `PUT` takes it too).
pub fn spa_client(client_id: &str, name: &str) -> Value {
    serde_json::json!({
        "client_id": client_id,
        "client_name": name,
        "client_uri": "https://studio.example.com",
        "require_client_secret": false,
        "enabled": true,
        "offline_access": false,
        "require_pkce": true,
        "grant_types": ["authorization_code"],
        "redirect_uris": ["https://studio.example.com/callback"],
        "post_logout_redirect_uris": [],
        "allowed_cors_origins": ["https://studio.example.com"],
        "allowed_scopes": ["openid", "profile"],
    })
}

/// A valid confidential service client body (the secret is generated unless given), with
/// every editable field.
pub fn service_client(client_id: &str, secret: Option<&str>) -> Value {
    let mut body = serde_json::json!({
        "client_id": client_id,
        "client_name": "Billing worker",
        "client_uri": null,
        "require_client_secret": true,
        "enabled": true,
        "offline_access": false,
        "require_pkce": true,
        "grant_types": ["client_credentials"],
        "redirect_uris": [],
        "post_logout_redirect_uris": [],
        "allowed_cors_origins": [],
        "allowed_scopes": ["octo_api"],
    });
    if let Some(secret) = secret {
        body["client_secret"] = Value::from(secret);
    }
    body
}

/// A browser's side of the admin screens, without a browser: a session cookie and the CSRF
/// token of its pages, form posts marked same-origin as a browser marks them.
pub struct ScreenClient<'a> {
    app: &'a TestApp,
    /// The session cookie (`name=value`).
    pub cookie: String,
    /// The session's CSRF token, as its pages carry it.
    pub csrf: String,
}

/// The value of the first `name="…" value="…"` input in `html`.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let end = rest.find('>')?;
    let tag = &rest[..end];
    let value = tag.split("value=\"").nth(1)?;
    Some(
        value
            .split('"')
            .next()?
            .replace("&amp;", "&")
            .replace("&quot;", "\""),
    )
}

impl TestApp {
    /// Signs in to the screens with `token`, as the sign-in form does.
    pub async fn sign_in(&self, token: &str) -> ScreenClient<'_> {
        let token = form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>();
        let response = (self.call(Method::POST, "/sign-in").anonymous())
            .header("sec-fetch-site", "same-origin")
            .body(
                "application/x-www-form-urlencoded",
                format!("token={token}&next=%2Fclients"),
            )
            .send()
            .await;
        response.assert_status(303);
        let cookie = response
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_owned();
        let mut client = ScreenClient {
            app: self,
            cookie,
            csrf: String::new(),
        };
        let page = client.get("/clients").await;
        page.assert_status(200);
        client.csrf = input_value(&String::from_utf8_lossy(&page.body), "csrf").unwrap();
        client
    }
}

impl ScreenClient<'_> {
    /// The same browser session, talking to `app` (another process on the same database).
    pub fn on<'b>(&self, app: &'b TestApp) -> ScreenClient<'b> {
        ScreenClient {
            app,
            cookie: self.cookie.clone(),
            csrf: self.csrf.clone(),
        }
    }

    /// `GET` a screen with the session cookie.
    pub async fn get(&self, path: &str) -> TestResponse {
        (self.app.get(path).anonymous())
            .header("cookie", &self.cookie)
            .send()
            .await
    }

    /// Posts a form as the browser does from a page of this site (the CSRF token added).
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> TestResponse {
        let mut all: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, Some("same-origin")).await
    }

    /// Posts exactly these fields, with this `Sec-Fetch-Site` (none: header left out).
    pub async fn post_raw(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        fetch_site: Option<&str>,
    ) -> TestResponse {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let mut call = (self.app.call(Method::POST, path).anonymous())
            .header("cookie", &self.cookie)
            .body("application/x-www-form-urlencoded", body);
        if let Some(site) = fetch_site {
            call = call.header("sec-fetch-site", site);
        }
        call.send().await
    }
}

/// The outside programs the tests run, with the Debian package of each (the README's table
/// "What the tests need"; `scripts/test` installs them).
const OUTSIDE_TOOLS: &[(&str, &str)] = &[
    ("pdftotext", "poppler-utils"),
    ("pdfinfo", "poppler-utils"),
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    ("pg_dump", "postgresql-client"),
    ("pg_restore", "postgresql-client"),
    ("python3", "python3"),
    ("node", "nodejs"),
    ("npm", "npm"),
    ("curl", "curl"),
    ("script", "bsdutils"),
];

/// `tool` as found on `PATH`; when it is not there, the calling test fails with one line that
/// names the tool and how to install it, and no panic message or backtrace (twelve stack traces
/// for one missing package helped nobody).
pub fn require_tool(tool: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|candidate| candidate.is_file())
    });
    if let Some(path) = found {
        return path;
    }
    let package = OUTSIDE_TOOLS
        .iter()
        .find(|(name, _)| *name == tool)
        .map_or(tool, |(_, package)| *package);
    fail_in_one_line(&format!(
        "this test needs `{tool}`, which is not installed: run scripts/test (it installs what \
         is missing) or `apt-get install {package}`"
    ))
}

/// Fails the calling test with `line` as its only output. Not `panic!`: the panic hook would
/// print a message and a backtrace around the line.
fn fail_in_one_line(line: &str) -> ! {
    println!("{line}");
    std::panic::resume_unwind(Box::new(line.to_owned()))
}
