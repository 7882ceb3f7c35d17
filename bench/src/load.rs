//! Closed-loop load: `connections` threads, each with its own kept-alive connection, send
//! requests back to back until `total` have been sent. Latency is measured per request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::http::Connection;

/// A request to send.
pub struct Request {
    /// Method.
    pub method: &'static str,
    /// Path and query.
    pub path: String,
    /// JSON body.
    pub body: Option<String>,
}

/// What a load run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Requests sent.
    pub requests: usize,
    /// Responses with an unexpected status.
    pub errors: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Latencies, sorted.
    pub latencies: Vec<Duration>,
}

impl LoadResult {
    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A latency percentile, in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let index = ((self.latencies.len() as f64 - 1.0) * p / 100.0).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)].as_secs_f64() * 1000.0
    }
}

/// Sends `total` requests made by `make(i)` over `connections` connections, each with these
/// header lines (each ending in CRLF; a session cookie, say; usually none); a response whose
/// status is not in `ok` counts as an error.
///
/// # Panics
/// When a connection cannot be opened (the server is gone: the run is meaningless).
pub fn run<F>(
    addr: &str,
    token: &str,
    extra: &str,
    connections: usize,
    total: usize,
    ok: &[u16],
    make: F,
) -> LoadResult
where
    F: Fn(usize) -> Request + Sync,
{
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let (latencies, errors) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..connections)
            .map(|_| {
                scope.spawn(|| {
                    let mut connection = Connection::open(addr, token)
                        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
                        .with_headers(extra);
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= total {
                            return (latencies, errors);
                        }
                        let request = make(i);
                        let sent = Instant::now();
                        let response =
                            connection.send(request.method, &request.path, request.body.as_deref());
                        latencies.push(sent.elapsed());
                        match response {
                            Ok(response) if ok.contains(&response.status) => {}
                            Ok(_) => errors += 1,
                            Err(_) => {
                                errors += 1;
                                if let Ok(fresh) = Connection::open(addr, token) {
                                    connection = fresh.with_headers(extra);
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut errors = 0;
        for worker in workers {
            if let Ok((latencies, worker_errors)) = worker.join() {
                all.extend(latencies);
                errors += worker_errors;
            }
        }
        (all, errors)
    });
    let elapsed = started.elapsed();
    let mut latencies = latencies;
    latencies.sort_unstable();
    LoadResult {
        requests: total,
        errors,
        elapsed,
        latencies,
    }
}
