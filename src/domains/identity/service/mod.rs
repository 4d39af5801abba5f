//! Identity rules: sessions, the department tree, users, roles and grants.

mod departments;
mod directory;
mod roles;
mod sessions;
mod users;

pub use departments::*;
pub use directory::*;
pub use roles::*;
pub use sessions::*;
pub use users::*;

use chrono::Utc;
use uuid::Uuid;

use super::model::{IdentityEvent, IdentityEventKind};
use crate::platform::events::{self, EventBus};

async fn announce(
    bus: &dyn EventBus,
    kind: IdentityEventKind,
    subject_id: Uuid,
    actor: Option<Uuid>,
) {
    let event = IdentityEvent {
        kind,
        subject_id,
        actor_id: actor,
        at: Utc::now(),
    };
    // The change is committed; a lost live notification must not turn it into an error.
    if let Err(err) = events::publish(bus, &event).await {
        tracing::warn!(error = ?err, "publishing identity event failed");
    }
}
