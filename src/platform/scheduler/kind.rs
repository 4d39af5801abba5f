//! A job kind declared once: its typed arguments carry its name, queue, retry policy and
//! timeout, so registration, enqueueing and cron schedules cannot disagree about them.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::handler::KindSpec;

/// The queue of periodic scans and housekeeping, shared by the built-in kinds of every domain.
pub const MAINTENANCE_QUEUE: &str = "maintenance";

/// Implemented by a kind's arguments type: the one place its kind, queue, attempts and timeout
/// are stated.
pub trait JobKind: Serialize + DeserializeOwned {
    const KIND: &'static str;
    const QUEUE: &'static str;
    const MAX_ATTEMPTS: i32;
    /// An attempt that runs longer fails (and retries).
    const TIMEOUT: Duration;
    const BACKOFF_BASE: Duration = Duration::from_secs(1);
    const DESCRIPTION: &'static str;

    /// The JSON Schema an operator's hand-enqueued arguments must fit. `None` keeps the kind
    /// out of operators' hands: only the code that owns its cause enqueues it.
    fn operator_schema() -> Option<serde_json::Value> {
        None
    }

    fn spec() -> KindSpec {
        let schema = Self::operator_schema();
        KindSpec {
            kind: Self::KIND.to_owned(),
            queue: Self::QUEUE.to_owned(),
            max_attempts: Self::MAX_ATTEMPTS,
            timeout: Self::TIMEOUT,
            backoff_base: Self::BACKOFF_BASE,
            operator_enqueue: schema.is_some(),
            args_schema: schema,
            description: Self::DESCRIPTION.to_owned(),
        }
    }
}

/// The operator schema of kinds that take no arguments: only `{}` fits.
pub fn no_arguments() -> serde_json::Value {
    serde_json::json!({ "type": "object", "maxProperties": 0 })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::platform::scheduler::NewJob;

    #[derive(Serialize, Deserialize)]
    struct Ping {
        n: i32,
    }

    impl JobKind for Ping {
        const KIND: &'static str = "test.ping";
        const QUEUE: &'static str = "pings";
        const MAX_ATTEMPTS: i32 = 7;
        const TIMEOUT: Duration = Duration::from_secs(9);
        const DESCRIPTION: &'static str = "Pings";
    }

    #[test]
    fn registration_and_enqueue_take_the_kind_from_one_declaration() -> anyhow::Result<()> {
        let spec = Ping::spec();
        let job = NewJob::of(&Ping { n: 3 })?;
        assert_eq!(
            (spec.kind.as_str(), job.kind.as_str()),
            ("test.ping", "test.ping")
        );
        assert_eq!(
            (spec.queue.as_str(), job.queue.as_str()),
            ("pings", "pings")
        );
        assert_eq!((spec.max_attempts, job.max_attempts), (7, 7));
        assert_eq!(spec.timeout, Duration::from_secs(9));
        assert!(!spec.operator_enqueue && spec.args_schema.is_none());
        assert_eq!(job.args, serde_json::json!({ "n": 3 }));
        let again = spec.job(job.args.clone());
        assert_eq!(
            (again.queue, again.max_attempts),
            (job.queue, job.max_attempts)
        );
        Ok(())
    }
}
