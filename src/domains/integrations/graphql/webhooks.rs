//! Webhook endpoints and deliveries over GraphQL: thin resolvers over `service::webhooks`.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use entities::{webhook_attempt, webhook_delivery, webhook_endpoint};

use crate::domains::events::graphql::EventTopic;
use crate::domains::events::model::Topic;
use crate::domains::integrations::model::webhooks::{
    parse_description, DeliveryId, DeliveryStatus, EndpointId, Filters,
};
use crate::domains::integrations::service::webhooks::{
    self as service, EndpointChanges, NewEndpoint,
};
use crate::error::AppError;
use crate::graphql::context::ContextExt;
use crate::graphql::live::parse_cursor;
use crate::graphql::pagination::{connection, decode_cursor, page_size, TotalCount};

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "DeliveryStatus")]
pub enum WebhookDeliveryStatus {
    /// Waiting for its next attempt (`nextAttemptAt`), or being sent.
    Pending,
    Delivered,
    /// Given up: the schedule ran out, the receiver answered 410, or the endpoint was disabled.
    Failed,
}

/// Where an app's events are delivered, signed. Its signing secret is shown only when it is
/// created or rotated.
#[derive(SimpleObject)]
pub struct WebhookEndpoint {
    id: ID,
    app_id: ID,
    url: String,
    /// Empty: every topic the app may see.
    topics: Vec<EventTopic>,
    /// Empty: every kind.
    kinds: Vec<String>,
    /// Codes of the APP_FORWARD transaction types delivered here.
    transaction_types: Vec<String>,
    description: String,
    active: bool,
    /// Why it was disabled (a 410, days of failures, its owner).
    disabled_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<webhook_endpoint::Model> for WebhookEndpoint {
    fn from(row: webhook_endpoint::Model) -> Self {
        let filters = Filters::stored(&row.topics, &row.kinds, &row.transaction_types);
        Self {
            id: ID(row.id.to_string()),
            app_id: ID(row.app_id.to_string()),
            url: row.url,
            topics: filters.topics.into_iter().map(EventTopic::from).collect(),
            kinds: filters.kinds,
            transaction_types: filters.transaction_types,
            description: row.description,
            active: row.active,
            disabled_reason: row.disabled_reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(SimpleObject)]
pub struct WebhookEndpointCreated {
    endpoint: WebhookEndpoint,
    /// The signing secret (`whsec_…`), shown this once.
    secret: String,
}

#[derive(SimpleObject)]
pub struct WebhookSecretRotated {
    endpoint: WebhookEndpoint,
    /// The new signing secret, shown this once. The previous one keeps signing beside it for
    /// `INTERLINK_WEBHOOK_SECRET_OVERLAP_SECS` (a day by default).
    secret: String,
}

/// One HTTP attempt.
#[derive(SimpleObject)]
pub struct WebhookAttempt {
    at: DateTime<Utc>,
    /// The receiver's status, when it answered.
    status_code: Option<i32>,
    duration_ms: i64,
    /// Why it failed, briefly.
    error: Option<String>,
}

impl From<webhook_attempt::Model> for WebhookAttempt {
    fn from(row: webhook_attempt::Model) -> Self {
        Self {
            at: row.at,
            status_code: row.status_code,
            duration_ms: row.duration_ms,
            error: row.error,
        }
    }
}

/// One message for one endpoint.
#[derive(SimpleObject)]
pub struct WebhookDelivery {
    id: ID,
    /// The `webhook-id` header: the same on every attempt, redelivery and replay.
    webhook_id: String,
    /// `<topic>.<KIND>`, as in the body's `type`.
    event_type: String,
    /// The event's cursor in the log (null for a forwarded transaction).
    cursor: Option<String>,
    status: WebhookDeliveryStatus,
    attempt_count: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    delivered_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    /// In the order they were made.
    attempts: Vec<WebhookAttempt>,
}

impl WebhookDelivery {
    fn of(
        row: webhook_delivery::Model,
        attempts: Vec<webhook_attempt::Model>,
    ) -> Result<Self, AppError> {
        let status = DeliveryStatus::parse(&row.status).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("unknown delivery status {:?}", row.status))
        })?;
        Ok(Self {
            id: ID(row.id.to_string()),
            webhook_id: row.message_id,
            event_type: row.event_type,
            cursor: row.cursor,
            status: status.into(),
            attempt_count: row.attempt_count,
            next_attempt_at: row.next_attempt_at,
            delivered_at: row.delivered_at,
            created_at: row.created_at,
            attempts: attempts.into_iter().map(WebhookAttempt::from).collect(),
        })
    }
}

fn topics(raw: Option<Vec<EventTopic>>) -> Vec<Topic> {
    raw.unwrap_or_default()
        .into_iter()
        .map(Topic::from)
        .collect()
}

#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    app_id: ID,
    /// An http(s) URL on a public address.
    url: String,
    /// Empty or null: every topic the app may see.
    topics: Option<Vec<EventTopic>>,
    /// Event kinds such as `PROGRESS_REPORTED`; empty or null: every kind.
    kinds: Option<Vec<String>>,
    /// Codes of APP_FORWARD transaction types to deliver here.
    transaction_types: Option<Vec<String>>,
    description: Option<String>,
}

