//! Scheduling as users see it: the operator's view and controls over queues, jobs and nodes,
//! the live job feed, and the one list of built-in job kinds and their schedules.

pub mod builtin;
pub mod graphql;
pub mod jobs;
pub mod model;
pub mod service;
