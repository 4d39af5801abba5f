//! The business domains, each shaped the same: model, service, graphql, loaders.

/// A newtype over `Uuid` for one kind of id, so a `TaskId` is never taken for a `UserId`.
macro_rules! id_type {
    ($name:ident, $what:literal) => {
        #[derive(
            Clone,
            Copy,
            Debug,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            serde::Serialize,
            serde::Deserialize,
        )]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// Parses a client-supplied id; a malformed one is `BAD_USER_INPUT` naming `field`.
            pub fn parse(field: &str, raw: &str) -> $crate::error::AppResult<Self> {
                uuid::Uuid::parse_str(raw).map(Self).map_err(|_| {
                    $crate::error::AppError::bad_field(field, concat!("not a valid ", $what, " id"))
                })
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}
pub(crate) use id_type;

/// An enum stored as text, with the text of each variant.
macro_rules! string_enum {
    ($name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn parse(raw: &str) -> Option<Self> {
                match raw { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

pub mod approvals;
pub mod business;
pub mod events;
pub mod exports;
pub mod finance;
pub mod identity;
pub mod integrations;
pub mod notifications;
pub mod profiles;
pub mod reports;
pub mod scheduling;
pub mod tasks;
