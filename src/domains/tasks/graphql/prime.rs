//! Priming the per-request loaders for a page of tasks from the query's look-ahead.
//!
//! DataLoader batches by a short timer, so on a busy node a wide page (50 tasks × 10 subtasks)
//! can split into many batches. A list resolver instead reads what the query selects and fetches
//! each relation once for the whole page, feeding the loaders' request cache: the statement
//! count of a page no longer depends on its width or on timing.

use std::collections::HashSet;

use async_graphql::{Context, Lookahead, Result, Value};
use entities::task;
use uuid::Uuid;

use crate::domains::identity::loaders::IdentityLoaders;
use crate::domains::identity::service as identity;
use crate::domains::tasks::loaders::{PageKey, TaskLoaders};
use crate::domains::tasks::service;
use crate::graphql::context::ContextExt;
use crate::graphql::pagination::page_size;

use super::decode_cursor;

/// The `(first, offset)` windows a connection field is asked for, once per alias.
fn windows(field: &Lookahead<'_>) -> Result<Vec<(u64, u64)>> {
    let mut found = Vec::new();
    for selection in field.selection_fields() {
        let mut first = None;
        let mut after = None;
        for (name, value) in selection.arguments()? {
            match (name.as_str(), value) {
                ("first", Value::Number(n)) => {
                    first = n.as_i64().and_then(|n| i32::try_from(n).ok())
                }
                ("after", Value::String(s)) => after = Some(s),
                _ => {}
            }
        }
        found.push((page_size(first)?, decode_cursor(after.as_deref())?));
    }
    found.sort_unstable();
    found.dedup();
    Ok(found)
}

fn node_of<'a>(connection: &Lookahead<'a>) -> Vec<Lookahead<'a>> {
    vec![
        connection.field("edges").field("node"),
        connection.field("nodes"),
    ]
}

/// What priming needs of a task: the relations are read by these alone, so a page's children
/// are primed without copying their rows.
#[derive(Clone, Copy)]
pub struct PrimeKey {
    id: Uuid,
    department_id: Option<Uuid>,
}

impl From<&task::Model> for PrimeKey {
    fn from(task: &task::Model) -> Self {
        Self {
            id: task.id,
            department_id: task.department_id,
        }
    }
}

pub fn keys_of(tasks: &[task::Model]) -> Vec<PrimeKey> {
    tasks.iter().map(PrimeKey::from).collect()
}

pub async fn prime(ctx: &Context<'_>, node: &[Lookahead<'_>], tasks: &[PrimeKey]) -> Result<()> {
    if tasks.is_empty() {
        return Ok(());
    }
    let selects = |name: &str| node.iter().any(|n| n.field(name).exists());
    let caller = ctx.caller()?;
    let db = caller.db();
    let loaders = ctx.loaders::<TaskLoaders>()?;
    let people = ctx.loaders::<IdentityLoaders>()?;
    let ids: Vec<Uuid> = tasks.iter().map(|t| t.id).collect();

    if selects("executors") {
        let mut found = service::executors_by_task(db, &ids).await?;
        loaders
            .executors
            .feed_many(
                ids.iter()
                    .map(|id| (*id, found.remove(id).unwrap_or_default())),
            )
            .await;
    }
    if selects("department") {
        let wanted: HashSet<Uuid> = tasks.iter().filter_map(|t| t.department_id).collect();
        let found =
            identity::departments_by_id(db, &wanted.into_iter().collect::<Vec<_>>()).await?;
        people
            .departments
            .feed_many(found.into_iter().map(|d| (d.id, d)))
            .await;
    }
    for field in node.iter().map(|n| n.field("subtasks")) {
        for (first, offset) in windows(&field)? {
            let mut pages = service::subtask_pages(db, &ids, first, offset).await?;
            let children: Vec<PrimeKey> = pages
                .values()
                .flat_map(|p| p.items.iter().map(PrimeKey::from))
                .collect();
            loaders
                .subtasks
                .feed_many(ids.iter().filter_map(|id| {
                    Some((
                        PageKey {
                            parent: *id,
                            first,
                            offset,
                        },
                        pages.remove(id)?,
                    ))
                }))
                .await;
            Box::pin(prime(ctx, &node_of(&field), &children)).await?;
        }
    }
    for field in node.iter().map(|n| n.field("comments")) {
        for (first, offset) in windows(&field)? {
            let mut pages = service::comment_pages(db, &ids, first, offset).await?;
            let selects_author = node_of(&field).iter().any(|n| n.field("author").exists());
            if selects_author {
                let authors: HashSet<Uuid> = pages
                    .values()
                    .flat_map(|p| p.items.iter().map(|c| c.author_id))
                    .collect();
                let found =
                    identity::users_by_id(db, &authors.into_iter().collect::<Vec<_>>()).await?;
                people
                    .users
                    .feed_many(found.into_iter().map(|u| (u.id, u)))
                    .await;
            }
            loaders
                .comments
                .feed_many(ids.iter().filter_map(|id| {
                    Some((
                        PageKey {
                            parent: *id,
                            first,
                            offset,
                        },
                        pages.remove(id)?,
                    ))
                }))
                .await;
        }
    }
    Ok(())
}

/// The look-ahead of the nodes of the connection the resolver is producing.
pub fn nodes<'a>(ctx: &'a Context<'_>) -> Vec<Lookahead<'a>> {
    node_of(&ctx.look_ahead())
}
