//! The gate every export passes: how many run at once and how many wait, and a body that
//! stops (and frees its place) when its reader stalls, after a total limit, or on disconnect.

use std::sync::Arc;

use crate::error::ApiError;

/// How many exports run at once and how many may wait: an export holds a snapshot and a
/// renderer (a PDF of 100,000 rows is seconds of CPU), and any `clients:read` caller may ask
/// for one, so a few parallel requests must not exhaust memory or the database pool. Past the
/// queue, a caller gets 503 `overloaded` with `Retry-After`.
pub struct ExportGate {
    running: Arc<tokio::sync::Semaphore>,
    waiting: tokio::sync::Semaphore,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// A streamed export's reader must take each chunk within this long.
    idle: std::time::Duration,
    /// And the whole within this long.
    total: std::time::Duration,
}

/// Held while an export runs. Owned, so that it goes with the rendering onto its blocking
/// thread: a caller that goes away does not free the place while the renderer still works.
pub struct ExportTurn {
    _running: tokio::sync::OwnedSemaphorePermit,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// Where its duration goes when it ends (the renderer drops it after the last byte).
    duration: Option<(prometheus::Histogram, std::time::Instant)>,
}

impl ExportTurn {
    /// Reports this export's duration to `histogram` when it ends.
    #[must_use]
    pub fn timed(mut self, histogram: prometheus::Histogram) -> Self {
        self.duration = Some((histogram, std::time::Instant::now()));
        self
    }
}

impl Drop for ExportTurn {
    fn drop(&mut self) {
        self.in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some((histogram, started)) = &self.duration {
            histogram.observe(started.elapsed().as_secs_f64());
        }
    }
}

impl ExportGate {
    /// At most `running` exports at once and `waiting` more queued.
    pub fn new(running: usize, waiting: usize) -> Self {
        Self {
            running: Arc::new(tokio::sync::Semaphore::new(running.max(1))),
            waiting: tokio::sync::Semaphore::new(waiting),
            in_flight: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            idle: std::time::Duration::from_secs(30),
            total: std::time::Duration::from_secs(1800),
        }
    }

    /// A streamed export stops (freeing its turn) when its reader takes no chunk for `idle`,
    /// or after `total` in all.
    #[must_use]
    pub fn with_stream_limits(
        mut self,
        idle: std::time::Duration,
        total: std::time::Duration,
    ) -> Self {
        self.idle = idle;
        self.total = total;
        self
    }

    /// A body streamed from a producer task holding `turn`: the producer sends chunks through
    /// the returned [`Paced`], which gives up when the reader stalls or the time is up (the
    /// turn goes with the producer, so it is freed then, and when the reader disconnects).
    pub fn paced_body(&self) -> (Paced, axum::body::Body) {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
        let deadline = tokio::time::Instant::now() + self.total;
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let body_cut = cut.clone();
        // Ends with an error, not a clean end, when the export was cut short (the producer
        // gave up, or the total limit passed): the connection is closed, and the reader sees
        // an incomplete transfer instead of a short file that looks whole.
        let stream = futures_util::stream::unfold(Some(receiver), move |receiver| {
            let cut = body_cut.clone();
            async move {
                let mut receiver = receiver?;
                let too_late = || std::io::Error::other("the export was cut short");
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(item)) => Some((item, Some(receiver))),
                    Ok(None) if cut.load(std::sync::atomic::Ordering::Relaxed) => {
                        Some((Err(too_late()), None))
                    }
                    Ok(None) => None,
                    Err(_) => Some((Err(too_late()), None)),
                }
            }
        });
        (
            Paced {
                sender,
                idle: self.idle,
                deadline,
                cut,
            },
            axum::body::Body::from_stream(stream),
        )
    }

    /// Waits for a turn, or refuses at once when the queue is full.
    ///
    /// # Errors
    /// [`ApiError::Overloaded`] when every place in the queue is taken.
    pub async fn turn(&self) -> Result<ExportTurn, ApiError> {
        let running = match self.running.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _place = self
                    .waiting
                    .try_acquire()
                    .map_err(|_| ApiError::Overloaded)?;
                self.running
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| ApiError::Overloaded)?
            }
        };
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(ExportTurn {
            _running: running,
            in_flight: self.in_flight.clone(),
            duration: None,
        })
    }

    /// Exports running now.
    pub fn running(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The sending side of a streamed export.
pub struct Paced {
    sender: tokio::sync::mpsc::Sender<Result<String, std::io::Error>>,
    idle: std::time::Duration,
    deadline: tokio::time::Instant,
    /// Set when the producer gives up: the body then ends with an error.
    cut: Arc<std::sync::atomic::AtomicBool>,
}

/// Why a streamed export stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    /// The reader went away.
    #[error("the reader went away")]
    Gone,
    /// The reader took nothing for the idle limit, or the total limit passed.
    #[error("the reader was too slow")]
    TooSlow,
}

impl Paced {
    /// Sends `chunk`, waiting at most the idle limit (and never past the total limit) for the
    /// reader to take room.
    ///
    /// # Errors
    /// [`Stopped`]: the producer should stop.
    pub async fn send(&self, chunk: String) -> Result<(), Stopped> {
        let until = (tokio::time::Instant::now() + self.idle).min(self.deadline);
        match tokio::time::timeout_at(until, self.sender.send(Ok(chunk))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stopped::Gone),
            Err(_) => {
                self.cut.store(true, std::sync::atomic::Ordering::Relaxed);
                Err(Stopped::TooSlow)
            }
        }
    }

    /// Ends the body with an error (if the reader still reads), so that it sees a cut
    /// transfer rather than a complete one.
    pub async fn fail(&self, why: &str) {
        self.cut.store(true, std::sync::atomic::Ordering::Relaxed);
        let error = std::io::Error::other(why.to_owned());
        let _ = tokio::time::timeout(self.idle, self.sender.send(Err(error))).await;
    }
}

impl registry_projections::seal::log_export::ChunkSink for Paced {
    type Refused = Stopped;

    fn send(&self, chunk: String) -> impl std::future::Future<Output = Result<(), Stopped>> + Send {
        Paced::send(self, chunk)
    }
}
