//! Business transactions over GraphQL.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{
    ComplexObject, Context, Enum, InputObject, MaybeUndefined, Object, Result, SimpleObject,
    Subscription, ID,
};
use chrono::{DateTime, Utc};
use entities::{business_transaction, transaction_type};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use super::model::{self, event_visible_to, Status, TransactionId, TransactionTypeId};
use super::service::{self, NewType, TypeChanges};
use crate::domains::approvals::graphql::Approval;
use crate::domains::approvals::loaders::ApprovalLoaders;
use crate::domains::approvals::model::FlowId;
use crate::domains::finance::graphql::JournalEntry;
use crate::domains::finance::model::EntryId;
use crate::domains::finance::service as finance;
use crate::error::{AppError, AppResult};
use crate::graphql::context::{loader_error, ContextExt};
use crate::graphql::found;
use crate::graphql::ids::{maybe_id, optional_id};
use crate::graphql::pagination::{connection, decode_cursor, page_size, TotalCount};
use crate::graphql::scalars::Json;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domains::business::model::Route")]
pub enum TransactionRoute {
    FinancePosting,
    AppForward,
    DataProcess,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domains::business::model::Status")]
pub enum TransactionStatus {
    Received,
    Validated,
    PendingApproval,
    Approved,
    Executing,
    Completed,
    Failed,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TransactionType {
    id: ID,
    code: String,
    name: String,
    route: String,
    payload_schema: Json,
    #[graphql(skip)]
    posting_rule: Option<serde_json::Value>,
    #[graphql(skip)]
    forward_url: Option<String>,
}

#[ComplexObject]
impl TransactionType {
    /// Null unless the viewer is an administrator or holds `scheduler.manage`.
    async fn posting_rule(&self, ctx: &Context<'_>) -> Result<Option<Json>> {
        let shown = model::may_read_type_config(ctx.caller()?.viewer.user()?);
        Ok(self
            .posting_rule
            .clone()
            .filter(|_| shown)
            .map(async_graphql::Json))
    }
    /// Null unless the viewer is an administrator or holds `scheduler.manage`.
    async fn forward_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let shown = model::may_read_type_config(ctx.caller()?.viewer.user()?);
        Ok(self.forward_url.clone().filter(|_| shown))
    }
}

impl From<transaction_type::Model> for TransactionType {
    fn from(row: transaction_type::Model) -> Self {
        Self {
            id: ID(row.id.to_string()),
            code: row.code,
            name: row.name,
            route: row.route,
            payload_schema: async_graphql::Json(row.payload_schema),
            posting_rule: row.posting_rule,
            forward_url: row.forward_url,
        }
    }
}

#[derive(SimpleObject)]
pub struct TransactionStep {
    status: String,
    at: String,
    note: Option<String>,
}

impl TransactionStep {
    /// The steps as the row stores them; a malformed step reads as empty text.
    fn all(history: &serde_json::Value) -> Vec<Self> {
        history
            .as_array()
            .into_iter()
            .flatten()
            .map(|step| Self {
                status: step["status"].as_str().unwrap_or_default().to_owned(),
                at: step["at"].as_str().unwrap_or_default().to_owned(),
                note: step["note"].as_str().map(str::to_owned),
            })
            .collect()
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct BusinessTransaction {
    #[graphql(skip)]
    type_id: Uuid,
    #[graphql(skip)]
    approval_instance_id: Option<Uuid>,
    id: ID,
    idempotency_key: String,
    payload: Json,
    status: TransactionStatus,
    /// Every status the transaction went through, with its time.
    history: Vec<TransactionStep>,
    /// What execution produced: the journal entry, or for routed types the job and then its
    /// delivery or processing outcome.
    result: Option<Json>,
    error: Option<String>,
    /// Who submitted it: a person, a partner app (through one of its keys), or the hub itself.
    source: TransactionSource,
    created_at: DateTime<Utc>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum TransactionSourceKind {
    User,
    App,
    /// Built in: a completed task's cash output.
    System,
}

#[derive(SimpleObject)]
pub struct TransactionSource {
    kind: TransactionSourceKind,
    /// The person, or the app's service account.
    user_id: Option<ID>,
    app_id: Option<ID>,
}

impl TransactionSource {
    fn of(row: &business_transaction::Model) -> Self {
        let kind = match (row.source_app_id, row.source_user_id) {
            (Some(_), _) => TransactionSourceKind::App,
            (None, Some(_)) => TransactionSourceKind::User,
            (None, None) => TransactionSourceKind::System,
        };
        Self {
            kind,
            user_id: row.source_user_id.map(|id| ID(id.to_string())),
            app_id: row.source_app_id.map(|id| ID(id.to_string())),
        }
    }
}

impl TryFrom<business_transaction::Model> for BusinessTransaction {
    type Error = AppError;

    fn try_from(row: business_transaction::Model) -> AppResult<Self> {
        let status = Status::parse(&row.status)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("bad status")))?;
        let source = TransactionSource::of(&row);
        Ok(Self {
            source,
            type_id: row.type_id,
            approval_instance_id: row.approval_instance_id,
            id: ID(row.id.to_string()),
            idempotency_key: row.idempotency_key,
            payload: async_graphql::Json(row.payload),
            status: status.into(),
            history: TransactionStep::all(&row.history),
            result: row.result.map(async_graphql::Json),
            error: row.error,
            created_at: row.created_at,
        })
    }
}

impl BusinessTransaction {
    fn all(rows: Vec<business_transaction::Model>) -> AppResult<Vec<Self>> {
        rows.into_iter().map(Self::try_from).collect()
    }

