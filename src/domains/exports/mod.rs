//! CSV exports of the reports (tasks, journal lines, ledger, trial balance, profit and loss,
//! task and approval statistics, portraits): streamed on the wire, or as a background job into
//! the file store when large.

pub mod jobs;
pub mod model;
pub mod service;
mod summaries;
