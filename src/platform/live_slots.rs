//! Room for long-lived connections on this node (GraphQL websockets and the console's live
//! streams alike): a slot per connection under the node's cap, and a count per user under the
//! user's, so one person's tabs cannot take the node's room from everyone else.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

pub struct LiveSlots {
    node: Arc<Semaphore>,
    per_user: Mutex<HashMap<Uuid, usize>>,
    max_per_user: usize,
}

impl LiveSlots {
    pub fn new(max_on_node: usize, max_per_user: usize) -> Self {
        Self {
            node: Arc::new(Semaphore::new(max_on_node)),
            per_user: Mutex::new(HashMap::new()),
            max_per_user,
        }
    }

    /// One more connection on this node, or `None` when it holds as many as it allows.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.node.clone().try_acquire_owned().ok()
    }

    /// One more connection of `user`, or `None` when the user already has as many as allowed.
    pub fn admit_user(self: &Arc<Self>, user: Uuid) -> Option<UserSlot> {
        let mut counts = self.per_user.lock();
        let count = counts.entry(user).or_insert(0);
        if *count >= self.max_per_user {
            return None;
        }
        *count += 1;
        Some(UserSlot {
            slots: self.clone(),
            user,
        })
    }
}

/// Held while a user's connection is open; freed however it ends.
pub struct UserSlot {
    slots: Arc<LiveSlots>,
    user: Uuid,
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.per_user.lock();
        if let Some(count) = counts.get_mut(&self.user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_held_to_their_share_and_gets_it_back() {
        let slots = Arc::new(LiveSlots::new(10, 2));
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let first = slots.admit_user(alice);
        let second = slots.admit_user(alice);
        assert!(first.is_some() && second.is_some());
        assert!(slots.admit_user(alice).is_none(), "a third is refused");
        assert!(slots.admit_user(bob).is_some(), "others are not held back");
        drop(first);
        assert!(
            slots.admit_user(alice).is_some(),
            "a closed one frees its slot"
        );
    }

    #[test]
    fn the_node_is_held_to_its_cap() {
        let slots = LiveSlots::new(1, 5);
        let held = slots.admit();
        assert!(held.is_some());
        assert!(slots.admit().is_none());
        drop(held);
        assert!(slots.admit().is_some());
    }
}
