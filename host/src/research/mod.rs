//! The research workflow: backtests run as jobs for the API, beside the
//! live bots, parameter optimisation over every core (grid, random, or a
//! model of the runs so far), walk-forward
//! analysis, and HTML reports.

pub mod jobs;
pub mod optimization_job;
pub mod optimize;
pub mod report;
pub mod tpe;
pub mod walk_forward;

pub use jobs::{
    BacktestJobs, Headline, JobError, JobRecord, JobRequest, JobState, OptimizationSpec,
    SamplerSpec, WalkForwardSpec,
};
