//! Approval DataLoaders, built per request.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use entities::{approval_decision, approval_flow, approval_instance, approval_step};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::service;
use crate::error::loader_db_error as db_error;

pub struct InstanceLoader(pub DatabaseConnection);

impl Loader<Uuid> for InstanceLoader {
    type Value = approval_instance::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(service::instances_by_id(&self.0, keys)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|i| (i.id, i))
            .collect())
    }
}

pub struct FlowLoader(pub DatabaseConnection);

impl Loader<Uuid> for FlowLoader {
    type Value = approval_flow::Model;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        Ok(approval_flow::Entity::find()
            .filter(approval_flow::Column::Id.is_in(keys.iter().copied()))
            .all(&self.0)
            .await?
            .into_iter()
            .map(|f| (f.id, f))
            .collect())
    }
}

/// A flow's steps in order, keyed by flow id.
pub struct StepsLoader(pub DatabaseConnection);

impl Loader<Uuid> for StepsLoader {
    type Value = Vec<approval_step::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let mut by_flow: HashMap<Uuid, Self::Value> = HashMap::new();
        for step in service::steps_of(&self.0, keys).await.map_err(db_error)? {
            by_flow.entry(step.flow_id).or_default().push(step);
        }
        Ok(by_flow)
    }
}

/// An approval's review records in the order they were made, keyed by approval id.
pub struct DecisionsLoader(pub DatabaseConnection);

impl Loader<Uuid> for DecisionsLoader {
    type Value = Vec<approval_decision::Model>;
    type Error = Arc<DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let mut by_instance: HashMap<Uuid, Self::Value> = HashMap::new();
        for decision in service::decisions_of(&self.0, keys)
            .await
            .map_err(db_error)?
        {
            by_instance
                .entry(decision.instance_id)
                .or_default()
                .push(decision);
        }
        Ok(by_instance)
    }
}

/// What an approval is about, by (subject kind, subject id), through the subject's domain.
pub struct SubjectTitleLoader {
    db: DatabaseConnection,
    subjects: service::ApprovalSubjects,
    viewer: crate::auth::Viewer,
}

impl Loader<(String, Uuid)> for SubjectTitleLoader {
    type Value = String;
    type Error = Arc<DbErr>;

    async fn load(
        &self,
        keys: &[(String, Uuid)],
    ) -> Result<HashMap<(String, Uuid), Self::Value>, Self::Error> {
        self.subjects
            .titles(&self.db, &self.viewer, keys)
            .await
            .map_err(db_error)
    }
}

pub struct ApprovalLoaders {
    pub subject_titles: DataLoader<SubjectTitleLoader>,
    pub instances: DataLoader<InstanceLoader>,
    pub flows: DataLoader<FlowLoader>,
    pub steps: DataLoader<StepsLoader>,
    pub decisions: DataLoader<DecisionsLoader>,
}

impl ApprovalLoaders {
    pub fn new(
        db: &DatabaseConnection,
        subjects: &service::ApprovalSubjects,
        viewer: &crate::auth::Viewer,
    ) -> Self {
        Self {
            subject_titles: DataLoader::new(
                SubjectTitleLoader {
                    db: db.clone(),
                    subjects: subjects.clone(),
                    viewer: viewer.clone(),
                },
                tokio::spawn,
            ),
            instances: DataLoader::new(InstanceLoader(db.clone()), tokio::spawn),
            flows: DataLoader::new(FlowLoader(db.clone()), tokio::spawn),
            steps: DataLoader::new(StepsLoader(db.clone()), tokio::spawn),
            decisions: DataLoader::new(DecisionsLoader(db.clone()), tokio::spawn),
        }
    }
}
