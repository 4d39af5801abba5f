//! Webhooks, pure: endpoint filters, the message a log entry becomes, the retry schedule and
//! what an answer means.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domains::events::model::{public_payload, Topic};
use crate::error::{AppError, AppResult};
use crate::platform::events::{Cursor, Envelope};

crate::domains::id_type!(EndpointId, "webhook endpoint");
crate::domains::id_type!(DeliveryId, "webhook delivery");

string_enum!(DeliveryStatus {
    Pending => "PENDING",
    Delivered => "DELIVERED",
    Failed => "FAILED",
});

/// One attempt may take this long (Svix's limit too).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// Most event kinds or transaction types one endpoint may list.
const MAX_FILTERS: usize = 100;
const MAX_DESCRIPTION: usize = 500;
/// Most log entries one `replayWebhook` call walks through.
pub const MAX_REPLAY_EVENTS: usize = 10_000;

/// The event type of a forwarded business transaction.
pub const FORWARDED_TYPE: &str = "business.FORWARDED";

/// What an endpoint wants, parsed once at the edge.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// Empty: every topic the app may see.
    pub topics: Vec<Topic>,
    /// Empty: every kind.
    pub kinds: Vec<String>,
    /// Codes of `APP_FORWARD` types whose transactions come here.
    pub transaction_types: Vec<String>,
}

impl Filters {
    pub fn parse(
        topics: Vec<Topic>,
        kinds: Vec<String>,
        transaction_types: Vec<String>,
    ) -> AppResult<Self> {
        let kinds = words("kinds", kinds, |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
        })?;
        let transaction_types = words("transactionTypes", transaction_types, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
        })?;
        let mut topics = topics;
        topics.sort_by_key(|t| t.as_str());
        topics.dedup();
        Ok(Self {
            topics,
            kinds,
            transaction_types,
        })
    }

    /// Reads the stored JSON arrays back; unknown entries are dropped (an old topic name must
    /// not widen the filter to everything, so an endpoint whose topics all vanished gets none).
    pub fn stored(
        topics: &serde_json::Value,
        kinds: &serde_json::Value,
        types: &serde_json::Value,
    ) -> Self {
        let strings = |v: &serde_json::Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let raw_topics = strings(topics);
        let parsed: Vec<Topic> = raw_topics.iter().filter_map(|t| Topic::parse(t)).collect();
        // Nothing known is left: an impossible kind makes it match nothing rather than all.
        let kinds = if parsed.is_empty() && !raw_topics.is_empty() {
            vec![String::new()]
        } else {
            strings(kinds)
        };
        Self {
            topics: parsed,
            kinds,
            transaction_types: strings(types),
        }
    }

    pub fn topics_json(&self) -> serde_json::Value {
        serde_json::json!(self.topics.iter().map(|t| t.as_str()).collect::<Vec<_>>())
    }

    pub fn kinds_json(&self) -> serde_json::Value {
        serde_json::json!(self.kinds)
    }

    pub fn transaction_types_json(&self) -> serde_json::Value {
        serde_json::json!(self.transaction_types)
    }

    /// Whether a log entry of `topic` and `kind` is one the endpoint asked for (the app's
    /// visibility is checked apart).
    pub fn wants(&self, topic: &str, kind: &str) -> bool {
        let topic_ok = self.topics.is_empty() || self.topics.iter().any(|t| t.as_str() == topic);
        let kind_ok = self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind);
        topic_ok && kind_ok
    }
}

fn words(field: &str, raw: Vec<String>, allowed: impl Fn(char) -> bool) -> AppResult<Vec<String>> {
    if raw.len() > MAX_FILTERS {
        return Err(AppError::bad_field(
            field,
            format!("at most {MAX_FILTERS} entries"),
        ));
    }
    let mut out = Vec::with_capacity(raw.len());
    for word in raw {
        let word = word.trim().to_owned();
        if word.is_empty() || word.len() > 64 || !word.chars().all(&allowed) {
            return Err(AppError::bad_field(
                field,
                format!("{word:?} is not a valid entry"),
            ));
        }
        if !out.contains(&word) {
            out.push(word);
        }
    }
    Ok(out)
}

