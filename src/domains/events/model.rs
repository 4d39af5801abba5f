//! Topics, and which domain decides who may see an event of each.

use crate::auth::{AppScope, ViewerUser};
use crate::domains::{approvals, business, finance, identity, notifications, scheduling, tasks};
use crate::platform::events::Envelope;

/// A domain's stream in the log, by its stored name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    Tasks,
    Approvals,
    Business,
    Finance,
    Identity,
    Jobs,
    Notifications,
}

impl Topic {
    pub const ALL: [Topic; 7] = [
        Topic::Tasks,
        Topic::Approvals,
        Topic::Business,
        Topic::Finance,
        Topic::Identity,
        Topic::Jobs,
        Topic::Notifications,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tasks => "tasks",
            Self::Approvals => "approvals",
            Self::Business => "business",
            Self::Finance => "finance",
            Self::Identity => "identity",
            Self::Jobs => "jobs",
            Self::Notifications => "notifications",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

/// Whether `viewer` may see `envelope`: each topic's own domain decides, by the same rule as
/// its reads. An entry of an unknown topic is seen by nobody.
pub fn visible_to(envelope: &Envelope, viewer: &ViewerUser) -> bool {
    if !topic_open_to(Topic::parse(&envelope.topic), viewer) {
        return false;
    }
    match Topic::parse(&envelope.topic) {
        Some(Topic::Tasks) => tasks::model::event_visible_to(envelope, viewer),
        Some(Topic::Approvals) => approvals::model::event_visible_to(envelope, viewer),
        Some(Topic::Business) => business::model::event_visible_to(envelope, viewer),
        Some(Topic::Finance) => finance::model::event_visible_to(envelope, viewer),
        Some(Topic::Identity) => identity::model::event_visible_to(envelope, viewer),
        Some(Topic::Jobs) => scheduling::model::event_visible_to(envelope, viewer),
        Some(Topic::Notifications) => notifications::model::event_visible_to(envelope, viewer),
        None => false,
    }
}

/// People may see every topic (each domain then decides per event); an app only the topics of
/// its scopes, never identity, notifications or jobs.
fn topic_open_to(topic: Option<Topic>, viewer: &ViewerUser) -> bool {
    if viewer.app.is_none() {
        return true;
    }
    match topic {
        Some(Topic::Tasks) => tasks::model::sees_tasks(viewer),
        Some(Topic::Approvals) => viewer.allows(AppScope::ApprovalsRead),
        Some(Topic::Business) => business::model::sees_transactions(viewer),
        Some(Topic::Finance) => viewer.allows(AppScope::FinanceRead),
        Some(Topic::Identity | Topic::Jobs | Topic::Notifications) | None => false,
    }
}

/// The payload as clients see it: without the audience some events carry inside (who may see
/// an event is the server's business, not part of what happened).
pub fn public_payload(envelope: &Envelope) -> serde_json::Value {
    let mut payload = envelope.payload.clone();
    if let Some(object) = payload.as_object_mut() {
        object.remove("audience");
        object.remove("people");
    }
    payload
}
