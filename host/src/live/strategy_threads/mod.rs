//! [`StrategyThreads`]: the only threads strategy code runs on.
//!
//! A runner is an async task; whenever it needs its strategy (a candle, a
//! fill report, an init, a warm-up) it hands the work to these threads and
//! awaits the answer. So no plugin call ever runs on the async workers that
//! serve the API and the runners' bookkeeping: `/health` and the emergency
//! stop answer whatever the strategies do.
//!
//! Strategy jobs are short (a candle takes microseconds, a swap's new
//! instance and warm-up well under a millisecond), so a few threads get
//! through them fastest: more at once only add context switches (on two
//! cores, eight threads cost a config PUT a fifth more CPU than two). One
//! per core plus one: with one per core, a wave of candles for 1,000 bots
//! got a smaller share of the cores beside the store's writer and the
//! runners, and its p99 with persistence on rose from about 10 to 11-12 ms
//! (measured on two cores). But a job may also spin until its plugin's
//! wall-clock limit, and that must not hold up the bots behind it. So jobs
//! queue on the steady threads, in order; while every steady thread has
//! been running its job for [`STALL_AFTER`] or longer, new jobs queue on
//! the spare threads (the rest of `max_threads`) too, and so does a job
//! that has waited that long: whichever thread reaches a job first runs
//! it. Both are tokio blocking pools of runtimes of their own (nothing
//! else is spawned on them): threads start on demand and idle ones end
//! after a minute.

mod stalls;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use stalls::Stalls;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

/// Strategy jobs queued or running, in every pool of the process.
static JOBS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// How many strategy jobs are queued or running: decisions being made.
/// The server hands this to the store's writer, which lets a quiet
/// candle's bookkeeping wait while there are any (see
/// `Writer::commit_quiet`).
pub fn jobs_in_flight() -> usize {
    JOBS_IN_FLIGHT.load(Ordering::Relaxed)
}

/// One job counted in [`JOBS_IN_FLIGHT`] from its queueing until it has
/// run, or been dropped unrun.
struct InFlight;

impl InFlight {
    fn count() -> Self {
        JOBS_IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        JOBS_IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Idle strategy threads end after this long.
const KEEP_ALIVE: Duration = Duration::from_secs(60);

/// A job running this long no longer counts as a strategy call's work: it
/// holds its thread until its plugin's limits stop it.
pub const STALL_AFTER: Duration = Duration::from_millis(10);

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

/// A job and where its result goes, taken by the first thread to start it
/// (a job moved to the spare threads is queued twice).
type Handed<R> = Arc<Mutex<Option<(Box<dyn FnOnce() -> R + Send>, oneshot::Sender<R>)>>>;

pub struct StrategyThreads {
    /// One thread per core plus one (fewer if `max_threads` is lower).
    steady: Option<Runtime>,
    /// The rest of `max_threads`, for jobs while the steady ones stall.
    spare: Option<Runtime>,
    stalls: Arc<Stalls>,
    max_threads: usize,
    /// Dropped by the next job, or by a job of their own once there are
    /// [`DISPOSE_BATCH`]: no extra thread hop per disposal.
    disposed: Mutex<Vec<Disposed>>,
}

/// A runtime used only for its blocking pool of up to `threads` threads
/// (its one async worker idles).
fn blocking_pool(threads: usize) -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(threads)
        .thread_keep_alive(KEEP_ALIVE)
        .thread_name("stratbox-strategy")
        .build()
}

impl StrategyThreads {
    pub fn new(max_threads: usize) -> std::io::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_steady(max_threads, cores + 1, STALL_AFTER)
    }

