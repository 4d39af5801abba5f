//! Business transaction rules: types, submission with Stripe-style idempotency, approval,
//! exactly-once execution and routing.

use async_trait::async_trait;
use chrono::Utc;
use entities::{business_transaction, transaction_type};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use super::model::{
    amount_at, parse_idempotency_key, payload_hash, PostingRule, Route, Side, Status,
    TransactionAudience, TransactionEvent, TransactionEventKind, TransactionId, TransactionTypeId,
    SUBJECT_KIND, TASK_OUTPUT_TYPE,
};
use crate::auth::{Permission, Viewer};
use crate::domains::approvals::model::{SubjectFacts, SubjectRef, Verdict};
use crate::domains::approvals::service::{self as approvals, ApprovalSubject};
use crate::domains::finance::model::{AccountType, NewEntry, PostingLine};
use crate::domains::finance::service as finance;
use crate::domains::identity::service as identity;
use crate::error::{AppError, AppResult};
use crate::platform::db::try_lock_in_transaction;
use crate::platform::money::currency_exponent;
use crate::platform::outbound::Outbound;
use crate::platform::work::Work;

mod routed;
pub use routed::*;

pub struct NewType {
    pub code: String,
    pub name: String,
    pub payload_schema: serde_json::Value,
    pub approval_flow_id: Option<Uuid>,
    pub route: Route,
    pub posting_rule: Option<serde_json::Value>,
    /// Required for `APP_FORWARD`: where its transactions are delivered.
    pub forward_url: Option<String>,
}

/// An `APP_FORWARD` type's URL is vetted through `outbound` (public addresses only, unless
/// allowed), so a type cannot be aimed at this node's own network.
pub async fn create_type(
    work: &Work,
    viewer: &Viewer,
    outbound: &Outbound,
    input: NewType,
) -> AppResult<transaction_type::Model> {
    viewer.user()?.require_global(Permission::Admin)?;
    let checked = checked_type(work, outbound, input).await?;
    let code = checked.code.clone();
    transaction_type::ActiveModel {
        id: Set(Uuid::now_v7()),
        code: Set(checked.code),
        name: Set(checked.name),
        payload_schema: Set(checked.payload_schema),
        approval_flow_id: Set(checked.approval_flow_id),
        route: Set(checked.route.as_str().to_owned()),
        posting_rule: Set(checked.posting_rule),
        forward_url: Set(checked.forward_url),
        created_at: Set(Utc::now()),
    }
    .insert(work)
    .await
    .map_err(|e| type_taken(e, &code))
}

/// An edit of a type: `None` keeps a field; the `Option<Option<_>>` fields can also clear it.
#[derive(Default)]
pub struct TypeChanges {
    pub code: Option<String>,
    pub name: Option<String>,
    pub payload_schema: Option<serde_json::Value>,
    pub approval_flow_id: Option<Option<Uuid>>,
    pub route: Option<Route>,
    pub posting_rule: Option<Option<serde_json::Value>>,
    pub forward_url: Option<Option<String>>,
}

/// The edited type passes every check a new one does. Transactions already routed are untouched,
/// but one still awaiting its approval is routed by the type as it stands when it is approved.
pub async fn update_type(
    work: &Work,
    viewer: &Viewer,
    outbound: &Outbound,
    id: TransactionTypeId,
    changes: TypeChanges,
) -> AppResult<transaction_type::Model> {
    viewer.user()?.require_global(Permission::Admin)?;
    let current = transaction_type::Entity::find_by_id(id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("transaction type"))?;
    if current.code == TASK_OUTPUT_TYPE {
        return Err(AppError::Conflict(format!(
            "{TASK_OUTPUT_TYPE} is built in"
        )));
    }
    let route = Route::parse(&current.route).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "transaction type {} has route {:?}",
            current.id,
            current.route
        ))
    })?;
    let edited = NewType {
        code: changes.code.unwrap_or_else(|| current.code.clone()),
        name: changes.name.unwrap_or_else(|| current.name.clone()),
        payload_schema: changes
            .payload_schema
            .unwrap_or_else(|| current.payload_schema.clone()),
        approval_flow_id: changes.approval_flow_id.unwrap_or(current.approval_flow_id),
        route: changes.route.unwrap_or(route),
        posting_rule: changes
            .posting_rule
            .unwrap_or_else(|| current.posting_rule.clone()),
        forward_url: changes
            .forward_url
            .unwrap_or_else(|| current.forward_url.clone()),
    };
    let checked = checked_type(work, outbound, edited).await?;
    let code = checked.code.clone();
    let mut row: transaction_type::ActiveModel = current.into();
    row.code = Set(checked.code);
    row.name = Set(checked.name);
    row.payload_schema = Set(checked.payload_schema);
    row.approval_flow_id = Set(checked.approval_flow_id);
    row.route = Set(checked.route.as_str().to_owned());
    row.posting_rule = Set(checked.posting_rule);
    row.forward_url = Set(checked.forward_url);
    row.update(work).await.map_err(|e| type_taken(e, &code))
}

