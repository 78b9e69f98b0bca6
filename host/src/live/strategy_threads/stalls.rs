//! [`Stalls`]: which jobs the steady strategy threads are running, and
//! since when, so that [`super::StrategyThreads`] can tell when all of them
//! are held by jobs that run far longer than a strategy call should.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub struct Stalls {
    /// Start times of the running jobs, by slot (`None` is a free slot).
    running: Mutex<Vec<Option<Instant>>>,
    /// The steady threads: all of them held by stalled jobs is a stall.
    threads: usize,
    after: Duration,
}

/// A running job's slot, freed when dropped (also when the job panics).
pub struct Running<'a> {
    stalls: &'a Stalls,
    slot: usize,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.stalls.running().get_mut(self.slot) {
            *slot = None;
        }
    }
}

impl Stalls {
    /// `threads` steady threads, stalled by jobs running `after` or longer.
    pub fn new(threads: usize, after: Duration) -> Self {
        Self {
            running: Mutex::new(Vec::new()),
            threads: threads.max(1),
            after,
        }
    }

    /// How long a job runs before it counts as stalled.
    pub fn after(&self) -> Duration {
        self.after
    }

    /// A job starts on a steady thread.
    pub fn started(&self) -> Running<'_> {
        let mut running = self.running();
        let now = Some(Instant::now());
        let slot = match running.iter().position(Option::is_none) {
            Some(free) => {
                running[free] = now;
                free
            }
            None => {
                running.push(now);
                running.len() - 1
            }
        };
        Running { stalls: self, slot }
    }

    /// Whether every steady thread runs a job started `after` or longer ago.
    pub fn all_stalled(&self) -> bool {
        let stalled = self
            .running()
            .iter()
            .flatten()
            .filter(|started| started.elapsed() >= self.after)
            .count();
        stalled >= self.threads
    }

    fn running(&self) -> MutexGuard<'_, Vec<Option<Instant>>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stalled_once_every_steady_thread_runs_a_long_job() {
        let stalls = Stalls::new(2, Duration::from_millis(20));
        let first = stalls.started();
        std::thread::sleep(Duration::from_millis(25));
        assert!(!stalls.all_stalled(), "one of two threads is stalled");
        let second = stalls.started();
        assert!(!stalls.all_stalled(), "the second job has just started");
        std::thread::sleep(Duration::from_millis(25));
        assert!(stalls.all_stalled());
        drop(first);
        assert!(!stalls.all_stalled(), "a thread is free again");
        // The freed slot is reused.
        let third = stalls.started();
        assert_eq!(third.slot, 0);
        drop((second, third));
        assert!(stalls.running().iter().all(Option::is_none));
    }
}
