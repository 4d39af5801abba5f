//! Portraits over GraphQL: `User.profile`, resolved here for identity's `User` type.

use async_graphql::{Context, Result, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::model::{self, ProfileWindow};
use super::service;
use crate::graphql::context::ContextExt;
use crate::graphql::scalars::Money;
use crate::platform::money::{currency_exponent, Decimal};

/// Hours from a task's approval to its completion.
#[derive(SimpleObject)]
pub struct CycleTimeHours {
    p50: Option<f64>,
    p85: Option<f64>,
}

/// Hours from a step being the approver's to decide to their decision.
#[derive(SimpleObject)]
pub struct DecisionHours {
    avg: Option<f64>,
    p50: Option<f64>,
}

/// One person's work over `[from, to)`; every formula is in the README.
#[derive(SimpleObject)]
pub struct UserProfile {
    /// Open tasks they execute that were created in the window.
    tasks_open: i64,
    /// Tasks they execute completed in the window.
    tasks_done: i64,
    /// `onTimeCount / doneWithDeadline`; null below 3 tasks with a deadline.
    on_time_rate: Option<f64>,
    on_time_count: i64,
    done_with_deadline: i64,
    throughput_per_week: f64,
    cycle_time_hours: CycleTimeHours,
    merit_total: i64,
    cash_output_total: Money,
    /// Open tasks they execute now.
    current_workload: i64,
    /// Approvals waiting on their decision now.
    approvals_pending: u64,
    approval_decision_hours: DecisionHours,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    as_of: DateTime<Utc>,
}

impl UserProfile {
    fn new(profile: model::Profile, exponent: u32) -> Self {
        Self {
            tasks_open: profile.tasks_open,
            tasks_done: profile.tasks_done,
            on_time_rate: profile.on_time_rate,
            on_time_count: profile.on_time_count,
            done_with_deadline: profile.done_with_deadline,
            throughput_per_week: profile.throughput_per_week,
            cycle_time_hours: CycleTimeHours {
                p50: profile.cycle_time_hours.p50,
                p85: profile.cycle_time_hours.p85,
            },
            merit_total: profile.merit_total,
            cash_output_total: Money(Decimal::from_wide_minor(
                profile.cash_output_minor.into(),
                exponent,
            )),
            current_workload: profile.current_workload,
            approvals_pending: profile.approvals_pending,
            approval_decision_hours: DecisionHours {
                avg: profile.approval_decision_hours.avg,
                p50: profile.approval_decision_hours.p50,
            },
            from: profile.window.from(),
            to: profile.window.to(),
            as_of: profile.as_of,
        }
    }
}

/// `User.profile`: the portrait of `user_id`, or `NOT_FOUND` for a viewer who may not see it.
pub async fn profile_field(
    ctx: &Context<'_>,
    user_id: Uuid,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<UserProfile> {
    let caller = ctx.caller()?;
    let window = ProfileWindow::new(from, to, Utc::now())?;
    let profile = service::profile_of(caller.db(), caller.viewer, user_id, window).await?;
    Ok(UserProfile::new(
        profile,
        currency_exponent(&caller.app.config.currency),
    ))
}