/// The accounts the built-in task-output type posts to (see `ensure_task_output_type`).
const TASK_OUTPUT_ACCOUNTS: [&str; 2] = ["1200", "4100"];

/// The codes of the transaction types whose posting rule names `account_code`.
pub async fn types_posting_to<C: ConnectionTrait>(
    db: &C,
    account_code: &str,
) -> AppResult<Vec<String>> {
    let mut codes: Vec<String> = transaction_type::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .filter(|ty| {
            ty.posting_rule
                .as_ref()
                .and_then(|rule| PostingRule::parse(rule).ok())
                .is_some_and(|rule| rule.lines.iter().any(|l| l.account == account_code))
        })
        .map(|ty| ty.code)
        .collect();
    if TASK_OUTPUT_ACCOUNTS.contains(&account_code) && !codes.iter().any(|c| c == TASK_OUTPUT_TYPE)
    {
        codes.push(TASK_OUTPUT_TYPE.to_owned());
    }
    codes.sort();
    Ok(codes)
}

/// Deactivates an account unless a transaction type posts to it: every transaction of that
/// type would then fail (for the built-in type, every confirmed task with a cash output).
pub async fn deactivate_account(
    work: &Work,
    viewer: &Viewer,
    id: crate::domains::finance::model::AccountId,
) -> AppResult<entities::account::Model> {
    let closed = finance::set_account_active(work, viewer, id, false).await?;
    let users = types_posting_to(work, &closed.code).await?;
    if !users.is_empty() {
        // The unit of work rolls the deactivation back.
        return Err(AppError::Conflict(format!(
            "transaction types {} post to account {}: change their posting rules first",
            users.join(", "),
            closed.code
        )));
    }
    Ok(closed)
}

fn type_taken(err: sea_orm::DbErr, code: &str) -> AppError {
    AppError::from_unique_violation(err, format!("a transaction type {code:?} exists"))
}

/// `input` with its code normalised and its URL vetted, or the first rule it breaks.
async fn checked_type(work: &Work, outbound: &Outbound, input: NewType) -> AppResult<NewType> {
    let code = input.code.trim().to_uppercase();
    if code.is_empty()
        || code.len() > 64
        || !code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(AppError::bad_field(
            "code",
            "a code is 1–64 letters, digits, '_', '-' or '.'",
        ));
    }
    if code == TASK_OUTPUT_TYPE {
        return Err(AppError::Conflict(format!(
            "{TASK_OUTPUT_TYPE} is built in"
        )));
    }
    jsonschema::validator_for(&input.payload_schema).map_err(|e| {
        AppError::bad_field("payloadSchema", format!("not a valid JSON Schema: {e}"))
    })?;
    if let Some(flow) = input.approval_flow_id {
        if !approvals::flow_exists(work, flow).await? {
            return Err(AppError::bad_field(
                "approvalFlowId",
                "no such approval flow",
            ));
        }
    }
    let rule = match (input.route, &input.posting_rule) {
        (Route::FinancePosting, Some(raw)) => {
            let rule = PostingRule::parse(raw)?;
            let missing = finance::accounts_exist(
                work,
                rule.lines.iter().map(|l| l.account.clone()).collect(),
            )
            .await?;
            if !missing.is_empty() {
                return Err(AppError::bad_field(
                    "postingRule",
                    format!("no account with code {:?}", missing[0]),
                ));
            }
            Some(raw.clone())
        }
        (Route::FinancePosting, None) => {
            return Err(AppError::bad_field(
                "postingRule",
                "a FINANCE_POSTING type needs a posting rule",
            ))
        }
        (_, Some(_)) => {
            return Err(AppError::bad_field(
                "postingRule",
                "only FINANCE_POSTING types have a posting rule",
            ))
        }
        (_, None) => None,
    };
    let forward_url = match (input.route, input.forward_url) {
        (Route::AppForward, Some(url)) => Some(
            outbound
                .vet(&url)
                .await
                .map_err(|e| AppError::bad_field("forwardUrl", e))?
                .to_string(),
        ),
        // Without a URL, its transactions go to the webhook endpoints that list the type.
        (Route::AppForward, None) => None,
        (_, Some(_)) => {
            return Err(AppError::bad_field(
                "forwardUrl",
                "only APP_FORWARD types are delivered to a URL",
            ))
        }
        (_, None) => None,
    };
    Ok(NewType {
        code,
        name: input.name,
        payload_schema: input.payload_schema,
        approval_flow_id: input.approval_flow_id,
        route: input.route,
        posting_rule: rule,
        forward_url,
    })
}

