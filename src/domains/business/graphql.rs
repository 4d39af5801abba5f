//! Business transactions over GraphQL.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject, Subscription, ID};
use chrono::{DateTime, Utc};
use entities::{business_transaction, transaction_type};
use futures_util::{Stream, StreamExt};

use super::model::{
    self, event_visible_to, Route, Status, TransactionEventKind as Kind, TransactionId,
};
use super::service::{self, NewType};
use crate::domains::approvals::graphql::Approval;
use crate::domains::approvals::loaders::ApprovalLoaders;
use crate::domains::approvals::model::FlowId;
use crate::domains::finance::graphql::JournalEntry;
use crate::domains::finance::model::EntryId;
use crate::domains::finance::service as finance;
use crate::error::AppError;
use crate::graphql::context::{loader_error, ContextExt};
use crate::graphql::ids::optional_id;
use crate::graphql::pagination::{decode_cursor, page_size, TotalCount};
use crate::graphql::scalars::Json;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum TransactionRoute {
    FinancePosting,
    AppForward,
    DataProcess,
}

impl From<TransactionRoute> for Route {
    fn from(r: TransactionRoute) -> Self {
        match r {
            TransactionRoute::FinancePosting => Route::FinancePosting,
            TransactionRoute::AppForward => Route::AppForward,
            TransactionRoute::DataProcess => Route::DataProcess,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum TransactionStatus {
    Received,
    Validated,
    PendingApproval,
    Approved,
    Executing,
    Completed,
    Failed,
}

impl From<Status> for TransactionStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Received => Self::Received,
            Status::Validated => Self::Validated,
            Status::PendingApproval => Self::PendingApproval,
            Status::Approved => Self::Approved,
            Status::Executing => Self::Executing,
            Status::Completed => Self::Completed,
            Status::Failed => Self::Failed,
        }
    }
}

impl From<TransactionStatus> for Status {
    fn from(s: TransactionStatus) -> Self {
        match s {
            TransactionStatus::Received => Self::Received,
            TransactionStatus::Validated => Self::Validated,
            TransactionStatus::PendingApproval => Self::PendingApproval,
            TransactionStatus::Approved => Self::Approved,
            TransactionStatus::Executing => Self::Executing,
            TransactionStatus::Completed => Self::Completed,
            TransactionStatus::Failed => Self::Failed,
        }
    }
}

pub struct TransactionType(transaction_type::Model);

#[Object]
impl TransactionType {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn route(&self) -> &str {
        &self.0.route
    }
    async fn payload_schema(&self) -> Json {
        async_graphql::Json(self.0.payload_schema.clone())
    }
    async fn posting_rule(&self) -> Option<Json> {
        self.0.posting_rule.clone().map(async_graphql::Json)
    }
    async fn forward_url(&self) -> Option<&str> {
        self.0.forward_url.as_deref()
    }
}

#[derive(SimpleObject)]
pub struct TransactionStep {
    status: String,
    at: String,
    note: Option<String>,
}

pub struct BusinessTransaction(business_transaction::Model);

