//! Typed access to what the edge puts into each request: the app, the viewer, the loaders.

use std::any::Any;
use std::sync::Arc;

use async_graphql::Context;
use sea_orm::DbErr;

use crate::app::AppState;
use crate::auth::Viewer;
use crate::error::AppError;
use crate::platform::rate_limit::ClientAddr;

/// What a resolver works with: this node, and who is asking.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    pub app: &'a AppState,
    pub viewer: &'a Viewer,
}

impl Caller<'_> {
    /// The read connection, for queries.
    pub fn db(&self) -> &sea_orm::DatabaseConnection {
        &self.app.db.conn
    }

    /// One unit of work for this request (see `AppState::write`).
    pub async fn write<T>(
        &self,
        step: impl AsyncFnOnce(&crate::platform::work::Work) -> crate::error::AppResult<T>,
    ) -> crate::error::AppResult<T> {
        self.app.write(step).await
    }
}

pub trait ContextExt {
    /// The app and the viewer together: what nearly every resolver starts from.
    fn caller(&self) -> Result<Caller<'_>, AppError>;
    fn app(&self) -> Result<&AppState, AppError>;
    fn viewer(&self) -> Result<&Viewer, AppError>;
    /// The address the request came from (a trusted proxy's client, else the peer).
    fn client(&self) -> Result<ClientAddr, AppError>;
    fn loaders<T: Any + Send + Sync>(&self) -> Result<&T, AppError>;
}

fn missing(what: &str) -> AppError {
    AppError::internal(anyhow::anyhow!("{what} missing from the GraphQL context"))
}

impl ContextExt for Context<'_> {
    fn caller(&self) -> Result<Caller<'_>, AppError> {
        Ok(Caller {
            app: self.app()?,
            viewer: self.viewer()?,
        })
    }

    fn app(&self) -> Result<&AppState, AppError> {
        self.data::<AppState>().map_err(|_| missing("AppState"))
    }

    fn viewer(&self) -> Result<&Viewer, AppError> {
        self.data::<Viewer>().map_err(|_| missing("Viewer"))
    }

    fn client(&self) -> Result<ClientAddr, AppError> {
        self.data::<ClientAddr>()
            .copied()
            .map_err(|_| missing("ClientAddr"))
    }

    fn loaders<T: Any + Send + Sync>(&self) -> Result<&T, AppError> {
        self.data::<Lazy<T>>()
            .map(Lazy::get)
            .map_err(|_| missing(std::any::type_name::<T>()))
    }
}

/// One domain's loaders for a request, built on first use: most operations touch a domain or
/// two, and a websocket holds its loaders for hours.
pub struct Lazy<T> {
    built: std::sync::OnceLock<T>,
    build: Box<dyn Fn() -> T + Send + Sync>,
}

impl<T> Lazy<T> {
    pub fn new(build: impl Fn() -> T + Send + Sync + 'static) -> Self {
        Self {
            built: std::sync::OnceLock::new(),
            build: Box::new(build),
        }
    }

    pub fn get(&self) -> &T {
        self.built.get_or_init(&self.build)
    }
}

/// DataLoader errors are shared between waiters, hence the `Arc`.
pub fn loader_error(err: Arc<DbErr>) -> AppError {
    AppError::internal(anyhow::anyhow!("loader: {err}"))
}
