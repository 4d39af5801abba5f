//! The approval engine's rules: flows, starting an approval for a subject, deciding, delegating,
//! and reading progress and cycle time.

mod delegation;
mod engine;
mod escalation;
mod figures;
mod flows;
mod reading;

pub use delegation::*;
pub use engine::*;
pub use escalation::*;
pub use figures::*;
pub use flows::*;
pub use reading::*;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use entities::{approval_instance, approval_step};
use uuid::Uuid;

use super::model::{ApproverRule, Condition, Verdict};
use crate::error::{AppError, AppResult};
use crate::platform::work::Work;

/// A domain whose records go through approval. The engine calls it, inside the deciding unit
/// of work, when an approval ends; its changes and events join that work.
#[async_trait]
pub trait ApprovalSubject: Send + Sync {
    fn kind(&self) -> &'static str;

    async fn on_verdict(
        &self,
        work: &Work,
        subject_id: Uuid,
        verdict: &Verdict,
        decided_by: Uuid,
    ) -> AppResult<()>;

    /// Short titles of those records `ids` that `viewer` may see under the subject's own rule
    /// (what an approver reads in the inbox). Seeing an approval is not enough: an app with
    /// only `APPROVALS_READ`, or a global approval reader, need not see its task.
    async fn titles(
        &self,
        db: &sea_orm::DatabaseConnection,
        viewer: &crate::auth::Viewer,
        ids: &[Uuid],
    ) -> AppResult<HashMap<Uuid, String>>;
}

/// The subjects the engine knows, by kind; assembled once in `app.rs`.
#[derive(Clone, Default)]
pub struct ApprovalSubjects(Arc<HashMap<&'static str, Arc<dyn ApprovalSubject>>>);

impl ApprovalSubjects {
    pub fn new(subjects: Vec<Arc<dyn ApprovalSubject>>) -> Self {
        Self(Arc::new(
            subjects.into_iter().map(|s| (s.kind(), s)).collect(),
        ))
    }

    /// Titles of subjects of any kinds, by (kind, id), under each subject's own read rule.
    pub async fn titles(
        &self,
        db: &sea_orm::DatabaseConnection,
        viewer: &crate::auth::Viewer,
        keys: &[(String, Uuid)],
    ) -> AppResult<HashMap<(String, Uuid), String>> {
        let mut by_kind: HashMap<&str, Vec<Uuid>> = HashMap::new();
        for (kind, id) in keys {
            by_kind.entry(kind.as_str()).or_default().push(*id);
        }
        let mut titles = HashMap::new();
        for (kind, ids) in by_kind {
            for (id, title) in self.get(kind)?.titles(db, viewer, &ids).await? {
                titles.insert((kind.to_owned(), id), title);
            }
        }
        Ok(titles)
    }

    pub fn get(&self, kind: &str) -> AppResult<&Arc<dyn ApprovalSubject>> {
        self.0.get(kind).ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("no approval subject registered for {kind}"))
        })
    }
}

fn decode_positions(instance: &approval_instance::Model) -> Vec<i32> {
    serde_json::from_value(instance.step_positions.clone()).unwrap_or_default()
}

pub fn step_rule(step: &approval_step::Model) -> Option<ApproverRule> {
    if let Some(user) = step.approver_user_id {
        Some(ApproverRule::User(user))
    } else if let Some(role) = &step.approver_role {
        Some(ApproverRule::Role(role.clone()))
    } else if step.department_head {
        Some(ApproverRule::DepartmentHead)
    } else {
        step.approver_field.clone().map(ApproverRule::Field)
    }
}

pub fn step_condition(step: &approval_step::Model) -> Option<Condition> {
    let op = super::model::CompareOp::parse(step.condition_op.as_deref()?)?;
    Some(Condition {
        field: step.condition_field.clone()?,
        op,
        value: step.condition_value.as_deref()?.parse().ok()?,
    })
}
