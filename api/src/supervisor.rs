//! The background tasks a process must keep running (the projector, the search index's feed
//! follower): each runs under a supervisor that logs and counts a task that panics or ends,
//! and starts it again after a pause; `/readyz` reports a task that is down or has made no
//! progress for too long.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Pause before a task that ended is started again.
pub const RESTART_PAUSE: Duration = Duration::from_secs(1);

/// A task with no progress for this long is reported stuck. Every supervised loop makes a
/// step at least every few seconds (they wait on a 1 s timer when idle).
pub const STUCK_AFTER: Duration = Duration::from_secs(30);

/// How one supervised task is doing.
pub struct TaskHealth {
    name: &'static str,
    running: AtomicBool,
    restarts: AtomicU64,
    progress: Box<dyn Fn() -> u64 + Send + Sync>,
    /// The progress count last seen, and when it last changed.
    last_change: Mutex<(u64, Instant)>,
}

impl TaskHealth {
    /// The task's name (a metric label).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Whether it runs now.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Times it ended (panicked or returned) and was started again.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// How long since its progress count last moved (as of this call).
    fn idle_for(&self, now: Instant) -> Duration {
        let current = (self.progress)();
        let Ok(mut last) = self.last_change.lock() else {
            return Duration::ZERO;
        };
        if last.0 != current {
            *last = (current, now);
        }
        now.saturating_duration_since(last.1)
    }
}

/// Aborts the task it holds when dropped: when the supervisor itself is stopped (shutdown),
/// its task stops too.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The supervised tasks of this process.
#[derive(Default)]
pub struct Supervisor {
    tasks: Mutex<Vec<Arc<TaskHealth>>>,
    /// Set when the process shuts down: a task that ends is not started again.
    shutting_down: Arc<AtomicBool>,
}

impl Supervisor {
    /// An empty supervisor (no task: always ready).
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `make()` as a task, and again (after [`RESTART_PAUSE`]) whenever it panics or
    /// returns, until the returned handle is aborted. `progress` is a count the task moves at
    /// every step; it tells a live task from a stuck one.
    pub fn supervise<F, Fut>(
        &self,
        name: &'static str,
        progress: impl Fn() -> u64 + Send + Sync + 'static,
        make: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let health = Arc::new(TaskHealth {
            name,
            running: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
            last_change: Mutex::new((progress(), Instant::now())),
            progress: Box::new(progress),
        });
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(health.clone());
        }
        let shutting_down = self.shutting_down.clone();
        tokio::spawn(async move {
            loop {
                health.running.store(true, Ordering::Relaxed);
                let task = tokio::spawn(make());
                let _stop_with_me = AbortOnDrop(task.abort_handle());
                let ended = task.await;
                health.running.store(false, Ordering::Relaxed);
                if shutting_down.load(Ordering::Relaxed)
                    && !ended.as_ref().is_err_and(|e| e.is_panic())
                {
                    tracing::info!(task = name, "background task stopped");
                    return;
                }
                match ended {
                    Ok(()) => tracing::error!(task = name, "background task ended; restarting"),
                    Err(error) if error.is_panic() => {
                        tracing::error!(task = name, %error, "background task panicked; restarting");
                    }
                    Err(_) => return,
                }
                health.restarts.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(RESTART_PAUSE).await;
            }
        })
    }

    /// The process is shutting down: tasks that end from now on are not started again.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Every supervised task.
    pub fn tasks(&self) -> Vec<Arc<TaskHealth>> {
        self.tasks.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// What keeps this process from being ready: tasks that are down, or have made no
    /// progress for `stuck_after`. Empty when all is well.
    pub fn problems(&self, stuck_after: Duration) -> Vec<String> {
        let now = Instant::now();
        self.tasks()
            .iter()
            .filter_map(|task| {
                if !task.is_running() {
                    Some(format!("{} is not running", task.name))
                } else {
                    let idle = task.idle_for(now);
                    (idle >= stuck_after)
                        .then(|| format!("{} made no progress for {} s", task.name, idle.as_secs()))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_or_ends_is_counted_and_started_again() {
        let supervisor = Supervisor::new();
        let starts = Arc::new(AtomicU64::new(0));
        let counted = starts.clone();
        let handle = supervisor.supervise(
            "flaky",
            || 0,
            move || {
                let starts = counted.clone();
                async move {
                    match starts.fetch_add(1, Ordering::SeqCst) {
                        0 => panic!("first run panics"),
                        1 => {}
                        _ => std::future::pending::<()>().await,
                    }
                }
            },
        );
        while starts.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let task = &supervisor.tasks()[0];
        assert_eq!(task.restarts(), 2, "one panic, one return");
        assert!(task.is_running());
        handle.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_without_progress_is_reported_stuck() {
        let supervisor = Supervisor::new();
        let steps = Arc::new(AtomicU64::new(0));
        let read = steps.clone();
        let handle = supervisor.supervise(
            "stalled",
            move || read.load(Ordering::SeqCst),
            std::future::pending::<()>,
        );
        tokio::task::yield_now().await;
        assert!(supervisor.problems(STUCK_AFTER).is_empty());
        tokio::time::advance(STUCK_AFTER + Duration::from_secs(1)).await;
        assert_eq!(
            supervisor.problems(STUCK_AFTER),
            ["stalled made no progress for 31 s"]
        );
        steps.fetch_add(1, Ordering::SeqCst);
        assert!(supervisor.problems(STUCK_AFTER).is_empty());
        handle.abort();
    }
}
