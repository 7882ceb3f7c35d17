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
use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Export duration buckets, in seconds: 10 ms to 60 s.
const EXPORT_BUCKETS: [f64; 10] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

/// The route label of requests no route matched.
pub const UNMATCHED: &str = "unmatched";

/// Builds a collector whose options are constants of this module; valid by construction
/// (checked by a test).
fn built<T>(made: prometheus::Result<T>) -> T {
    match made {
        Ok(collector) => collector,
        Err(error) => unreachable!("invalid metric definition: {error}"),
    }
}

fn gauge(name: &str, help: &str) -> IntGauge {
    built(IntGauge::new(name, help))
}

fn counter(name: &str, help: &str) -> IntCounter {
    built(IntCounter::new(name, help))
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    built(IntGaugeVec::new(Opts::new(name, help), labels))
}

/// What a scrape reads from this process and, when it answers in time, the database.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Exports being rendered now.
    pub exports_running: usize,
    /// argon2id jobs waiting for a thread.
    pub hashing_queue: usize,
    /// argon2id jobs dropped because their caller went away (since start).
    pub hashing_skipped: usize,
    /// The database pool.
    pub pool: registry_commands::PoolStats,
    /// This process's search index position.
    pub index_position: i64,
    /// The projector's status (`None`: the database did not answer).
    pub status: Option<registry_projections::ProjectorStatus>,
    /// Projection failures and events read by this process's projector, and whether it leads.
    pub projector: (u64, u64, bool),
    /// Each supervised task: name, running, restarts.
    pub tasks: Vec<(&'static str, bool, u64)>,
}

/// HTTP requests: count, latency, in flight.
struct Http {
    requests: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
}

impl Http {
    fn new() -> Self {
        Self {
            requests: built(IntCounterVec::new(
                Opts::new(
                    "registry_http_requests_total",
                    "HTTP requests by route template, method and status class (abandoned: the \
                     client went away before the answer).",
                ),
                &["route", "method", "status"],
            )),
            duration: built(HistogramVec::new(
                HistogramOpts::new(
                    "registry_http_request_duration_seconds",
                    "Time to answer HTTP requests, by route template and method.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["route", "method"],
            )),
            in_flight: gauge(
                "registry_http_requests_in_flight",
                "HTTP requests being answered now.",
            ),
        }
    }

    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.requests.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.in_flight.clone()),
        ]
    }
}

/// The work queued in this process: exports and argon2id hashing.
struct Work {
    export_duration: HistogramVec,
    exports_running: IntGauge,
    hashing_queue: IntGauge,
    hashing_skipped: IntCounter,
}

impl Work {
    fn new() -> Self {
        Self {
            export_duration: built(HistogramVec::new(
                HistogramOpts::new(
                    "registry_export_duration_seconds",
                    "Time exports took from their turn to the last byte rendered, by format.",
                )
                .buckets(EXPORT_BUCKETS.to_vec()),
                &["format"],
            )),
            exports_running: gauge(
                "registry_exports_running",
                "Exports (xlsx, PDF) being rendered by this process.",
            ),
            hashing_queue: gauge(
                "registry_hashing_queue_depth",
                "argon2id jobs waiting for a hashing thread.",
            ),
            hashing_skipped: counter(
                "registry_hashing_jobs_skipped_total",
                "argon2id jobs dropped because their caller had gone away (since start).",
            ),
        }
    }

    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.export_duration.clone()),
            Box::new(self.exports_running.clone()),
            Box::new(self.hashing_queue.clone()),
            Box::new(self.hashing_skipped.clone()),
        ]
    }

    fn observe(&self, sample: &Sample) {
        self.exports_running.set(count(sample.exports_running));
        self.hashing_queue.set(count(sample.hashing_queue));
        sync_counter(
            &self.hashing_skipped,
            u64::try_from(sample.hashing_skipped).unwrap_or_default(),
        );
    }
}

/// The database: its pool, and whether it answered the scrape.
struct Pool {
    connections: IntGaugeVec,
    max: IntGauge,
    timeouts: IntCounter,
    database_up: IntGauge,
}

