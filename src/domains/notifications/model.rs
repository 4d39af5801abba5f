//! Notification kinds and the live event that announces a new one.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::ViewerUser;
use crate::platform::events::Envelope;

crate::domains::id_type!(NotificationId, "notification");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotificationKind {
    Assigned,
    /// Taken off a task, as an executor or as its confirmer.
    Unassigned,
    /// An approved task one works on got another deadline.
    DeadlineChanged,
    ReviewRequested,
    ReviewDecided,
    ProgressReported,
    ProgressConfirmed,
    Commented,
    DeadlineApproaching,
    Overdue,
    ApprovalEscalated,
    /// A webhook endpoint of an app one owns was disabled after failing for days.
    WebhookDisabled,
}

impl NotificationKind {
    pub const ALL: [NotificationKind; 12] = [
        Self::Assigned,
        Self::Unassigned,
        Self::DeadlineChanged,
        Self::ReviewRequested,
        Self::ReviewDecided,
        Self::ProgressReported,
        Self::ProgressConfirmed,
        Self::Commented,
        Self::DeadlineApproaching,
        Self::Overdue,
        Self::ApprovalEscalated,
        Self::WebhookDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Assigned => "ASSIGNED",
            Self::Unassigned => "UNASSIGNED",
            Self::DeadlineChanged => "DEADLINE_CHANGED",
            Self::ReviewRequested => "REVIEW_REQUESTED",
            Self::ReviewDecided => "REVIEW_DECIDED",
            Self::ProgressReported => "PROGRESS_REPORTED",
            Self::ProgressConfirmed => "PROGRESS_CONFIRMED",
            Self::Commented => "COMMENTED",
            Self::DeadlineApproaching => "DEADLINE_APPROACHING",
            Self::Overdue => "OVERDUE",
            Self::ApprovalEscalated => "APPROVAL_ESCALATED",
            Self::WebhookDisabled => "WEBHOOK_DISABLED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// What a notification is about, so a client can open it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subject {
    pub kind: &'static str,
    pub id: Uuid,
}

/// Logged with the notification it announces; delivered to its recipient only.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NotificationEvent {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: NotificationKind,
    pub title: String,
    pub body: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<Uuid>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Who may see a notification event: its recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationAudience {
    pub user: Uuid,
}

impl crate::platform::events::Event for NotificationEvent {
    const TOPIC: &'static str = "notifications";

    fn head(&self) -> crate::platform::events::EventHead {
        crate::platform::events::EventHead {
            kind: self.kind.as_str().to_owned(),
            subject_kind: "notification",
            subject_id: Some(self.id),
            actor_id: None,
            audience: serde_json::json!({ "user": self.user_id }),
        }
    }
}

/// An inbox is private: only the recipient sees its events, administrators included.
pub fn event_visible_to(envelope: &Envelope, viewer: &ViewerUser) -> bool {
    envelope.topic == <NotificationEvent as crate::platform::events::Event>::TOPIC
        && viewer.app.is_none()
        && envelope
            .audience::<NotificationAudience>()
            .is_some_and(|audience| audience.user == viewer.id)
}
