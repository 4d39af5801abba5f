//! Parsed operator input for the scheduler, and who may watch its jobs.

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

/// Job changes are the operators' view: administrators and holders of `scheduler.manage`
/// anywhere, as for every scheduler read.
pub fn event_visible_to(
    envelope: &crate::platform::events::Envelope,
    viewer: &crate::auth::ViewerUser,
) -> bool {
    use crate::platform::events::Event;
    envelope.topic == crate::platform::scheduler::JobChanges::TOPIC
        && viewer.has_global(crate::auth::Permission::SchedulerManage)
}
