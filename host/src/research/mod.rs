//! The research workflow: backtests run as jobs for the API, beside the
//! live bots.

pub mod jobs;

pub use jobs::{BacktestJobs, Headline, JobError, JobRecord, JobRequest, JobState};
