//! The department tree: creating and moving departments without cycles.

use chrono::Utc;
use entities::{department, user};
use sea_orm::sea_query::LockType;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use uuid::Uuid;

use crate::auth::{Permission, Viewer};
use crate::domains::identity::model::{
    department_path, would_make_cycle, DepartmentChanges, DepartmentId, IdentityEvent,
    IdentityEventKind, NewDepartment,
};
use crate::error::{AppError, AppResult};
use crate::platform::db::lock_in_transaction;
use crate::platform::work::Work;

pub async fn create_department(
    work: &Work,
    viewer: &Viewer,
    input: NewDepartment,
) -> AppResult<department::Model> {
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    let id = DepartmentId(Uuid::now_v7());
    // A child created while its parent moves must see the parent's final path.
    lock_in_transaction(work, "department-tree").await?;
    let parent_path = match input.parent_id {
        Some(parent) => Some(
            department::Entity::find_by_id(parent.0)
                .one(work)
                .await?
                .ok_or_else(|| AppError::bad_field("parentId", "no such parent department"))?
                .path,
        ),
        None => None,
    };
    let now = Utc::now();
    let created = department::ActiveModel {
        id: Set(id.0),
        name: Set(input.name),
        parent_id: Set(input.parent_id.map(|p| p.0)),
        path: Set(department_path(parent_path.as_deref(), id)),
        head_user_id: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(work)
    .await?;
    work.emit(&IdentityEvent::new(
        IdentityEventKind::DepartmentChanged,
        created.id,
        Some(me.id),
    ));
    Ok(created)
}

pub async fn update_department(
    work: &Work,
    viewer: &Viewer,
    id: DepartmentId,
    changes: DepartmentChanges,
) -> AppResult<department::Model> {
    let me = viewer.user()?;
    me.require_global(Permission::Admin)?;
    lock_in_transaction(work, "department-tree").await?;
    let current = department::Entity::find_by_id(id.0)
        .one(work)
        .await?
        .ok_or_else(|| AppError::not_found("department"))?;
    let mut active: department::ActiveModel = current.clone().into();
    if let Some(name) = changes.name {
        active.name = Set(name);
    }
    if let Some(head) = changes.head_user_id {
        if let Some(head) = head {
            user::Entity::find_by_id(head.0)
                .one(work)
                .await?
                .ok_or_else(|| AppError::bad_field("headUserId", "no such user"))?;
        }
        active.head_user_id = Set(head.map(|h| h.0));
    }
    if let Some(new_parent) = changes.parent_id {
        let new_parent_path = match new_parent {
            Some(parent) => {
                let parent = department::Entity::find_by_id(parent.0)
                    .one(work)
                    .await?
                    .ok_or_else(|| AppError::bad_field("parentId", "no such parent department"))?;
                if would_make_cycle(&current.path, &parent.path) {
                    return Err(AppError::bad_field(
                        "parentId",
                        "a department cannot move under itself or its own descendant",
                    ));
                }
                Some(parent.path)
            }
            None => None,
        };
        let new_path = department_path(new_parent_path.as_deref(), id);
        if new_path != current.path {
            let subtree = department::Entity::find()
                .filter(department::Column::Path.starts_with(current.path.as_str()))
                .lock(LockType::Update)
                .all(work)
                .await?;
            for node in subtree.into_iter().filter(|d| d.id != current.id) {
                let moved = format!("{new_path}{}", &node.path[current.path.len()..]);
                let mut node: department::ActiveModel = node.into();
                node.path = Set(moved);
                node.update(work).await?;
            }
        }
        active.parent_id = Set(new_parent.map(|p| p.0));
        active.path = Set(new_path);
    }
    active.updated_at = Set(Utc::now());
    let updated = active.update(work).await?;
    work.emit(&IdentityEvent::new(
        IdentityEventKind::DepartmentChanged,
        updated.id,
        Some(me.id),
    ));
    Ok(updated)
}
