//! Tasks: configurable categories, main tasks and subtasks, review through the approval engine,
//! progress, merit, comments and the activity log.

pub mod graphql;
pub mod jobs;
pub mod loaders;
pub mod model;
pub mod service;
