//! Business transactions over GraphQL.

use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};
use entities::{business_transaction, transaction_type};

use super::model::{Route, Status, TransactionId};
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
        let app = ctx.app()?;
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
        Ok(TransactionType(
            service::create_type(&app.db.conn, ctx.viewer()?, new).await?,
        ))
    }

    /// Idempotent: the same key and payload return the first transaction, never a second run.
    async fn submit_transaction(
        &self,
        ctx: &Context<'_>,
        input: SubmitTransactionInput,
    ) -> Result<BusinessTransaction> {
        let app = ctx.app()?;
        Ok(BusinessTransaction(
            service::submit(
                &app.db.conn,
                app.bus.as_ref(),
                ctx.viewer()?,
                &app.config.currency,
                &input.kind,
                &input.idempotency_key,
                input.payload.0,
            )
            .await?,
        ))
    }
}
