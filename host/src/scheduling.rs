//! How the host's threads ask the operating system to schedule them.
//!
//! - [`throughput_first`]: the whole process runs under Linux's
//!   `SCHED_BATCH`, called once at the start, before any thread exists, so
//!   every thread started later (the async workers, the strategy threads,
//!   the store's writer) inherits it. A thread woken under `SCHED_BATCH`
//!   does not preempt the one running: a runner handing a job to a strategy
//!   thread, or a strategy thread answering it, no longer forces a switch
//!   of threads at every hand-off; the woken thread runs when a core is
//!   free or at the next tick. Measured on two cores (2026-12-07,
//!   alternating runs on one build): a config PUT cost 159-170 µs of CPU
//!   against 194-204 µs, with 9,900-10,600 req/s and a p99 of 9.3-10.5 ms
//!   against 8,500-8,900 req/s and 11.1-11.6 ms; the 1,000-bot live
//!   benchmark's p99 was 8.08-8.35 ms in memory and 8.28-9.68 ms with
//!   persistence against 8.55-9.78 and 8.55-11.28 ms. (On a slower hour a
//!   day earlier the wave's p50 rose instead; see docs/benchmarks.md.)
//!   Nothing waits on a wake-up for long: a tick is a few milliseconds,
//!   and `/health` still answers within 50 ms while every strategy thread
//!   spins (tests/hardening.rs).
//! - [`idle_thread`]: a backtest worker runs only when the cores have
//!   nothing else to do (`SCHED_IDLE`), so that backtests never delay a
//!   bot's decision: a nice value alone was not enough (measured: a p99 of
//!   17 ms with nice 10 against 8-11 ms without jobs).
//!
//! Elsewhere than Linux both leave the default policy.

/// Run this thread, and every thread it starts from now on, under
/// `SCHED_BATCH` (see the module comment). Call it first thing, before any
/// thread is started.
pub fn throughput_first() {
    #[cfg(target_os = "linux")]
    set_policy(libc::SCHED_BATCH, "the process");
}

/// Run the calling thread only when the cores are otherwise idle.
pub fn idle_thread() {
    #[cfg(target_os = "linux")]
    set_policy(libc::SCHED_IDLE, "a backtest worker");
}

/// Set the calling thread's scheduling policy; a refusal is logged, not
/// fatal (the host runs the same, a little slower).
#[cfg(target_os = "linux")]
fn set_policy(policy: libc::c_int, whose: &str) {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param for the call's duration; pid 0
    // names the calling thread.
    let failed = unsafe { libc::sched_setscheduler(0, policy, &param) } != 0;
    if failed {
        let error = std::io::Error::last_os_error();
        tracing::warn!(%error, "cannot set the scheduling policy of {whose}");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn policy_of_this_thread() -> libc::c_int {
        // SAFETY: pid 0 names the calling thread.
        unsafe { libc::sched_getscheduler(0) }
    }

    #[test]
    fn threads_started_after_throughput_first_inherit_batch() {
        // On a thread of its own: the test harness's threads keep theirs.
        let inherited = std::thread::spawn(|| {
            throughput_first();
            let own = policy_of_this_thread();
            let child = std::thread::spawn(policy_of_this_thread).join().unwrap();
            (own, child)
        })
        .join()
        .unwrap();
        assert_eq!(inherited, (libc::SCHED_BATCH, libc::SCHED_BATCH));
    }

    #[test]
    fn an_idle_thread_is_scheduled_idle() {
        let policy = std::thread::spawn(|| {
            idle_thread();
            policy_of_this_thread()
        })
        .join()
        .unwrap();
        assert_eq!(policy, libc::SCHED_IDLE);
    }
}
