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

pub struct StrategyThreads {
    /// Only its blocking pool is used; its one async worker idles.
    runtime: Option<tokio::runtime::Runtime>,
    max_threads: usize,
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
        runtime
            .spawn_blocking(job)
            .await
            .map_err(|error| ThreadsGone(error.to_string()))
    }
}

impl StrategyThreads {
    /// Drop `value` on a strategy thread, without waiting: a plugin
    /// instance's teardown (resetting its memory slot) is plugin work too,
    /// and off the async workers it does not hold up the API.
    pub fn dispose<T: Send + 'static>(&self, value: T) {
        match &self.runtime {
            Some(runtime) => drop(runtime.spawn_blocking(move || drop(value))),
            None => drop(value),
        }
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
        threads.dispose(Noted(noted));
        let name = tokio::task::spawn_blocking(move || dropped_on.recv().unwrap())
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("stratbox-strategy"));
    }
}
