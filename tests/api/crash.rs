//! Process-level faults, with the real binary: SIGKILL mid-load, PostgreSQL dropping every
//! connection. Bounded in time; the only timing bounds are the generous ones of recovery.

use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use registry_tests::{eventually, postgres_admin_url, spa_client, Backend, TestDatabase};
use serde_json::Value;
use sqlx::Connection;

const TOKEN: &str = "crash-test-admin-token-0123456789";

/// The service as a process of its own, on `url`.
struct Server {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Server {
    async fn start(url: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::env::temp_dir().join(format!("registry-crash-{}.log", uuid::Uuid::new_v4()));
        let output = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_registry-under-test"))
            .arg("serve")
            .env("REGISTRY_DATABASE_URL", url)
            .env("REGISTRY_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("REGISTRY_ADMIN_TOKEN", TOKEN)
            .env("REGISTRY_SEED_DEFAULT_CLIENTS", "false")
            .env("REGISTRY_LOG", "warn")
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap();
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = client();
        let ready = format!("{}/readyz", server.base);
        eventually(30, "the server to be ready", || async {
            http.get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 200)
        })
        .await;
        server
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let response = client()
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn metric(&self, name: &str) -> Option<i64> {
        let text = client()
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "server log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// 8 writers registering `{prefix}-{writer}-{i}` until `stop`; returns every status and the
/// ids answered 201.
fn writers(
    base: &str,
    prefix: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinSet<(Vec<u16>, Vec<String>)> {
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let url = format!("{base}/api/v1/clients");
        let stop = stop.clone();
        tasks.spawn(async move {
            let http = client();
            let (mut statuses, mut acknowledged) = (Vec::new(), Vec::new());
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let id = format!("{prefix}-{writer}-{i}");
                match http
                    .post(&url)
                    .bearer_auth(TOKEN)
                    .json(&spa_client(&id, "Under load"))
                    .send()
                    .await
                {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        statuses.push(status);
                        if status == 201 {
                            acknowledged.push(id);
                        }
                    }
                    // The process is gone: nothing was answered.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
            (statuses, acknowledged)
        });
    }
    tasks
}

async fn collect(
    mut tasks: tokio::task::JoinSet<(Vec<u16>, Vec<String>)>,
) -> (Vec<u16>, Vec<String>) {
    let (mut statuses, mut acknowledged) = (Vec::new(), Vec::new());
    while let Some(done) = tasks.join_next().await {
        let (s, a) = done.unwrap();
        statuses.extend(s);
        acknowledged.extend(a);
    }
    (statuses, acknowledged)
}

/// Every event of the feed: `(client_id, event_type)`.
async fn whole_feed(server: &Server) -> Vec<(String, String)> {
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = server
            .get(&format!("/api/v1/events?after={after}&limit=1000"))
            .await;
        assert_eq!(status, 200, "{page}");
        let batch = page["events"].as_array().unwrap();
        for event in batch {
            events.push((
                event["client_id"].as_str().unwrap().to_owned(),
                event["event_type"].as_str().unwrap().to_owned(),
            ));
        }
        let next = page["next_after"].as_i64().unwrap();
        if batch.is_empty() && next == after {
            return events;
        }
        after = next;
    }
}

async fn killed_mid_load_loses_no_acknowledged_write(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut server = Server::start(&database.url).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = writers(&server.base, "crash", stop.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    stop.store(true, Ordering::SeqCst);
    let (statuses, acknowledged) = collect(load).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert!(
        acknowledged.len() > 8,
        "the load ran: {}",
        acknowledged.len()
    );

    let server = Server::start(&database.url).await;
    let feed = whole_feed(&server).await;
    let mut registered: Vec<&str> = feed
        .iter()
        .filter(|(_, kind)| kind == "ClientRegistered")
        .map(|(id, _)| id.as_str())
        .collect();
    let count = registered.len();
    registered.sort_unstable();
    registered.dedup();
    assert_eq!(
        registered.len(),
        count,
        "each client appears once in the feed"
    );
    for id in &acknowledged {
        assert!(
            registered.contains(&id.as_str()),
            "{id} acknowledged, not in the feed"
        );
    }
    // Nothing half-written: every client the feed has is readable, and search finds them all
    // once the restarted projector has caught up.
    for id in &registered {
        let (status, _) = server.get(&format!("/api/v1/clients/{id}")).await;
        assert_eq!(status, 200, "{id}");
    }
    eventually(20, "search to find every committed client", || async {
        server.get("/api/v1/clients?search=crash-&limit=1").await.1["total"]
            == registered.len() as u64
    })
    .await;
}

mod killed_mid_load_loses_no_acknowledged_write {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::killed_mid_load_loses_no_acknowledged_write(super::Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::killed_mid_load_loses_no_acknowledged_write(super::Backend::Sqlite).await;
    }
}

/// PostgreSQL ends every session of the service and refuses new ones for a moment (a restart,
/// a failover): writes answer 503, never 500; the service recovers by itself; the projector
/// takes its lease again and the search index follows again; `/readyz` is 200 again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_dropping_every_connection_is_503_then_recovers() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let name = database.postgres_name().unwrap().to_owned();
    let server = Server::start(&database.url).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = writers(&server.base, "outage", stop.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut admin = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .unwrap();
    sqlx::query(&format!("alter database {name} allow_connections false"))
        .execute(&mut admin)
        .await
        .unwrap();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1",
    )
    .bind(&name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(terminated.len() > 1, "the service's sessions were ended");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _) = server.get("/readyz").await;
    assert_eq!(status, 503, "not ready while the database is away");
    sqlx::query(&format!("alter database {name} allow_connections true"))
        .execute(&mut admin)
        .await
        .unwrap();

    let http = client();
    let url = format!("{}/api/v1/clients", server.base);
    eventually(20, "writes to succeed again", || async {
        http.post(&url)
            .bearer_auth(TOKEN)
            .json(&spa_client(
                &format!("probe-{}", uuid::Uuid::new_v4()),
                "Probe",
            ))
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 201)
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    let (statuses, _) = collect(load).await;
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 503),
        "503 during the outage, never 500: {statuses:?}"
    );
    assert!(statuses.contains(&503), "the outage was noticed");

    server
        .get("/api/v1/clients?limit=1")
        .await
        .0
        .eq(&200)
        .then_some(())
        .unwrap();
    eventually(20, "the service to be ready again", || async {
        server.get("/readyz").await.0 == 200
    })
    .await;
    eventually(20, "the projector to lead and catch up again", || async {
        server.metric("registry_projector_leader").await == Some(1)
            && server.metric("registry_projector_lag_events").await == Some(0)
    })
    .await;
    eventually(
        20,
        "the search index to follow to the head again",
        || async { server.metric("registry_search_index_lag_positions").await == Some(0) },
    )
    .await;
}
