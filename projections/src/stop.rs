//! Stopping a background loop (the projector, the search index's feed follower) at its next
//! boundary: a batch is never cut in the middle, and a pause between batches ends at once.

use std::time::Duration;

use tokio::sync::watch;

/// Asks the loops watching it to stop.
#[derive(Debug)]
pub struct StopSignal(watch::Sender<bool>);

impl Default for StopSignal {
    fn default() -> Self {
        Self(watch::channel(false).0)
    }
}

impl StopSignal {
    /// Asks every watcher to stop (for good).
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    /// A watcher, for one loop.
    pub fn watch(&self) -> StopWatch {
        StopWatch(self.0.subscribe())
    }
}

/// What a loop looks at between its steps.
#[derive(Debug)]
pub struct StopWatch(watch::Receiver<bool>);

impl StopWatch {
    /// Whether the loop was asked to stop.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until the loop is asked to stop.
    pub async fn stopped(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Sleeps for `pause`, less if asked to stop meanwhile; whether it was.
    pub async fn pause(&mut self, pause: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = self.stopped() => {}
        }
        self.is_stopped()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_pause_ends_when_stopped_and_a_late_watcher_sees_it() {
        let signal = StopSignal::default();
        let mut watch = signal.watch();
        assert!(!watch.is_stopped());
        let waiting = tokio::spawn(async move { watch.pause(Duration::from_secs(3600)).await });
        tokio::task::yield_now().await;
        signal.stop();
        assert!(waiting.await.unwrap_or(false));
        let mut late = signal.watch();
        assert!(late.is_stopped());
        assert!(late.pause(Duration::from_secs(3600)).await);
    }
}