pub async fn list_types<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
) -> AppResult<Vec<transaction_type::Model>> {
    viewer.user()?;
    Ok(transaction_type::Entity::find()
        .order_by_asc(transaction_type::Column::Code)
        .all(db)
        .await?)
}

async fn type_by_code<C: ConnectionTrait>(
    db: &C,
    code: &str,
) -> AppResult<Option<transaction_type::Model>> {
    Ok(transaction_type::Entity::find()
        .filter(transaction_type::Column::Code.eq(code.trim().to_uppercase()))
        .one(db)
        .await?)
}

fn check_payload(kind: &transaction_type::Model, payload: &serde_json::Value) -> AppResult<()> {
    let validator = jsonschema::validator_for(&kind.payload_schema)
        .map_err(|e| AppError::internal(anyhow::anyhow!("stored schema invalid: {e}")))?;
    if let Some(error) = validator.iter_errors(payload).next() {
        let path = error.instance_path().to_string();
        return Err(AppError::bad_field(
            "payload",
            format!(
                "payload {} is invalid: {error}",
                if path.is_empty() {
                    "/".to_owned()
                } else {
                    path
                }
            ),
        ));
    }
    Ok(())
}

fn with_status(
    history: &serde_json::Value,
    status: Status,
    note: Option<&str>,
) -> serde_json::Value {
    let mut steps = history.as_array().cloned().unwrap_or_default();
    steps.push(serde_json::json!({ "status": status.as_str(), "at": Utc::now().to_rfc3339(), "note": note }));
    serde_json::Value::Array(steps)
}

/// Appends the event for the status `kind` enters, read from the transaction as written. The
/// transaction's result and error ride along only when that status is still its current one
/// (an EXECUTING event of a posting that completed in the same work carries neither).
fn changed(
    work: &Work,
    row: &business_transaction::Model,
    type_code: &str,
    kind: TransactionEventKind,
    actor_id: Option<Uuid>,
) {
    let current = Status::parse(&row.status) == Some(kind.status());
    work.emit(&TransactionEvent {
        kind,
        transaction_id: row.id,
        type_code: type_code.to_owned(),
        status: kind.status(),
        source: row.source_key.clone(),
        submitter: row.source_user_id,
        idempotency_key: row.idempotency_key.clone(),
        result: row.result.clone().filter(|_| current),
        error: row.error.clone().filter(|_| current),
        actor_id,
        at: Utc::now(),
    });
}

/// Submits a transaction. The same key with the same payload returns the first transaction and
/// never executes twice; with a different payload, or while the first is still in flight, it is
/// `CONFLICT`.
pub async fn submit(
    work: &Work,
    viewer: &Viewer,
    currency: &str,
    type_code: &str,
    idempotency_key: &str,
    payload: serde_json::Value,
) -> AppResult<business_transaction::Model> {
    let me = viewer.user()?;
    may_submit(work, me, &payload).await?;
    let key = parse_idempotency_key(idempotency_key)?;
    let kind = type_by_code(work, type_code)
        .await?
        .ok_or_else(|| AppError::bad_field("type", format!("no transaction type {type_code:?}")))?;
    if kind.code == TASK_OUTPUT_TYPE {
        return Err(AppError::Forbidden(format!(
            "{TASK_OUTPUT_TYPE} transactions come from completed tasks"
        )));
    }
    check_payload(&kind, &payload)?;
    if Route::parse(&kind.route) == Some(Route::FinancePosting) {
        posting_for(&kind, &payload, &key, currency)?;
    }
    // An app's keys are its own, whichever of its API keys sent them.
    let submitter = Submitter {
        key: match &me.app {
            Some(app) => format!("app:{}", app.app_id),
            None => format!("user:{}", me.id),
        },
        user: Some(me.id),
        app: me.app.as_ref().map(|app| app.app_id),
    };
    submit_in(work, &kind, &submitter, &key, payload, currency).await
}