    /// `steady` of the `max_threads` take every job unless they stall (all
    /// running a job for `stall_after` or longer).
    fn with_steady(
        max_threads: usize,
        steady: usize,
        stall_after: Duration,
    ) -> std::io::Result<Self> {
        let max_threads = max_threads.max(1);
        let steady = steady.clamp(1, max_threads);
        let spare = match max_threads - steady {
            0 => None,
            spare => Some(blocking_pool(spare)?),
        };
        Ok(Self {
            steady: Some(blocking_pool(steady)?),
            spare,
            stalls: Arc::new(Stalls::new(steady, stall_after)),
            max_threads,
            disposed: Mutex::new(Vec::new()),
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
        let Some(steady) = &self.steady else {
            return Err(ThreadsGone("shut down".into()));
        };
        let disposed = self.take_disposed();
        let in_flight = InFlight::count();
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn FnOnce() -> R + Send> = Box::new(move || {
            let result = job();
            drop(disposed);
            drop(in_flight);
            result
        });
        let handed: Handed<R> = Arc::new(Mutex::new(Some((job, reply))));
        // Always queued on the steady threads; while they stall, on the
        // spare ones too: whichever thread reaches it first runs it.
        start_on(steady, handed.clone(), Some(self.stalls.clone()));
        let mut moved = false;
        tokio::pin!(answer);
        loop {
            if !moved && let Some(spare) = self.spare_while_stalled() {
                start_on(spare, handed.clone(), None);
                moved = true;
            }
            tokio::select! {
                result = &mut answer => {
                    return result.map_err(|_| ThreadsGone("the strategy job panicked".into()));
                }
                () = tokio::time::sleep(self.stalls.after()), if !moved && self.spare.is_some() => {}
            }
        }
    }

    /// The spare threads, while every steady thread is stalled.
    fn spare_while_stalled(&self) -> Option<&Runtime> {
        self.spare.as_ref().filter(|_| self.stalls.all_stalled())
    }

    fn take_disposed(&self) -> Vec<Disposed> {
        std::mem::take(&mut *self.disposed())
    }

    /// What waits to be dropped (a panic elsewhere leaves it usable).
    fn disposed(&self) -> std::sync::MutexGuard<'_, Vec<Disposed>> {
        self.disposed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Queue `handed` on `pool`'s threads; the first thread to reach it runs
/// it (counted in `stalls` on a steady thread).
fn start_on<R: Send + 'static>(pool: &Runtime, handed: Handed<R>, stalls: Option<Arc<Stalls>>) {
    drop(pool.spawn_blocking(move || {
        let taken = handed.lock().unwrap_or_else(PoisonError::into_inner).take();
        let Some((job, reply)) = taken else {
            return; // started by the other pool
        };
        let running = stalls.as_deref().map(Stalls::started);
        let result = job();
        // Off the books before the caller hears back.
        drop(running);
        // The caller may have gone away: nobody to tell.
        let _ = reply.send(result);
    }));
}

impl StrategyThreads {
    /// Drop `value` on a strategy thread, without waiting: a plugin
    /// instance's teardown (handing its memory slot back) is plugin work
    /// too, and off the async workers it does not hold up the API. The next
    /// job drops it after its own work, or a job of its own once
    /// [`DISPOSE_BATCH`] values wait.
    pub fn dispose<T: Send + 'static>(&self, value: T) {
        let Some(steady) = &self.steady else {
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
        // Not behind stalled jobs: the instances hold memory slots that new
        // instances need.
        let pool = self.spare_while_stalled().unwrap_or(steady);
        drop(pool.spawn_blocking(move || drop(batch)));
    }
}

impl Drop for StrategyThreads {
    fn drop(&mut self) {
        // May be dropped inside async code: do not wait for running jobs
        // (each is bounded by its plugin's limits anyway).
        for pool in [self.steady.take(), self.spare.take()]
            .into_iter()
            .flatten()
        {
            pool.shutdown_background();
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

    /// A job on `threads` that holds its thread until told to end (or the
    /// sender is dropped); returned once it runs. It answers whether it
    /// was told.
    async fn held_job(
        threads: &Arc<StrategyThreads>,
    ) -> (
        tokio::task::JoinHandle<Option<()>>,
        std::sync::mpsc::Sender<()>,
    ) {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (running, started) = oneshot::channel();
        let job = tokio::spawn({
            let threads = threads.clone();
            async move {
                threads
                    .run(move || {
                        running.send(()).unwrap();
                        held.recv().ok()
                    })
                    .await
                    .unwrap()
            }
        });
        started.await.unwrap();
        (job, release)
    }

    /// A job counts as a decision in flight while it runs (what the
    /// store's writer asks before it commits a quiet batch).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_job_counts_in_flight() {
        let threads = Arc::new(StrategyThreads::new(2).unwrap());
        let (job, release) = held_job(&threads).await;
        assert!(jobs_in_flight() >= 1, "a running job is not counted");
        release.send(()).unwrap();
        assert_eq!(job.await.unwrap(), Some(()));
    }

    /// Run `jobs` jobs of `hold` each at once; the most that ran at once.
    async fn most_at_once(threads: Arc<StrategyThreads>, jobs: usize, hold: Duration) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut running = Vec::new();
        for _ in 0..jobs {
            let (threads, now, most) = (threads.clone(), now.clone(), most.clone());
            running.push(tokio::spawn(async move {
                threads
                    .run(move || {
                        most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                        std::thread::sleep(hold);
                        now.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                    .unwrap();
            }));
        }
        for job in running {
            job.await.unwrap();
        }
        most.load(Ordering::SeqCst)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn short_jobs_run_on_the_steady_threads_only() {
        let threads = Arc::new(StrategyThreads::with_steady(8, 2, Duration::from_secs(5)).unwrap());
        assert_eq!(most_at_once(threads, 12, Duration::from_millis(5)).await, 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn jobs_go_to_the_spare_threads_while_the_steady_ones_stall() {
        let threads =
            Arc::new(StrategyThreads::with_steady(3, 1, Duration::from_millis(20)).unwrap());
        // A job that holds the one steady thread until told to stop.
        let (stuck, release) = held_job(&threads).await;
        // Queued behind it at once: moved to a spare thread once it counts
        // as stalled.
        let waited = std::time::Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(5), threads.run(|| 6 * 7)).await;
        assert_eq!(answer.expect("moved to a spare thread").unwrap(), 42);
        assert!(
            waited.elapsed() >= Duration::from_millis(20),
            "{:?}",
            waited.elapsed()
        );
        // While it stalls, new jobs go to the spare threads at once, two of
        // them beside each other.
        assert_eq!(
            most_at_once(threads.clone(), 4, Duration::from_millis(50)).await,
            2
        );
        release.send(()).unwrap();
        assert_eq!(stuck.await.unwrap(), Some(()));
        // Free again: nothing counts as stalled, and jobs run.
        assert!(!threads.stalls.all_stalled());
        assert_eq!(threads.run(|| 1).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_not_a_hang() {
        let threads = StrategyThreads::with_steady(2, 1, Duration::from_millis(20)).unwrap();
        let failed = threads.run(|| -> u32 { panic!("boom") }).await;
        assert!(failed.is_err());
        assert_eq!(threads.run(|| 1).await.unwrap(), 1);
        assert!(!threads.stalls.all_stalled());
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
