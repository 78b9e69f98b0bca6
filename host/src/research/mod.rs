//! The research workflow: backtests run as jobs for the API, beside the
//! live bots, and parameter optimisation over every core.

pub mod jobs;
pub mod optimize;

pub use jobs::{BacktestJobs, Headline, JobError, JobRecord, JobRequest, JobState};
