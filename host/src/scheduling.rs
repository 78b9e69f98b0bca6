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
//!   alternating runs on one build), on a medium hour: a config PUT cost
//!   159-170 µs of CPU against 194-204 µs, with 9,900-10,600 req/s and a
//!   p99 of 9.3-10.5 ms against 8,500-8,900 req/s and 11.1-11.6 ms; the
//!   1,000-bot live benchmark's p99 was 8.08-8.35 ms in memory and
//!   8.28-9.68 ms with persistence against 8.55-9.78 and 8.55-11.28 ms.
//!   The trade-off: on a slow hour (the machine's other tenants busy, the
//!   same work taking twice the CPU) the live wave fared worse under it:
//!   p99 16.4-23.5 ms in memory and 21.3-26.1 ms with persistence against
//!   15.2-20.0 and 14.3-20.2 ms (both missed the 10 ms target); strategy
//!   threads alone under it did the same a day earlier. See
//!   docs/benchmarks.md.
//!   Nothing waits on a wake-up for long: a tick is a few milliseconds,
//!   and `/health` still answers within 50 ms while every strategy thread
//!   spins (tests/hardening.rs).
//! - [`idle_thread`]: a backtest worker runs only when the cores have
//!   nothing else to do (`SCHED_IDLE`), so that backtests never delay a
//!   bot's decision: a nice value alone was not enough (measured: a p99 of
//!   17 ms with nice 10 against 8-11 ms without jobs).
//!
//! Elsewhere than Linux both leave the default policy.

/// Set `STRATBOX_SCHED_BATCH=0` to leave the policy the host was started
/// with.
pub const OPT_OUT: &str = "STRATBOX_SCHED_BATCH";

/// Run this thread, and every thread it starts from now on, under
/// `SCHED_BATCH` (see the module comment). Call it first thing, before any
/// thread is started. A policy the operator chose (`chrt`, systemd's
/// `CPUSchedulingPolicy=`) is kept, and so is the default when [`OPT_OUT`]
/// is `0`. An error says why the policy could not be set (the host runs
/// the same, a little slower); log it once logging is set up.
pub fn throughput_first() -> Result<(), String> {
    if std::env::var(OPT_OUT).is_ok_and(|value| value == "0") {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: pid 0 names the calling thread.
        let current = unsafe { libc::sched_getscheduler(0) };
        if current == libc::SCHED_OTHER {
            return set_policy(libc::SCHED_BATCH)
                .map_err(|error| format!("cannot run under SCHED_BATCH: {error}"));
        }
    }
    Ok(())
}

/// Run the calling thread only when the cores are otherwise idle; a
/// refusal is logged, not fatal.
pub fn idle_thread() {
    #[cfg(target_os = "linux")]
    if let Err(error) = set_policy(libc::SCHED_IDLE) {
        tracing::warn!(%error, "a backtest worker cannot lower its priority");
    }
}

/// Set the calling thread's scheduling policy.
#[cfg(target_os = "linux")]
fn set_policy(policy: libc::c_int) -> std::io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param for the call's duration; pid 0
    // names the calling thread.
    if unsafe { libc::sched_setscheduler(0, policy, &param) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
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
            throughput_first().unwrap();
            let own = policy_of_this_thread();
            let child = std::thread::spawn(policy_of_this_thread).join().unwrap();
            (own, child)
        })
        .join()
        .unwrap();
        assert_eq!(inherited, (libc::SCHED_BATCH, libc::SCHED_BATCH));
    }

    #[test]
    fn a_policy_the_operator_chose_is_kept() {
        let kept = std::thread::spawn(|| {
            set_policy(libc::SCHED_IDLE).unwrap();
            throughput_first().unwrap();
            policy_of_this_thread()
        })
        .join()
        .unwrap();
        assert_eq!(kept, libc::SCHED_IDLE);
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
