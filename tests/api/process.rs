//! The service as a real process (the binary built in this package as `registry-under-test`):
//! started on a database, driven over HTTP, killed or stopped, its log read back.

use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use registry_tests::{eventually, spa_client};
use serde_json::Value;

pub const TOKEN: &str = "crash-test-admin-token-0123456789";

/// The service as a process of its own, on `url`.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    log: std::path::PathBuf,
}

impl Server {
    pub async fn start(url: &str) -> Self {
        Self::start_with(url, &[]).await
    }

    /// Like [`Self::start`], with more environment variables.
    pub async fn start_with(url: &str, env: &[(&str, &str)]) -> Self {
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
            .env("REGISTRY_AUDIT_KEY_FILE", registry_tests::test_audit_key())
            .env("REGISTRY_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("REGISTRY_ADMIN_TOKEN", TOKEN)
            .env("REGISTRY_SEED_DEFAULT_CLIENTS", "false")
            .env("REGISTRY_LOG", "warn")
            .envs(env.iter().copied())
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

    /// Everything the process wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, as an orchestrator stops a process.
    pub fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Waits up to `limit` for the process to exit; its status, if it did.
    pub async fn exited_within(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = client()
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET path` with the admin token: status and body text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = client()
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    pub async fn metric(&self, name: &str) -> Option<i64> {
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

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// 8 writers registering `{prefix}-{writer}-{i}` until `stop`; returns every status and the
/// ids answered 201.
pub fn writers(
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

pub async fn collect(
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
pub async fn whole_feed(server: &Server) -> Vec<(String, String)> {
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

/// Runs the binary once with `args` on `url` (e.g. `backup --to FILE`); its exit status and
/// output (stdout, stderr).
pub fn run_command(url: &str, args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_registry-under-test"))
        .args(args)
        .env("REGISTRY_DATABASE_URL", url)
        .env("REGISTRY_AUDIT_KEY_FILE", registry_tests::test_audit_key())
        .env("REGISTRY_LOG", "warn")
        .output()
        .unwrap();
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `GET base/path` with the admin token: status and JSON body.
pub async fn get_at(base: &str, path: &str) -> (u16, Value) {
    let response = client()
        .get(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Waits until the load has registered at least `count` clients whose ids start with
/// `prefix` (the writers are under way), as the server's list says.
pub async fn registered_under_load(server: &Server, prefix: &str, count: u64) {
    let path = format!("/api/v1/clients?search={prefix}&limit=1");
    eventually(30, "the load to be under way", || async {
        let (status, page) = server.get(&path).await;
        status == 200 && page["total"].as_u64().is_some_and(|total| total >= count)
    })
    .await;
}

/// Waits until `more` clients whose id starts with `prefix` were registered since the call.
pub async fn more_registered_under_load(server: &Server, prefix: &str, more: u64) {
    let path = format!("/api/v1/clients?search={prefix}&limit=1");
    let (_, page) = server.get(&path).await;
    let now = page["total"].as_u64().unwrap_or_default();
    registered_under_load(server, prefix, now + more).await;
}
