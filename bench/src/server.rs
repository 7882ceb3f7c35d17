//! The service under test: the release binary, started as a child process on a fresh
//! database, and its memory read from /proc.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http::Connection;

/// A running `client-registry serve`.
pub struct Server {
    child: Child,
    /// `host:port`.
    pub addr: String,
    /// The admin token.
    pub token: String,
}

/// The `client-registry` binary next to this one (both built with `--release`).
pub fn binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .map(|dir| dir.join("client-registry"))
        .ok_or_else(|| anyhow::anyhow!("no directory for {}", exe.display()))?;
    anyhow::ensure!(
        path.exists(),
        "{} is missing: cargo build --release -p client-registry -p registry-bench",
        path.display()
    );
    Ok(path)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Server {
    /// Starts the service on `database_url` and waits until it answers.
    ///
    /// # Errors
    /// When it does not start within 60 s.
    pub fn start(database_url: &str, extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let token = format!("bench-token-{}", uuid::Uuid::new_v4().simple());
        let mut command = Command::new(binary()?);
        command
            .arg("serve")
            .env("REGISTRY_DATABASE_URL", database_url)
            .env("REGISTRY_LISTEN_ADDR", &addr)
            .env("REGISTRY_ADMIN_TOKEN", &token)
            .env("REGISTRY_SEED_DEFAULT_CLIENTS", "false")
            .env("REGISTRY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let child = command.spawn()?;
        let server = Self { child, addr, token };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut connection) = Connection::open(&server.addr, &server.token) {
                if connection
                    .send("GET", "/healthz", None)
                    .is_ok_and(|r| r.status == 200)
                {
                    return Ok(server);
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        status_kib(self.pid(), "VmRSS:")
    }

    /// Peak resident memory since start, in KiB.
    pub fn peak_kib(&self) -> u64 {
        status_kib(self.pid(), "VmHWM:")
    }

    /// Runs `work` while sampling the server's RSS every 5 ms; returns its result and the
    /// highest RSS seen (KiB).
    pub fn sample_rss<T>(&self, work: impl FnOnce() -> T) -> (T, u64) {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(self.rss_kib()));
        let pid = self.pid();
        let sampler = {
            let stop = stop.clone();
            let peak = peak.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(status_kib(pid, "VmRSS:"), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        let result = work();
        stop.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        (result, peak.load(Ordering::Relaxed))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