pub fn parse_description(raw: Option<String>) -> AppResult<String> {
    let text = raw.unwrap_or_default().trim().to_owned();
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(AppError::bad_field(
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(text)
}

/// The `webhook-id` of a log entry: stable, so every retry and every replay carries it.
pub fn message_id(cursor: Cursor) -> String {
    format!("msg_{cursor}")
}

/// The `webhook-id` of a forwarded business transaction.
pub fn transaction_message_id(transaction_id: uuid::Uuid) -> String {
    format!("msg_tx_{}", transaction_id.simple())
}

pub fn event_type(envelope: &Envelope) -> String {
    format!("{}.{}", envelope.topic, envelope.kind)
}

/// The body a log entry is delivered with: fixed when the delivery is created, the same bytes
/// on every attempt. `data` is what the `events` query shows as `payload`, plus the subject
/// and actor.
pub fn event_body(envelope: &Envelope) -> String {
    let mut data = match public_payload(envelope) {
        serde_json::Value::Object(map) => map,
        other => {
            let mut map = serde_json::Map::new();
            map.insert("value".into(), other);
            map
        }
    };
    data.insert("subjectKind".into(), envelope.subject_kind.clone().into());
    data.insert(
        "subjectId".into(),
        envelope.subject_id.map(|id| id.to_string()).into(),
    );
    data.insert(
        "actorId".into(),
        envelope
            .actor_id
            .filter(|id| !id.is_nil())
            .map(|id| id.to_string())
            .into(),
    );
    serde_json::json!({
        "type": event_type(envelope),
        "timestamp": envelope.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "cursor": envelope.cursor.to_string(),
        "data": data,
    })
    .to_string()
}

/// The body of a forwarded business transaction.
pub fn forward_body(
    transaction_id: uuid::Uuid,
    type_code: &str,
    payload: &serde_json::Value,
    source: &str,
    at: DateTime<Utc>,
) -> String {
    serde_json::json!({
        "type": FORWARDED_TYPE,
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "cursor": null,
        "data": {
            "transactionId": transaction_id.to_string(),
            "type": type_code,
            "payload": payload,
            "source": source,
        },
    })
    .to_string()
}

/// The delays before each attempt of a chain (the first is usually 0: at once).
#[derive(Clone, Debug, PartialEq)]
pub struct RetrySchedule(Vec<Duration>);

impl RetrySchedule {
    /// Svix's: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    pub const DEFAULT: &'static str = "0,5,300,1800,7200,18000,36000,36000";

    pub fn parse(raw: &str) -> Result<Self, String> {
        let delays = raw
            .split(',')
            .map(|s| {
                let secs: f64 = s
                    .trim()
                    .parse()
                    .map_err(|_| format!("{s:?} is not a number of seconds"))?;
                if !secs.is_finite() || !(0.0..=7.0 * 86_400.0).contains(&secs) {
                    return Err(format!("{s:?} is not between 0 and a week"));
                }
                Ok(Duration::from_secs_f64(secs))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if delays.is_empty() || delays.len() > 20 {
            return Err("between 1 and 20 delays".into());
        }
        Ok(Self(delays))
    }

    pub fn attempts(&self) -> usize {
        self.0.len()
    }

    /// The delay before attempt `step` (0-based), with ±10 % jitter (`jitter` in −1…1); `None`
    /// past the last attempt.
    pub fn delay(&self, step: usize, jitter: f64) -> Option<Duration> {
        let base = self.0.get(step)?.as_secs_f64();
        Some(Duration::from_secs_f64(
            (base * (1.0 + 0.1 * jitter.clamp(-1.0, 1.0))).max(0.0),
        ))
    }
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self(
            [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }
}

/// What the receiver's answer (or its absence) means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// 410 Gone: the receiver asks for no more; the endpoint is disabled at once.
    Gone,
    Failed,
}

pub fn outcome_of(status: Option<u16>) -> Outcome {
    match status {
        Some(s) if (200..300).contains(&s) => Outcome::Delivered,
        Some(410) => Outcome::Gone,
        _ => Outcome::Failed,
    }
}

/// The public error of an answer that was not a success.
pub fn status_error(status: u16) -> Option<String> {
    (!(200..300).contains(&status)).then(|| format!("receiver answered {status}"))
}

/// The error text kept on an attempt: short, one line.
pub fn short_error(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    line.chars().take(300).collect()
}

/// The arguments of one attempt: which delivery, which chain, which step of the schedule.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptArgs {
    pub delivery_id: uuid::Uuid,
    pub chain: uuid::Uuid,
    pub step: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_svixs_and_jitter_stays_within_a_tenth() {
        let schedule = RetrySchedule::parse(RetrySchedule::DEFAULT).expect("parses");
        assert_eq!(schedule, RetrySchedule::default());
        assert_eq!(schedule.attempts(), 8);
        assert_eq!(schedule.delay(0, 1.0), Some(Duration::ZERO));
        assert_eq!(schedule.delay(1, 0.0), Some(Duration::from_secs(5)));
        assert_eq!(schedule.delay(2, 1.0), Some(Duration::from_secs(330)));
        assert_eq!(schedule.delay(2, -1.0), Some(Duration::from_secs(270)));
        assert_eq!(schedule.delay(8, 0.0), None);
        assert_eq!(
            RetrySchedule::parse("0, 0.2,1.5").map(|s| s.delay(1, 0.0)),
            Ok(Some(Duration::from_millis(200)))
        );
        assert!(RetrySchedule::parse("").is_err());
        assert!(RetrySchedule::parse("1,x").is_err());
        assert!(RetrySchedule::parse("-1").is_err());
    }

    #[test]
    fn only_2xx_delivers_and_410_is_gone() {
        assert_eq!(outcome_of(Some(200)), Outcome::Delivered);
        assert_eq!(outcome_of(Some(204)), Outcome::Delivered);
        assert_eq!(outcome_of(Some(302)), Outcome::Failed);
        assert_eq!(outcome_of(Some(500)), Outcome::Failed);
        assert_eq!(outcome_of(Some(410)), Outcome::Gone);
        assert_eq!(outcome_of(None), Outcome::Failed);
        assert_eq!(status_error(500).as_deref(), Some("receiver answered 500"));
        assert_eq!(status_error(200), None);
    }

    #[test]
    fn filters_match_topic_and_kind_and_refuse_odd_words() -> AppResult<()> {
        let all = Filters::parse(vec![], vec![], vec![])?;
        assert!(all.wants("tasks", "CREATED"));
        let some = Filters::parse(vec![Topic::Tasks], vec!["PROGRESS_REPORTED".into()], vec![])?;
        assert!(some.wants("tasks", "PROGRESS_REPORTED"));
        assert!(!some.wants("tasks", "CREATED"));
        assert!(!some.wants("finance", "PROGRESS_REPORTED"));
        assert!(Filters::parse(vec![], vec!["bad kind".into()], vec![]).is_err());
        let stored = Filters::stored(
            &some.topics_json(),
            &some.kinds_json(),
            &some.transaction_types_json(),
        );
        assert_eq!(stored, some);
        let vanished = Filters::stored(
            &serde_json::json!(["gone"]),
            &serde_json::json!([]),
            &serde_json::json!([]),
        );
        assert!(!vanished.wants("tasks", "CREATED"));
        Ok(())
    }

    #[test]
    fn message_ids_follow_the_cursor() {
        let cursor = Cursor::new(5, 9);
        assert_eq!(message_id(cursor), format!("msg_{cursor}"));
        assert!(message_id(cursor).len() <= 64);
    }
}
