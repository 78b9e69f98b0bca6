//! The research workflow: backtests run as jobs for the API, beside the
//! live bots, parameter optimisation over every core, and HTML reports.

pub mod jobs;
pub mod optimize;
pub mod report;

pub use jobs::{BacktestJobs, Headline, JobError, JobRecord, JobRequest, JobState};
