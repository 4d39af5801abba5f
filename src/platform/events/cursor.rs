//! A position in the event log: the writing transaction and the entry's position in it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Ordered by transaction first, then position. Shown to clients as 32 hex digits, so that
/// the text form sorts the same way and says nothing beyond the order.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Cursor {
    pub tx: i64,
    pub position: i64,
}

impl Cursor {
    pub const START: Cursor = Cursor { tx: 0, position: 0 };

    pub fn new(tx: i64, position: i64) -> Self {
        Self { tx, position }
    }

    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let tx = u64::from_str_radix(&text[..16], 16).ok()?;
        let position = u64::from_str_radix(&text[16..], 16).ok()?;
        Some(Self {
            tx: i64::try_from(tx).ok()?,
            position: i64::try_from(position).ok()?,
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}{:016x}", self.tx, self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_sorts_like_the_cursor() {
        let a = Cursor::new(7, 900);
        let b = Cursor::new(8, 2);
        assert_eq!(Cursor::parse(&a.to_string()), Some(a));
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
        assert_eq!(Cursor::parse("xyz"), None);
        assert_eq!(Cursor::parse(&"f".repeat(32)), None);
    }
}
