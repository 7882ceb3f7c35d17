//! Prometheus metrics (`/metrics`), through the `prometheus` crate: one registry per app.
//!
//! - HTTP: requests by route template (axum's [`MatchedPath`]: never the raw path, a client id
//!   is not a label; `unmatched` for anything no route takes), method (the standard ones, or
//!   `other`) and status class (`2xx` … `5xx`, or `abandoned` when the client went away
//!   before the answer); a latency histogram per route and method from 1 ms to 10 s;
//!   requests in flight.
//! - Commands, secrets, verifications, hashing waits: the write side's collectors
//!   ([`registry_commands::metrics`]), and the hashing queue's depth.
//! - Exports running and their duration by format.
//! - The database pool (connections in use, idle, the most allowed, and acquisitions that
//!   timed out), and the positions of the read models and of this process's search index,
//!   with their lag behind the feed head (the reliability contract's figures).
//! - Build information and the process start time.
//!
//! Every label value comes from a closed set, so the number of series is bounded whatever
//! clients send. Values read from elsewhere (positions, pool, queue) are sampled at scrape
//! time: a scrape takes no lock a writer waits for (two index lookups).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus::core::Collector;
use prometheus::{Gauge, Histogram, Registry, TextEncoder};

/// The route label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

mod groups;

pub use groups::Sample;
use groups::{built, gauge_vec, Feed, Http, Pool, Tasks, Work, FROM_THE_DATABASE};

/// The metrics of one app.
pub struct Metrics {
    registry: Registry,
    http: Http,
    work: Work,
    pool: Pool,
    feed: Feed,
    tasks: Tasks,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// The metrics of an app on `backend` (`postgres` or `sqlite`), with the write side's
    /// collectors registered beside them.
    pub fn new(backend: &str, write_side: Vec<Box<dyn Collector>>) -> Self {
        let metrics = Self {
            registry: Registry::new(),
            http: Http::new(),
            work: Work::new(),
            pool: Pool::new(),
            feed: Feed::new(),
            tasks: Tasks::new(),
        };
        let build_info = gauge_vec(
            "registry_build_info",
            "Always 1: the version of this build and the event store backend it runs on.",
            &["version", "backend"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), backend])
            .set(1);
        let start_time = built(Gauge::new(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
        ));
        start_time.set(process_started());
        let process: Vec<Box<dyn Collector>> = vec![Box::new(build_info), Box::new(start_time)];
        let own = [
            metrics.http.collectors(),
            metrics.work.collectors(),
            metrics.pool.collectors(),
            metrics.feed.collectors(),
            metrics.tasks.collectors(),
            process,
        ];
        for collector in own.into_iter().flatten().chain(write_side) {
            if let Err(error) = metrics.registry.register(collector) {
                tracing::error!(%error, "a metric could not be registered");
            }
        }
        metrics
    }

    /// The histogram an export of `format` reports its duration to.
    pub fn export_duration(&self, format: &str) -> Histogram {
        self.work.export_duration.with_label_values(&[format])
    }

    /// Counts a request that gave up waiting for a database connection.
    pub fn pool_timed_out(&self) {
        self.pool.timeouts.inc();
    }

    /// Every metric in the Prometheus text format, with what `sample` read set first.
    ///
    /// # Errors
    /// Encoding failures (none are expected).
    pub fn scrape(&self, sample: &Sample) -> Result<String, prometheus::Error> {
        self.work.observe(sample);
        self.pool.observe(sample);
        self.feed.observe(sample);
        self.tasks.observe(sample);
        let mut families = self.registry.gather();
        if sample.status.is_none() {
            families.retain(|family| !FROM_THE_DATABASE.contains(&family.name()));
        }
        TextEncoder::new().encode_to_string(&families)
    }
}

/// When this process started (the first app it built), in seconds since the Unix epoch.
fn process_started() -> f64 {
    static STARTED: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *STARTED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    })
}

/// The label of a method: the standard ones by name, anything else `other` (a method is any
/// token a client likes).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Counts and logs a request when its answer is ready, or as `abandoned` when it is dropped
/// first (the client went away).
struct InFlight {
    metrics: Arc<Metrics>,
    route: String,
    method: &'static str,
    started: Instant,
    done: bool,
    log: crate::logging::RequestLog,
}

impl InFlight {
    fn finish(&mut self, status: Option<u16>) {
        self.done = true;
        let elapsed = self.started.elapsed();
        let labels = [self.route.as_str(), self.method];
        self.metrics
            .http
            .duration
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
        let class = status.map_or("abandoned", status_class);
        self.metrics
            .http
            .requests
            .with_label_values(&[self.route.as_str(), self.method, class])
            .inc();
        self.log.answered(&self.route, status, elapsed);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.http.in_flight.dec();
        if !self.done {
            self.finish(None);
        }
    }
}

/// Middleware (added with `Router::layer`, so it runs once a route matched): counts, times
/// and logs every request by its route template.
pub async fn track(
    State(metrics): State<Arc<Metrics>>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    metrics.http.in_flight.inc();
    let route = matched.map_or_else(|| UNMATCHED.to_owned(), |m| m.as_str().to_owned());
    let log = crate::logging::RequestLog::start(&mut request, &route);
    let mut in_flight = InFlight {
        method: method_label(request.method()),
        started: Instant::now(),
        done: false,
        metrics,
        route,
        log,
    };
    let response = next.run(request).await;
    if (response.extensions().get::<crate::error::PoolTimedOut>()).is_some() {
        in_flight.metrics.pool_timed_out();
    }
    in_flight.finish(Some(response.status().as_u16()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_definition_is_valid_and_registers_once() {
        let metrics = Metrics::new(
            "sqlite",
            registry_commands::metrics::CommandMetrics::new(
                registry_commands::secrets::hash_wait_histogram(),
            )
            .collectors(),
        );
        metrics
            .http
            .requests
            .with_label_values(&["/healthz", "GET", "2xx"])
            .inc();
        let names: Vec<String> = metrics
            .registry
            .gather()
            .iter()
            .map(|family| family.name().to_owned())
            .collect();
        for name in [
            "registry_http_requests_total",
            "registry_build_info",
            "process_start_time_seconds",
            "registry_secrets_issued_total",
            "registry_hashing_wait_seconds",
        ] {
            assert!(names.contains(&name.to_owned()), "{name} in {names:?}");
        }
    }

    #[test]
    fn labels_come_from_closed_sets() {
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").unwrap_or_default()),
            "other"
        );
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(503), "5xx");
    }
}