    /// The entry a completed FINANCE_POSTING transaction posted, from its result.
    fn journal_entry_id(&self) -> Option<EntryId> {
        let result = self.result.as_ref()?;
        let id = result.0["journalEntryId"].as_str()?;
        uuid::Uuid::parse_str(id).ok().map(EntryId)
    }
}

#[ComplexObject]
impl BusinessTransaction {
    #[graphql(name = "type")]
    async fn kind(&self, ctx: &Context<'_>) -> Result<Option<TransactionType>> {
        let caller = ctx.caller()?;
        let kind = service::type_of(caller.db(), self.type_id).await?;
        Ok(kind.map(TransactionType::from))
    }
    async fn approval(&self, ctx: &Context<'_>) -> Result<Option<Approval>> {
        let Some(id) = self.approval_instance_id else {
            return Ok(None);
        };
        Ok(ctx
            .loaders::<ApprovalLoaders>()?
            .instances
            .load_one(id)
            .await
            .map_err(loader_error)?
            .map(Approval::from))
    }
    /// The posted entry, for a completed FINANCE_POSTING transaction the viewer may read.
    async fn journal_entry(&self, ctx: &Context<'_>) -> Result<Option<JournalEntry>> {
        let caller = ctx.caller()?;
        let Some(id) = self.journal_entry_id() else {
            return Ok(None);
        };
        match finance::find_entry(caller.db(), caller.viewer, id).await {
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
    /// For APP_FORWARD: the http(s) URL each transaction is POSTed to. Without it, transactions
    /// go, signed, to the webhook endpoints whose `transactionTypes` list the type.
    forward_url: Option<String>,
}

impl TryFrom<CreateTransactionTypeInput> for NewType {
    type Error = AppError;

    fn try_from(input: CreateTransactionTypeInput) -> AppResult<Self> {
        Ok(NewType {
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
        })
    }
}

/// Fields left out stay as they are; `null` clears the flow, the posting rule or the URL.
#[derive(InputObject)]
pub struct UpdateTransactionTypeInput {
    code: Option<String>,
    name: Option<String>,
    payload_schema: Option<Json>,
    approval_flow_id: MaybeUndefined<ID>,
    route: Option<TransactionRoute>,
    posting_rule: MaybeUndefined<Json>,
    forward_url: MaybeUndefined<String>,
}

/// `undefined` leaves a field alone, `null` clears it, a value sets it.
fn cleared<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

impl TryFrom<UpdateTransactionTypeInput> for TypeChanges {
    type Error = AppError;

    fn try_from(input: UpdateTransactionTypeInput) -> AppResult<Self> {
        Ok(TypeChanges {
            code: input.code,
            name: input
                .name
                .map(|name| crate::domains::identity::model::parse_name("name", &name, 200))
                .transpose()?,
            payload_schema: input.payload_schema.map(|j| j.0),
            approval_flow_id: maybe_id("approvalFlowId", input.approval_flow_id, FlowId::parse)?
                .map(|flow| flow.map(|f| f.0)),
            route: input.route.map(Into::into),
            posting_rule: cleared(input.posting_rule).map(|rule| rule.map(|j: Json| j.0)),
            forward_url: cleared(input.forward_url),
        })
    }
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

impl TransactionFilter {
    fn status_of(filter: Option<Self>) -> Option<Status> {
        filter.and_then(|f| f.status).map(Into::into)
    }
}

#[derive(Default)]
pub struct BusinessQuery;

#[Object]
impl BusinessQuery {
    async fn transaction_types(&self, ctx: &Context<'_>) -> Result<Vec<TransactionType>> {
        let caller = ctx.caller()?;
        let types = service::list_types(caller.db(), caller.viewer).await?;
        Ok(types.into_iter().map(TransactionType::from).collect())
    }

    /// One's own transaction, or any for `finance.read` holders.
    async fn transaction(&self, ctx: &Context<'_>, id: ID) -> Result<Option<BusinessTransaction>> {
        let (caller, id) = (ctx.caller()?, TransactionId::parse("id", &id)?);
        let row = found(service::find(caller.db(), caller.viewer, id).await)?;
        Ok(row.map(BusinessTransaction::try_from).transpose()?)
    }

    #[graphql(complexity = "crate::graphql::limits::page_complexity(first, child_complexity)")]
    async fn transactions(
        &self,
        ctx: &Context<'_>,
        filter: Option<TransactionFilter>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, BusinessTransaction, TotalCount, EmptyFields>> {
        let caller = ctx.caller()?;
        let (first, offset) = (page_size(first)?, decode_cursor(after.as_deref())?);
        let status = TransactionFilter::status_of(filter);
        let (rows, total) =
            service::list(caller.db(), caller.viewer, status, offset, first).await?;
        Ok(connection(BusinessTransaction::all(rows)?, total, offset))
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
        let (caller, new) = (ctx.caller()?, NewType::try_from(input)?);
        let created = caller
            .write(async |work| {
                service::create_type(work, caller.viewer, &caller.app.outbound, new).await
            })
            .await?;
        Ok(created.into())
    }

    /// Administrators only; checked as `createTransactionType` checks a new type.
    async fn update_transaction_type(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateTransactionTypeInput,
    ) -> Result<TransactionType> {
        let (caller, changes) = (ctx.caller()?, TypeChanges::try_from(input)?);
        let id = TransactionTypeId::parse("id", &id)?;
        let updated = caller
            .write(async |work| {
                service::update_type(work, caller.viewer, &caller.app.outbound, id, changes).await
            })
            .await?;
        Ok(updated.into())
    }

    /// Idempotent: the same key and payload return the first transaction, never a second run.
    /// Needs `business.submit`, globally or over the department the payload names.
    async fn submit_transaction(
        &self,
        ctx: &Context<'_>,
        input: SubmitTransactionInput,
    ) -> Result<BusinessTransaction> {
        let caller = ctx.caller()?;
        let currency = &caller.app.config.currency;
        let row = caller
            .write(async |work| {
                service::submit(
                    work,
                    caller.viewer,
                    currency,
                    &input.kind,
                    &input.idempotency_key,
                    input.payload.0,
                )
                .await
            })
            .await?;
        Ok(row.try_into()?)
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "crate::domains::business::model::TransactionEventKind")]
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

// A status a transaction entered. Not a doc comment: the schema gives the type no description.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct TransactionEvent {
    #[graphql(skip)]
    subject: TransactionId,
    /// Pass as `after` to resume just after this event.
    cursor: String,
    kind: TransactionEventKind,
    at: DateTime<Utc>,
    /// The status entered.
    status: TransactionStatus,
    transaction_id: ID,
    /// The transaction type's code.
    type_code: String,
    /// What execution produced, on COMPLETED (and on EXECUTING for a queued route: its job).
    result: Option<Json>,
    /// Why it failed, on FAILED and REJECTED.
    error: Option<String>,
}

impl TransactionEvent {
    fn new(cursor: String, event: model::TransactionEvent) -> Self {
        Self {
            subject: TransactionId(event.transaction_id),
            cursor,
            kind: event.kind.into(),
            at: event.at,
            status: event.status.into(),
            transaction_id: ID(event.transaction_id.to_string()),
            type_code: event.type_code,
            result: event.result.map(async_graphql::Json),
            error: event.error,
        }
    }
}

#[ComplexObject]
impl TransactionEvent {
    /// The transaction as it is now (it may have moved on since this event); null once the
    /// viewer may no longer read it.
    async fn transaction(&self, ctx: &Context<'_>) -> Result<Option<BusinessTransaction>> {
        let caller = ctx.caller()?;
        let row = found(service::find(caller.db(), caller.viewer, self.subject).await)?;
        Ok(row.map(BusinessTransaction::try_from).transpose()?)
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
                let event = envelope.decode::<model::TransactionEvent>()?;
                Some(TransactionEvent::new(envelope.cursor.to_string(), event))
            });
            futures_util::future::ready(delivered)
        }))
    }
}