/// `business.submit`, globally or over the department the payload names: a sign-in alone
/// submits nothing. Checked before the type is looked up, so a caller without it learns
/// nothing of which types exist. Built-in types (task output) are submitted by their domain,
/// not through here.
async fn may_submit<C: ConnectionTrait>(
    db: &C,
    me: &crate::auth::ViewerUser,
    payload: &serde_json::Value,
) -> AppResult<()> {
    if me.has_global(Permission::BusinessSubmit) {
        return Ok(());
    }
    if let Some(department) = facts_for(payload, me.id).department_id {
        if let Some(path) = identity::department_path_of(db, department).await? {
            if me.has_in(Permission::BusinessSubmit, &path) {
                return Ok(());
            }
        }
    }
    Err(AppError::Forbidden(format!(
        "submitting a transaction needs the {} permission (for its department)",
        Permission::BusinessSubmit
    )))
}

/// Who a transaction comes from: idempotency keys are unique per `key`.
struct Submitter {
    key: String,
    user: Option<Uuid>,
    app: Option<Uuid>,
}

/// The idempotent core, inside the caller's work (also used for built-in types). A replayed
/// key changes nothing, so it appends no event.
async fn submit_in(
    work: &Work,
    kind: &transaction_type::Model,
    submitter: &Submitter,
    key: &str,
    payload: serde_json::Value,
    currency: &str,
) -> AppResult<business_transaction::Model> {
    let source = submitter.key.as_str();
    let source_user = submitter.user;
    let hash = payload_hash(&payload);
    if !try_lock_in_transaction(work, &format!("idempotency:{source}:{key}")).await? {
        return Err(AppError::Conflict(
            "a transaction with this key is still being processed".into(),
        ));
    }
    if let Some(existing) = business_transaction::Entity::find()
        .filter(business_transaction::Column::SourceKey.eq(source))
        .filter(business_transaction::Column::IdempotencyKey.eq(key))
        .one(work)
        .await?
    {
        if existing.payload_hash != hash || existing.type_id != kind.id {
            return Err(AppError::Conflict(
                "this idempotency key was used with a different type or payload".into(),
            ));
        }
        return Ok(existing);
    }
    let now = Utc::now();
    let history = with_status(
        &with_status(&serde_json::json!([]), Status::Received, None),
        Status::Validated,
        None,
    );
    let row = business_transaction::ActiveModel {
        id: Set(Uuid::now_v7()),
        type_id: Set(kind.id),
        payload: Set(payload.clone()),
        payload_hash: Set(hash),
        source_key: Set(source.to_owned()),
        source_user_id: Set(submitter.user),
        source_app_id: Set(submitter.app),
        idempotency_key: Set(key.to_owned()),
        status: Set(Status::Validated.as_str().to_owned()),
        history: Set(history),
        result: Set(None),
        error: Set(None),
        approval_instance_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(work)
    .await
    .map_err(|e| {
        AppError::from_unique_violation(e, "a transaction with this key is still being processed")
    })?;
    changed(
        work,
        &row,
        &kind.code,
        TransactionEventKind::Submitted,
        source_user,
    );
    match (kind.approval_flow_id, source_user) {
        (Some(flow), Some(initiator)) => {
            let started = approvals::start(
                work,
                flow,
                SubjectRef {
                    kind: SUBJECT_KIND,
                    id: row.id,
                },
                facts_for(&payload, initiator),
            )
            .await?;
            let mut active: business_transaction::ActiveModel = row.clone().into();
            active.approval_instance_id = Set(Some(started.instance.id));
            active.history = Set(with_status(&row.history, Status::PendingApproval, None));
            active.status = Set(Status::PendingApproval.as_str().to_owned());
            let waiting = active.update(work).await?;
            changed(
                work,
                &waiting,
                &kind.code,
                TransactionEventKind::PendingApproval,
                source_user,
            );
            if started.status == crate::domains::approvals::model::InstanceStatus::Approved {
                execute(work, waiting, kind, currency, source_user).await
            } else {
                Ok(waiting)
            }
        }
        _ => execute(work, row, kind, currency, source_user).await,
    }
}

/// Runs the route once. A failure (a refused posting, say) is recorded on the transaction,
/// not thrown: the envelope and its history stay, with status FAILED, and the route's writes
/// and events are undone with its savepoint.
async fn execute(
    work: &Work,
    row: business_transaction::Model,
    kind: &transaction_type::Model,
    currency: &str,
    actor_id: Option<Uuid>,
) -> AppResult<business_transaction::Model> {
    let history = with_status(&row.history, Status::Executing, None);
    let outcome = work
        .attempt(async |attempt| route(attempt, &row, kind, currency).await)
        .await;
    let (status, result, error) = match outcome {
        Ok(Routed::Done(result)) => (Status::Completed, Some(result), None),
        Ok(Routed::Queued(result)) => (Status::Executing, Some(result), None),
        Err(AppError::Internal(cause)) => return Err(AppError::Internal(cause)),
        Err(err) => (Status::Failed, None, Some(err.public_message().to_owned())),
    };
    let mut active: business_transaction::ActiveModel = row.into();
    active.history = Set(with_status(&history, status, error.as_deref()));
    active.status = Set(status.as_str().to_owned());
    active.result = Set(result);
    active.error = Set(error);
    active.updated_at = Set(Utc::now());
    let done = active.update(work).await?;
    let code = &kind.code;
    changed(work, &done, code, TransactionEventKind::Executing, actor_id);
    match status {
        Status::Completed => changed(work, &done, code, TransactionEventKind::Completed, actor_id),
        Status::Failed => changed(work, &done, code, TransactionEventKind::Failed, actor_id),
        _ => {}
    }
    Ok(done)
}

/// The journal entry a FINANCE_POSTING payload makes, checked without touching storage: a
/// payload that cannot be posted is refused at submission, not discovered at execution.
fn posting_for(
    kind: &transaction_type::Model,
    payload: &serde_json::Value,
    key: &str,
    currency: &str,
) -> AppResult<NewEntry> {
    let rule = PostingRule::parse(
        kind.posting_rule
            .as_ref()
            .unwrap_or(&serde_json::Value::Null),
    )?;
    let exponent = currency_exponent(currency);
    let uuid_at = |field: &Option<String>| -> AppResult<Option<Uuid>> {
        match field {
            Some(field) => match payload.get(field) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(value) => value
                    .as_str()
                    .and_then(|s| Uuid::parse_str(s).ok())
                    .map(Some)
                    .ok_or_else(|| AppError::bad_field("payload", format!("/{field}: not an id"))),
            },
            None => Ok(None),
        }
    };
    let mut lines = Vec::new();
    for line in &rule.lines {
        let amount = amount_at(payload, &line.amount_field, exponent)?;
        if amount <= 0 {
            return Err(AppError::bad_field(
                "payload",
                format!("/{}: amounts are positive", line.amount_field),
            ));
        }
        lines.push(PostingLine {
            account_code: line.account.clone(),
            debit_minor: if line.side == Side::Debit { amount } else { 0 },
            credit_minor: if line.side == Side::Credit { amount } else { 0 },
            cost_center_id: uuid_at(&line.cost_center_field)?,
            task_id: uuid_at(&line.task_field)?,
        });
    }
    let entry = NewEntry {
        memo: format!("{} {key}", kind.code),
        posting_date: Utc::now().date_naive(),
        lines,
    };
    entry
        .validate()
        .map_err(|e| AppError::bad_field("payload", e.public_message().to_owned()))?;
    Ok(entry)
}