/// Null fields stay as they are.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    url: Option<String>,
    topics: Option<Vec<EventTopic>>,
    kinds: Option<Vec<String>>,
    transaction_types: Option<Vec<String>>,
    description: Option<String>,
    /// `true` enables a disabled endpoint again (replay what it missed with `replayWebhook`).
    active: Option<bool>,
}

fn app_id(raw: &ID) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::parse_str(raw).map_err(|_| AppError::bad_field("appId", "not a valid app id"))
}

#[derive(Default)]
pub struct WebhooksQuery;

#[Object]
impl WebhooksQuery {
    /// An app's endpoints (`integrations.manage`).
    async fn webhook_endpoints(
        &self,
        ctx: &Context<'_>,
        app_id: ID,
    ) -> Result<Vec<WebhookEndpoint>> {
        let caller = ctx.caller()?;
        let rows = service::endpoints(caller.db(), caller.viewer, self::app_id(&app_id)?).await?;
        Ok(rows.into_iter().map(WebhookEndpoint::from).collect())
    }

    /// An endpoint's deliveries, newest first, each with its attempts.
    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn webhook_deliveries(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, WebhookDelivery, TotalCount, EmptyFields>> {
        let caller = ctx.caller()?;
        let endpoint = EndpointId::parse("endpointId", &endpoint_id)?;
        let (first, offset) = (page_size(first)?, decode_cursor(after.as_deref())?);
        let page = service::deliveries(caller.db(), caller.viewer, endpoint, offset, first).await?;
        let items = page
            .items
            .into_iter()
            .map(|(row, attempts)| WebhookDelivery::of(row, attempts))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(connection(items, page.total, offset))
    }
}

#[derive(Default)]
pub struct WebhooksMutation;

#[Object]
impl WebhooksMutation {
    /// A new endpoint for an app; the answer carries its signing secret, shown this once.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> Result<WebhookEndpointCreated> {
        let caller = ctx.caller()?;
        let new = NewEndpoint {
            app_id: app_id(&input.app_id)?,
            url: input.url,
            filters: Filters::parse(
                topics(input.topics),
                input.kinds.unwrap_or_default(),
                input.transaction_types.unwrap_or_default(),
            )?,
            description: parse_description(input.description)?,
        };
        let outbound = &caller.app.outbound;
        let (row, secret) = caller
            .write(async |work| service::create_endpoint(work, caller.viewer, outbound, new).await)
            .await?;
        Ok(WebhookEndpointCreated {
            endpoint: row.into(),
            secret,
        })
    }

    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWebhookEndpointInput,
    ) -> Result<WebhookEndpoint> {
        let caller = ctx.caller()?;
        let id = EndpointId::parse("id", &id)?;
        let changes = EndpointChanges {
            url: input.url,
            topics: input.topics.map(|t| topics(Some(t))),
            kinds: input.kinds,
            transaction_types: input.transaction_types,
            description: input
                .description
                .map(|d| parse_description(Some(d)))
                .transpose()?,
            active: input.active,
        };
        let outbound = &caller.app.outbound;
        let row = caller
            .write(async |work| {
                service::update_endpoint(work, caller.viewer, outbound, id, changes).await
            })
            .await?;
        Ok(row.into())
    }

    /// Deletes the endpoint with its deliveries.
    async fn delete_webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        let caller = ctx.caller()?;
        let id = EndpointId::parse("id", &id)?;
        Ok(caller
            .write(async |work| service::delete_endpoint(work, caller.viewer, id).await)
            .await?)
    }

    /// A new signing secret; during the overlap every delivery is signed with both.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<WebhookSecretRotated> {
        let caller = ctx.caller()?;
        let id = EndpointId::parse("id", &id)?;
        let settings = &caller.app.config.webhooks;
        let (row, secret) = caller
            .write(async |work| service::rotate_secret(work, caller.viewer, settings, id).await)
            .await?;
        Ok(WebhookSecretRotated {
            endpoint: row.into(),
            secret,
        })
    }

    /// Sends a delivery again (a new chain of attempts, the same `webhook-id` and body).
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        delivery_id: ID,
    ) -> Result<WebhookDelivery> {
        let caller = ctx.caller()?;
        let id = DeliveryId::parse("deliveryId", &delivery_id)?;
        let settings = &caller.app.config.webhooks;
        let row = caller
            .write(async |work| service::redeliver(work, caller.viewer, settings, id).await)
            .await?;
        WebhookDelivery::of(row, Vec::new()).map_err(Into::into)
    }

    /// Queues again every event after `after` that the endpoint takes, with the original
    /// `webhook-id`s (creating the deliveries it never had), and returns how many. At most
    /// 10,000 events after the cursor per call; `CURSOR_EXPIRED` past the log's retention.
    async fn replay_webhook(
        &self,
        ctx: &Context<'_>,
        endpoint_id: ID,
        after: String,
    ) -> Result<i32> {
        let caller = ctx.caller()?;
        let endpoint = EndpointId::parse("endpointId", &endpoint_id)?;
        let Some(after) = parse_cursor("after", Some(&after))? else {
            return Err(AppError::bad_field("after", "not an event cursor").into());
        };
        let settings = &caller.app.config.webhooks;
        let queued = caller
            .write(async |work| {
                service::replay(work, caller.viewer, settings, endpoint, after).await
            })
            .await?;
        Ok(i32::try_from(queued).unwrap_or(i32::MAX))
    }
}
