//! [`StrategyThreads`]: the only threads strategy code runs on.
//!
//! A runner is an async task; whenever it needs its strategy (a candle, a
//! fill report, an init, a warm-up) it hands the work to these threads and
//! awaits the answer. So no plugin call ever runs on the async workers that
//! serve the API and the runners' bookkeeping: `/health` and the emergency
//! stop answer whatever the strategies do, and a strategy that spins until
//! its wall-clock limit holds one of these threads, not a worker every other
//! bot needs.
//!
//! The threads are tokio's blocking pool of a runtime of their own (nothing
//! else is spawned on it): they start on demand up to `max_threads`, so a
//! few spinning strategies do not hold up the rest, and idle ones end after
//! a minute. Jobs beyond `max_threads` wait in order.

use std::time::Duration;

/// Idle strategy threads end after this long.
const KEEP_ALIVE: Duration = Duration::from_secs(60);

/// The default ceiling: enough that a handful of strategies spinning at
/// their limits leave threads for the others, few enough that a burst of
/// candles for 1,000 bots does not start 1,000 threads.
pub fn default_max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    (4 * cores).max(8)
}

/// The strategy threads went away (the host is shutting down) or a job
/// panicked.
#[derive(Debug, Clone, thiserror::Error)]
#[error("strategy thread failed: {0}")]
pub struct ThreadsGone(String);

/// Disposed values gathered before a job of their own drops them.
const DISPOSE_BATCH: usize = 8;

/// Something handed to [`StrategyThreads::dispose`], waiting to be dropped.
type Disposed = Box<dyn Send>;

pub struct StrategyThreads {
    /// Only its blocking pool is used; its one async worker idles.
    runtime: Option<tokio::runtime::Runtime>,
    max_threads: usize,
    /// Dropped by the next job, or by a job of their own once there are
    /// [`DISPOSE_BATCH`]: no extra thread hop per disposal.
    disposed: std::sync::Mutex<Vec<Disposed>>,
}

impl StrategyThreads {
    pub fn new(max_threads: usize) -> std::io::Result<Self> {
        let max_threads = max_threads.max(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(max_threads)
            .thread_keep_alive(KEEP_ALIVE)
            .thread_name("stratbox-strategy")
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
            max_threads,
            disposed: std::sync::Mutex::new(Vec::new()),
        })
    }

    pub fn max_threads(&self) -> usize {
        self.max_threads
    }

    /// Run `job` on a strategy thread; its result.
    pub async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce() -> R + Send + 'static,
    ) -> Result<R, ThreadsGone> {
        let Some(runtime) = &self.runtime else {
            return Err(ThreadsGone("shut down".into()));
        };
        let disposed = self.take_disposed();
        runtime
            .spawn_blocking(move || {
                let result = job();
                drop(disposed);
                result
            })
            .await
            .map_err(|error| ThreadsGone(error.to_string()))
    }

    fn take_disposed(&self) -> Vec<Disposed> {
        std::mem::take(&mut *self.disposed())
    }

    /// What waits to be dropped (a panic elsewhere leaves it usable).
    fn disposed(&self) -> std::sync::MutexGuard<'_, Vec<Disposed>> {
        self.disposed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl StrategyThreads {
    /// Drop `value` on a strategy thread, without waiting: a plugin
    /// instance's teardown (handing its memory slot back) is plugin work
    /// too, and off the async workers it does not hold up the API. The next
    /// job drops it after its own work, or a job of its own once
    /// [`DISPOSE_BATCH`] values wait.
    pub fn dispose<T: Send + 'static>(&self, value: T) {
        let Some(runtime) = &self.runtime else {
            return drop(value);
        };
        let batch = {
            let mut disposed = self.disposed();
            disposed.push(Box::new(value));
            if disposed.len() < DISPOSE_BATCH {
                return;
            }
            std::mem::take(&mut *disposed)
        };
        drop(runtime.spawn_blocking(move || drop(batch)));
    }
}

impl Drop for StrategyThreads {
    fn drop(&mut self) {
        // May be dropped inside async code: do not wait for running jobs
        // (each is bounded by its plugin's limits anyway).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_off_the_async_workers() {
        let threads = StrategyThreads::new(2).unwrap();
        let name = threads
            .run(|| std::thread::current().name().map(str::to_string))
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("stratbox-strategy"));
        assert_eq!(threads.run(|| 6 * 7).await.unwrap(), 42);
    }

    #[tokio::test]
    async fn disposed_values_are_dropped_on_a_strategy_thread() {
        struct Noted(std::sync::mpsc::Sender<Option<String>>);
        impl Drop for Noted {
            fn drop(&mut self) {
                let _ = self
                    .0
                    .send(std::thread::current().name().map(str::to_string));
            }
        }
        let threads = StrategyThreads::new(2).unwrap();
        let (noted, dropped_on) = std::sync::mpsc::channel();
        // The next job drops what waits.
        threads.dispose(Noted(noted.clone()));
        assert!(dropped_on.try_recv().is_err(), "kept until a job runs");
        threads.run(|| ()).await.unwrap();
        assert_eq!(
            dropped_on.try_recv().unwrap().as_deref(),
            Some("stratbox-strategy")
        );
        // With no job coming, a full batch gets a job of its own.
        for _ in 0..DISPOSE_BATCH {
            threads.dispose(Noted(noted.clone()));
        }
        let names = tokio::task::spawn_blocking(move || {
            (0..DISPOSE_BATCH)
                .map(|_| dropped_on.recv().unwrap())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap();
        assert!(
            names
                .iter()
                .all(|name| name.as_deref() == Some("stratbox-strategy"))
        );
    }
}