/// What the approval engine may read of a payload: its amounts (exact decimal text) for
/// conditions, and its department for approver rules. Only decimal strings and whole JSON
/// numbers are exact; a fractional JSON number has been through a binary float, so it is left
/// out like any unreadable value, and a step conditioned on it applies.
fn facts_for(payload: &serde_json::Value, initiator: Uuid) -> SubjectFacts {
    let mut facts = SubjectFacts {
        initiator_id: initiator,
        ..SubjectFacts::default()
    };
    if let Some(fields) = payload.as_object() {
        for (name, value) in fields {
            let text = match value {
                serde_json::Value::String(s) => s
                    .parse::<crate::platform::money::Decimal>()
                    .ok()
                    .map(|d| d.to_string()),
                serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
                _ => None,
            };
            if let Some(text) = text {
                facts.numbers.insert(name.clone(), text);
            }
        }
        facts.department_id = ["departmentId", "costCenterId"].iter().find_map(|k| {
            fields
                .get(*k)?
                .as_str()
                .and_then(|s| Uuid::parse_str(s).ok())
        });
    }
    facts
}

/// What routing did: finished the work, or handed it to a job that finishes it later.
enum Routed {
    Done(serde_json::Value),
    Queued(serde_json::Value),
}

async fn route(
    work: &Work,
    row: &business_transaction::Model,
    kind: &transaction_type::Model,
    currency: &str,
) -> AppResult<Routed> {
    match Route::parse(&kind.route) {
        Some(Route::FinancePosting) => {
            let entry = posting_for(kind, &row.payload, &row.idempotency_key, currency)?;
            let posted_by = row.source_user_id.unwrap_or(Uuid::nil());
            let posted = finance::post_for_transaction(work, posted_by, &entry, row.id).await?;
            Ok(Routed::Done(
                serde_json::json!({ "journalEntryId": posted.entry.id, "warnings": posted.warnings }),
            ))
        }
        Some(route @ (Route::AppForward | Route::DataProcess)) => {
            // The job is the outbox: it commits with the transaction, or neither does, and it
            // reads the transaction itself, so no copy of the payload is kept beside it.
            let topic = format!("business.{}", route.as_str().to_lowercase());
            let job_id = routed::enqueue(work, route, row.id).await?;
            Ok(Routed::Queued(
                serde_json::json!({ "queued": topic, "jobId": job_id }),
            ))
        }
        None => Err(AppError::internal(anyhow::anyhow!(
            "unknown route {}",
            kind.route
        ))),
    }
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    id: TransactionId,
) -> AppResult<business_transaction::Model> {
    let me = viewer.user()?;
    let row = business_transaction::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("transaction"))?;
    let audience = TransactionAudience {
        submitter: row.source_user_id,
    };
    if !audience.admits(me) {
        return Err(AppError::not_found("transaction"));
    }
    Ok(row)
}

