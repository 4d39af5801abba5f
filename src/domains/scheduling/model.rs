//! Parsed operator input for the scheduler.

use chrono::{DateTime, Utc};

crate::domains::id_type!(JobId, "job");

/// An operator's request to enqueue a kind by hand, checked at the edge.
pub struct OperatorJob {
    pub kind: String,
    pub args: serde_json::Value,
    pub priority: i32,
    pub run_at: Option<DateTime<Utc>>,
    pub unique_key: Option<String>,
    pub affinity_key: Option<String>,
}