impl Pool {
    fn new() -> Self {
        Self {
            connections: gauge_vec(
                "registry_db_pool_connections",
                "Database pool connections, by state (in_use, idle).",
                &["state"],
            ),
            max: gauge(
                "registry_db_pool_max_connections",
                "The most connections the database pool opens; all in use means requests wait.",
            ),
            timeouts: counter(
                "registry_db_pool_acquire_timeouts_total",
                "Requests that waited for a database connection until the pool gave up (503).",
            ),
            database_up: gauge(
                "registry_database_up",
                "1 when the database answered this scrape; 0 leaves the positions out.",
            ),
        }
    }

    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.connections.clone()),
            Box::new(self.max.clone()),
            Box::new(self.timeouts.clone()),
            Box::new(self.database_up.clone()),
        ]
    }

    fn observe(&self, sample: &Sample) {
        let pool = &sample.pool;
        self.connections
            .with_label_values(&["in_use"])
            .set(i64::from(pool.size).saturating_sub(count(pool.idle)));
        self.connections
            .with_label_values(&["idle"])
            .set(count(pool.idle));
        self.max.set(i64::from(pool.max));
        self.database_up.set(i64::from(sample.status.is_some()));
    }
}

/// The read models' positions and the projector.
struct Feed {
    checkpoint: IntGauge,
    head: IntGauge,
    index_position: IntGauge,
    index_lag: IntGauge,
    projector_lag: IntGauge,
    parked: IntGauge,
    projection_failures: IntCounter,
    projector_events: IntCounter,
    leader: IntGauge,
}

/// The metrics read from the database: left out of a scrape it did not answer (stale values
/// would read as current ones).
const FROM_THE_DATABASE: [&str; 5] = [
    "registry_projector_checkpoint_position",
    "registry_feed_head_position",
    "registry_search_index_lag_positions",
    "registry_projector_lag_events",
    "registry_projection_parked_events",
];

impl Feed {
    fn new() -> Self {
        Self {
            checkpoint: gauge(
                "registry_projector_checkpoint_position",
                "Last global feed position the background projector applied to the client \
                 tables (the list, detail and export read models).",
            ),
            head: gauge(
                "registry_feed_head_position",
                "Latest committed position of the global feed.",
            ),
            index_position: gauge(
                "registry_search_index_position",
                "Feed position up to which this process's search index reflects every event.",
            ),
            index_lag: gauge(
                "registry_search_index_lag_positions",
                "Feed positions between this process's search index and the latest committed one.",
            ),
            projector_lag: gauge(
                "registry_projector_lag_events",
                "Feed positions after the projector's checkpoint (events, less rolled-back \
                 inserts).",
            ),
            parked: gauge(
                "registry_projection_parked_events",
                "Events the projection parked because they cannot be applied (see projections \
                 status).",
            ),
            projection_failures: counter(
                "registry_projection_failures_total",
                "Projection attempts that failed in this process (inline or background).",
            ),
            projector_events: counter(
                "registry_projector_events_total",
                "Feed events the background projector of this process read.",
            ),
            leader: gauge(
                "registry_projector_leader",
                "1 when this process holds the projector lease.",
            ),
        }
    }

    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.checkpoint.clone()),
            Box::new(self.head.clone()),
            Box::new(self.index_position.clone()),
            Box::new(self.index_lag.clone()),
            Box::new(self.projector_lag.clone()),
            Box::new(self.parked.clone()),
            Box::new(self.projection_failures.clone()),
            Box::new(self.projector_events.clone()),
            Box::new(self.leader.clone()),
        ]
    }

    fn observe(&self, sample: &Sample) {
        let int = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.index_position.set(sample.index_position);
        if let Some(status) = &sample.status {
            self.checkpoint.set(status.checkpoint);
            self.head.set(status.head);
            self.index_lag
                .set((status.head - sample.index_position).max(0));
            self.projector_lag.set(int(status.lag));
            self.parked.set(int(status.parked));
        }
        let (failures, applied, leader) = sample.projector;
        sync_counter(&self.projection_failures, failures);
        sync_counter(&self.projector_events, applied);
        self.leader.set(i64::from(leader));
    }
}

/// Supervised background tasks.
struct Tasks {
    up: IntGaugeVec,
    restarts: IntCounterVec,
}

impl Tasks {
    fn new() -> Self {
        Self {
            up: gauge_vec(
                "registry_background_task_up",
                "1 while a supervised background task runs.",
                &["task"],
            ),
            restarts: built(IntCounterVec::new(
                Opts::new(
                    "registry_background_task_restarts_total",
                    "Times a background task panicked or ended and was started again.",
                ),
                &["task"],
            )),
        }
    }

    fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![Box::new(self.up.clone()), Box::new(self.restarts.clone())]
    }

    fn observe(&self, sample: &Sample) {
        for (name, running, restarts) in &sample.tasks {
            self.up.with_label_values(&[*name]).set(i64::from(*running));
            sync_counter(&self.restarts.with_label_values(&[*name]), *restarts);
        }
    }
}

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

/// Moves a counter up to `value`, a total read elsewhere (counters only go up).
fn sync_counter(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

fn count(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
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