/// The viewer's own transactions, or everyone's for `finance.read` holders; newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    viewer: &Viewer,
    status: Option<Status>,
    offset: u64,
    first: u64,
) -> AppResult<(Vec<business_transaction::Model>, u64)> {
    use sea_orm::PaginatorTrait;
    let me = viewer.user()?;
    if !crate::domains::business::model::sees_transactions(me) {
        return Err(AppError::Forbidden(
            "this app's scopes do not include BUSINESS_READ".into(),
        ));
    }
    let mut query = business_transaction::Entity::find();
    if !crate::domains::business::model::reads_every_transaction(me) {
        query = query.filter(business_transaction::Column::SourceUserId.eq(me.id));
    }
    if let Some(status) = status {
        query = query.filter(business_transaction::Column::Status.eq(status.as_str()));
    }
    let total = query.clone().count(db).await?;
    let rows = query
        .order_by_desc(business_transaction::Column::Id)
        .offset(offset)
        .limit(first)
        .all(db)
        .await?;
    Ok((rows, total))
}

pub async fn type_of<C: ConnectionTrait>(
    db: &C,
    type_id: Uuid,
) -> AppResult<Option<transaction_type::Model>> {
    Ok(transaction_type::Entity::find_by_id(type_id)
        .one(db)
        .await?)
}

/// Approval-gated transactions execute only on approval; a rejection fails them.
pub struct TransactionApprovals {
    pub currency: String,
}

