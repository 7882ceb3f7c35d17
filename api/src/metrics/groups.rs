//! The collectors, by what they watch; each group builds its own and sets its part of a
//! scrape's [`Sample`].

use prometheus::core::Collector;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};

/// Latency buckets, in seconds: 1 ms to 10 s.
pub(super) const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

/// Export duration buckets, in seconds: 10 ms to 60 s.
pub(super) const EXPORT_BUCKETS: [f64; 10] =
    [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

/// Builds a collector whose options are constants of this module; valid by construction
/// (checked by a test).
pub(super) fn built<T>(made: prometheus::Result<T>) -> T {
    match made {
        Ok(collector) => collector,
        Err(error) => unreachable!("invalid metric definition: {error}"),
    }
}

pub(super) fn gauge(name: &str, help: &str) -> IntGauge {
    built(IntGauge::new(name, help))
}

pub(super) fn counter(name: &str, help: &str) -> IntCounter {
    built(IntCounter::new(name, help))
}

pub(super) fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
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

/// Moves a counter up to `value`, a total read elsewhere (counters only go up).
pub(super) fn sync_counter(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

pub(super) fn count(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// HTTP requests: count, latency, in flight.
pub(super) struct Http {
    pub(super) requests: IntCounterVec,
    pub(super) duration: HistogramVec,
    pub(super) in_flight: IntGauge,
}

impl Http {
    pub(super) fn new() -> Self {
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

    pub(super) fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.requests.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.in_flight.clone()),
        ]
    }
}

/// The work queued in this process: exports and argon2id hashing.
pub(super) struct Work {
    pub(super) export_duration: HistogramVec,
    pub(super) exports_running: IntGauge,
    pub(super) hashing_queue: IntGauge,
    pub(super) hashing_skipped: IntCounter,
}

impl Work {
    pub(super) fn new() -> Self {
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

    pub(super) fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.export_duration.clone()),
            Box::new(self.exports_running.clone()),
            Box::new(self.hashing_queue.clone()),
            Box::new(self.hashing_skipped.clone()),
        ]
    }

    pub(super) fn observe(&self, sample: &Sample) {
        self.exports_running.set(count(sample.exports_running));
        self.hashing_queue.set(count(sample.hashing_queue));
        sync_counter(
            &self.hashing_skipped,
            u64::try_from(sample.hashing_skipped).unwrap_or_default(),
        );
    }
}

/// The database: its pool, and whether it answered the scrape.
pub(super) struct Pool {
    pub(super) connections: IntGaugeVec,
    pub(super) max: IntGauge,
    pub(super) timeouts: IntCounter,
    pub(super) database_up: IntGauge,
}

impl Pool {
    pub(super) fn new() -> Self {
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

    pub(super) fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.connections.clone()),
            Box::new(self.max.clone()),
            Box::new(self.timeouts.clone()),
            Box::new(self.database_up.clone()),
        ]
    }

    pub(super) fn observe(&self, sample: &Sample) {
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
pub(super) struct Feed {
    pub(super) checkpoint: IntGauge,
    pub(super) head: IntGauge,
    pub(super) index_position: IntGauge,
    pub(super) index_lag: IntGauge,
    pub(super) projector_lag: IntGauge,
    pub(super) parked: IntGauge,
    pub(super) projection_failures: IntCounter,
    pub(super) projector_events: IntCounter,
    pub(super) leader: IntGauge,
}

/// The metrics read from the database: left out of a scrape it did not answer (stale values
/// would read as current ones).
pub(super) const FROM_THE_DATABASE: [&str; 5] = [
    "registry_projector_checkpoint_position",
    "registry_feed_head_position",
    "registry_search_index_lag_positions",
    "registry_projector_lag_events",
    "registry_projection_parked_events",
];

impl Feed {
    pub(super) fn new() -> Self {
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

    pub(super) fn collectors(&self) -> Vec<Box<dyn Collector>> {
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

    pub(super) fn observe(&self, sample: &Sample) {
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
pub(super) struct Tasks {
    pub(super) up: IntGaugeVec,
    pub(super) restarts: IntCounterVec,
}

impl Tasks {
    pub(super) fn new() -> Self {
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

    pub(super) fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![Box::new(self.up.clone()), Box::new(self.restarts.clone())]
    }

    pub(super) fn observe(&self, sample: &Sample) {
        for (name, running, restarts) in &sample.tasks {
            self.up.with_label_values(&[*name]).set(i64::from(*running));
            sync_counter(&self.restarts.with_label_values(&[*name]), *restarts);
        }
    }
}