#[Object]
impl BusinessTransaction {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    #[graphql(name = "type")]
    async fn kind(&self, ctx: &Context<'_>) -> Result<Option<TransactionType>> {
        let app = ctx.app()?;
        Ok(service::type_of(&app.db.conn, self.0.type_id)
            .await?
            .map(TransactionType))
    }
    async fn idempotency_key(&self) -> &str {
        &self.0.idempotency_key
    }
    async fn payload(&self) -> Json {
        async_graphql::Json(self.0.payload.clone())
    }
    async fn status(&self) -> Result<TransactionStatus> {
        Ok(Status::parse(&self.0.status)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bad status")))?
            .into())
    }
    /// Every status the transaction went through, with its time.
    async fn history(&self) -> Vec<TransactionStep> {
        self.0
            .history
            .as_array()
            .into_iter()
            .flatten()
            .map(|step| TransactionStep {
                status: step["status"].as_str().unwrap_or_default().to_owned(),
                at: step["at"].as_str().unwrap_or_default().to_owned(),
                note: step["note"].as_str().map(str::to_owned),
            })
            .collect()
    }
    /// What execution produced: the journal entry, or for routed types the job and then its
    /// delivery or processing outcome.
    async fn result(&self) -> Option<Json> {
        self.0.result.clone().map(async_graphql::Json)
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn approval(&self, ctx: &Context<'_>) -> Result<Option<Approval>> {
        let Some(id) = self.0.approval_instance_id else {
            return Ok(None);
        };
        Ok(ctx
            .loaders::<ApprovalLoaders>()?
            .instances
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(Approval))
    }
    /// The posted entry, for a completed FINANCE_POSTING transaction the viewer may read.
    async fn journal_entry(&self, ctx: &Context<'_>) -> Result<Option<JournalEntry>> {
        let app = ctx.app()?;
        let Some(id) = self
            .0
            .result
            .as_ref()
            .and_then(|r| r["journalEntryId"].as_str())
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
        else {
            return Ok(None);
        };
        match finance::find_entry(&app.db.conn, ctx.viewer()?, EntryId(id)).await {
            Ok(entry) => Ok(Some(JournalEntry::from(entry))),
            Err(AppError::Forbidden(_) | AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
}

#[derive(InputObject)]
pub struct CreateTransactionTypeInput {
    code: String,
    name: String,
    payload_schema: Json,
    approval_flow_id: Option<ID>,
    route: TransactionRoute,
    posting_rule: Option<Json>,
    /// Required for APP_FORWARD: the http(s) URL each transaction is POSTed to.
    forward_url: Option<String>,
}

#[derive(InputObject)]
pub struct SubmitTransactionInput {
    #[graphql(name = "type")]
    kind: String,
    idempotency_key: String,
    payload: Json,
}

#[derive(InputObject, Default)]
pub struct TransactionFilter {
    status: Option<TransactionStatus>,
}

#[derive(Default)]
pub struct BusinessQuery;

#[Object]
impl BusinessQuery {
    async fn transaction_types(&self, ctx: &Context<'_>) -> Result<Vec<TransactionType>> {
        let app = ctx.app()?;
        Ok(service::list_types(&app.db.conn, ctx.viewer()?)
            .await?
            .into_iter()
            .map(TransactionType)
            .collect())
    }

    /// One's own transaction, or any for `finance.read` holders.
    async fn transaction(&self, ctx: &Context<'_>, id: ID) -> Result<Option<BusinessTransaction>> {
        let app = ctx.app()?;
        match service::find(
            &app.db.conn,
            ctx.viewer()?,
            TransactionId::parse("id", &id)?,
        )
        .await
        {
            Ok(row) => Ok(Some(BusinessTransaction(row))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity + 1")]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        filter: Option<TransactionFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, BusinessTransaction, TotalCount, EmptyFields>> {
        let app = ctx.app()?;
        let first = page_size(first)?;
        let offset = decode_cursor(after.as_deref())?;
        let status = filter.unwrap_or_default().status.map(Into::into);
        let (rows, total) =
            service::list(&app.db.conn, ctx.viewer()?, status, offset, first).await?;
        Ok(crate::graphql::pagination::connection(
            rows.into_iter().map(BusinessTransaction).collect(),
            total,
            offset,
        ))
    }
}

#[derive(Default)]
pub struct BusinessMutation;

#[Object]
impl BusinessMutation {
    /// Administrators only.
    async fn create_transaction_type(
        &self,
        ctx: &Context<'_>,
        input: CreateTransactionTypeInput,
    ) -> Result<TransactionType> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let new = NewType {
            code: input.code,
            name: crate::domains::identity::model::parse_name("name", &input.name, 200)?,
            payload_schema: input.payload_schema.0,
            approval_flow_id: optional_id(
                "approvalFlowId",
                input.approval_flow_id.as_ref(),
                FlowId::parse,
            )?
            .map(|f| f.0),
            route: input.route.into(),
            posting_rule: input.posting_rule.map(|j| j.0),
            forward_url: input.forward_url,
        };
        let created = app
            .write(async |work| service::create_type(work, viewer, new).await)
            .await?;
        Ok(TransactionType(created))
    }

    /// Idempotent: the same key and payload return the first transaction, never a second run.
    async fn submit_transaction(
        &self,
        ctx: &Context<'_>,
        input: SubmitTransactionInput,
    ) -> Result<BusinessTransaction> {
        let (app, viewer) = (ctx.app()?, ctx.viewer()?);
        let row = app
            .write(async |work| {
                service::submit(
                    work,
                    viewer,
                    &app.config.currency,
                    &input.kind,
                    &input.idempotency_key,
                    input.payload.0,
                )
                .await
            })
            .await?;
        Ok(BusinessTransaction(row))
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum TransactionEventKind {
    Submitted,
    PendingApproval,
    Approved,
    /// The approval was rejected; the transaction is FAILED with the reason as its error.
    Rejected,
    Executing,
    Completed,
    Failed,
}

impl From<Kind> for TransactionEventKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Submitted => Self::Submitted,
            Kind::PendingApproval => Self::PendingApproval,
            Kind::Approved => Self::Approved,
            Kind::Rejected => Self::Rejected,
            Kind::Executing => Self::Executing,
            Kind::Completed => Self::Completed,
            Kind::Failed => Self::Failed,
        }
    }
}

/// A status a transaction entered.
pub struct TransactionEvent {
    cursor: String,
    event: model::TransactionEvent,
}

#[Object]
impl TransactionEvent {
    /// Pass as `after` to resume just after this event.
    async fn cursor(&self) -> &str {
        &self.cursor
    }
    async fn kind(&self) -> TransactionEventKind {
        self.event.kind.into()
    }
    async fn at(&self) -> DateTime<Utc> {
        self.event.at
    }
    /// The status entered.
    async fn status(&self) -> TransactionStatus {
        self.event.status.into()
    }
    async fn transaction_id(&self) -> ID {
        ID(self.event.transaction_id.to_string())
    }
    /// The transaction type's code.
    async fn type_code(&self) -> &str {
        &self.event.type_code
    }
    /// The transaction as it is now (it may have moved on since this event); null once the
    /// viewer may no longer read it.
    async fn transaction(&self, ctx: &Context<'_>) -> Result<Option<BusinessTransaction>> {
        let id = TransactionId(self.event.transaction_id);
        match service::find(&ctx.app()?.db.conn, ctx.viewer()?, id).await {
            Ok(row) => Ok(Some(BusinessTransaction(row))),
            Err(AppError::NotFound(_)) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }
    /// What execution produced, on COMPLETED (and on EXECUTING for a queued route: its job).
    async fn result(&self) -> Option<Json> {
        self.event.result.clone().map(async_graphql::Json)
    }
    /// Why it failed, on FAILED and REJECTED.
    async fn error(&self) -> Option<&str> {
        self.event.error.as_deref()
    }
}

#[derive(Default)]
pub struct BusinessSubscription;

#[Subscription]
impl BusinessSubscription {
    /// Status changes of the transactions the viewer may read (of one, with `transactionId`):
    /// those after `after` from the log, then live. Without `after`, from now on.
    async fn transaction_events(
        &self,
        ctx: &Context<'_>,
        transaction_id: Option<ID>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = TransactionEvent>> {
        let viewer = ctx.viewer()?.clone();
        viewer.user()?;
        let wanted = transaction_id
            .map(|id| TransactionId::parse("transactionId", &id))
            .transpose()?;
        let log = crate::graphql::live::follow(ctx, after.as_deref()).await?;
        Ok(log.filter_map(move |envelope| {
            // Decided per event, from the audience it was written with.
            let delivered = viewer.user().ok().and_then(|me| {
                if !event_visible_to(&envelope, me)
                    || wanted.is_some_and(|id| envelope.subject_id != Some(id.0))
                {
                    return None;
                }
                Some(TransactionEvent {
                    cursor: envelope.cursor.to_string(),
                    event: envelope.decode::<model::TransactionEvent>()?,
                })
            });
            futures_util::future::ready(delivered)
        }))
    }
}