#[async_trait]
impl ApprovalSubject for TransactionApprovals {
    fn kind(&self) -> &'static str {
        SUBJECT_KIND
    }

    /// A transaction's title: its type's name (the source key can name the submitter).
    async fn titles(
        &self,
        db: &sea_orm::DatabaseConnection,
        viewer: &Viewer,
        ids: &[Uuid],
    ) -> AppResult<std::collections::HashMap<Uuid, String>> {
        let Ok(me) = viewer.user() else {
            return Ok(Default::default());
        };
        let rows: Vec<business_transaction::Model> = business_transaction::Entity::find()
            .filter(business_transaction::Column::Id.is_in(ids.iter().copied()))
            .all(db)
            .await?
            .into_iter()
            .filter(|row| {
                TransactionAudience {
                    submitter: row.source_user_id,
                }
                .admits(me)
            })
            .collect();
        let names: std::collections::HashMap<Uuid, String> = transaction_type::Entity::find()
            .filter(transaction_type::Column::Id.is_in(rows.iter().map(|r| r.type_id)))
            .all(db)
            .await?
            .into_iter()
            .map(|t| (t.id, t.name))
            .collect();
        Ok(rows
            .into_iter()
            .filter_map(|row| Some((row.id, names.get(&row.type_id)?.clone())))
            .collect())
    }

    async fn on_verdict(
        &self,
        work: &Work,
        subject_id: Uuid,
        verdict: &Verdict,
        decided_by: Uuid,
    ) -> AppResult<()> {
        let row = business_transaction::Entity::find_by_id(subject_id)
            .lock_exclusive()
            .one(work)
            .await?
            .ok_or_else(|| {
                AppError::internal(anyhow::anyhow!("transaction {subject_id} vanished"))
            })?;
        if Status::parse(&row.status) != Some(Status::PendingApproval) {
            return Ok(());
        }
        let kind = type_of(work, row.type_id)
            .await?
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("transaction without type")))?;
        match verdict {
            Verdict::Approved => {
                let mut active: business_transaction::ActiveModel = row.clone().into();
                active.history = Set(with_status(&row.history, Status::Approved, None));
                active.status = Set(Status::Approved.as_str().to_owned());
                let approved = active.update(work).await?;
                let actor = Some(decided_by);
                changed(
                    work,
                    &approved,
                    &kind.code,
                    TransactionEventKind::Approved,
                    actor,
                );
                execute(work, approved, &kind, &self.currency, actor).await?;
            }
            Verdict::Rejected { reason } => {
                let mut active: business_transaction::ActiveModel = row.clone().into();
                active.history = Set(with_status(&row.history, Status::Failed, Some(reason)));
                active.status = Set(Status::Failed.as_str().to_owned());
                active.error = Set(Some(format!("rejected: {reason}")));
                let rejected = active.update(work).await?;
                let actor = Some(decided_by);
                changed(
                    work,
                    &rejected,
                    &kind.code,
                    TransactionEventKind::Rejected,
                    actor,
                );
            }
        }
        Ok(())
    }
}

/// A completed task's cash output, as a transaction of the built-in `TASK_OUTPUT` type inside
/// the completing transaction: revenue for the task's department, the task on the lines. The
/// idempotency key is the task, so completing, re-confirming or retrying posts once.
pub async fn record_task_output(
    work: &Work,
    task_id: Uuid,
    department_id: Option<Uuid>,
    amount_minor: i64,
    currency: &str,
) -> AppResult<business_transaction::Model> {
    let kind = ensure_task_output_type(work).await?;
    let exponent = currency_exponent(currency);
    let amount = crate::platform::money::Decimal::from_minor(amount_minor, exponent).to_string();
    let payload =
        serde_json::json!({ "taskId": task_id, "departmentId": department_id, "amount": amount });
    let system = Submitter {
        key: "system:tasks".into(),
        user: None,
        app: None,
    };
    submit_in(
        work,
        &kind,
        &system,
        &format!("task.output:{task_id}"),
        payload,
        currency,
    )
    .await
}

async fn ensure_task_output_type(work: &Work) -> AppResult<transaction_type::Model> {
    // First completions on several nodes at once take turns creating the built-in type.
    crate::platform::db::lock_in_transaction(work, "builtin:task-output").await?;
    if let Some(kind) = type_by_code(work, TASK_OUTPUT_TYPE).await? {
        return Ok(kind);
    }
    finance::ensure_account(work, "1200", "Task output receivable", AccountType::Asset).await?;
    finance::ensure_account(work, "4100", "Task output revenue", AccountType::Revenue).await?;
    let rule = serde_json::json!({ "lines": [
        { "account": "1200", "side": "DEBIT", "amountField": "amount", "taskField": "taskId" },
        { "account": "4100", "side": "CREDIT", "amountField": "amount", "costCenterField": "departmentId", "taskField": "taskId" }
    ] });
    Ok(transaction_type::ActiveModel {
        id: Set(Uuid::now_v7()),
        code: Set(TASK_OUTPUT_TYPE.to_owned()),
        name: Set("Task cash output".into()),
        payload_schema: Set(
            serde_json::json!({ "type": "object", "required": ["taskId", "amount"] }),
        ),
        approval_flow_id: Set(None),
        route: Set(Route::FinancePosting.as_str().to_owned()),
        posting_rule: Set(Some(rule)),
        forward_url: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(work)
    .await?)
}
