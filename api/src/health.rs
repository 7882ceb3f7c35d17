//! Liveness and readiness probes and the Prometheus scrape (`/metrics`), outside `/api` and
//! without authentication.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use prometheus::{IntCounter, TextEncoder};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::state::AppState;
use crate::supervisor::STUCK_AFTER;

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    /// `ok`.
    pub status: &'static str,
}

/// The probe routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// Liveness: the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = HealthResponse)))]
pub async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse { status: "ok" })
}

/// Readiness: the database answers, and this process's background tasks (projector, search
/// index follower) run and make progress.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = HealthResponse),
        (status = 503, description = "Database unreachable, or a background task down or stuck", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<HealthResponse>, ApiError> {
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ApiError::NotReady("shutting down".to_owned()));
    }
    state
        .database
        .ping()
        .await
        .map_err(|e| ApiError::Unavailable(anyhow::Error::new(e)))?;
    let problems = state.supervisor.problems(STUCK_AFTER);
    if !problems.is_empty() {
        return Err(ApiError::NotReady(problems.join("; ")));
    }
    Ok(Json(HealthResponse { status: "ok" }))
}

/// Moves a counter kept elsewhere (an atomic of its owner) up to `value`.
fn sync_counter(counter: &IntCounter, value: u64) {
    let current = counter.get();
    if value > current {
        counter.inc_by(value - current);
    }
}

/// Prometheus metrics (text exposition format). Always answered: when the database does not
/// answer, `registry_database_up` is 0 and the feed positions are left out, but everything
/// this process knows by itself (requests, pool, queue) is there — that is when it matters.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses(
        (status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"),
    ))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    // Bounded: a scrape must not wait out the pool's acquire timeout.
    let status = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.reads.projector_status(),
    )
    .await
    .ok()
    .and_then(Result::ok);
    let m = &state.metrics;
    let int = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
    let count = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
    m.exports_running.set(count(state.exports.running()));
    m.hashing_queue
        .set(count(state.commands.hashing_queue_depth()));
    sync_counter(
        &m.hashing_skipped,
        u64::try_from(state.commands.hashing_jobs_skipped()).unwrap_or_default(),
    );
    let pool = state.database.pool_stats();
    m.pool_connections
        .with_label_values(&["in_use"])
        .set(i64::from(pool.size).saturating_sub(count(pool.idle)));
    m.pool_connections
        .with_label_values(&["idle"])
        .set(count(pool.idle));
    m.pool_max.set(i64::from(pool.max));
    let index_position = state.search.position();
    m.index_position.set(index_position);
    m.database_up.set(i64::from(status.is_some()));
    if let Some(status) = &status {
        m.checkpoint.set(status.checkpoint);
        m.head.set(status.head);
        m.index_lag.set((status.head - index_position).max(0));
        m.projector_lag.set(int(status.lag));
        m.parked.set(int(status.parked));
    }
    sync_counter(&m.projection_failures, state.projector.failures());
    sync_counter(&m.projector_events, state.projector.applied());
    m.leader.set(i64::from(state.projector.is_leader()));
    for task in state.supervisor.tasks() {
        m.task_up
            .with_label_values(&[task.name()])
            .set(i64::from(task.is_running()));
        sync_counter(
            &m.task_restarts.with_label_values(&[task.name()]),
            task.restarts(),
        );
    }
    let mut families = m.registry.gather();
    if status.is_none() {
        // Stale values would read as current ones.
        const FROM_THE_DATABASE: [&str; 5] = [
            "registry_projector_checkpoint_position",
            "registry_feed_head_position",
            "registry_search_index_lag_positions",
            "registry_projector_lag_events",
            "registry_projection_parked_events",
        ];
        families.retain(|family| !FROM_THE_DATABASE.contains(&family.name()));
    }
    let body = TextEncoder::new()
        .encode_to_string(&families)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}
