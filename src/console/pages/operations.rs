//! Operations for `scheduler.manage` holders: queues with their depth, paused or running;
//! jobs with filters, retry and cancel; the nodes; all live from the event log's job changes.

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::account::Nothing;
use crate::auth::Permission;
use crate::console::layout::{self, button_form};
use crate::console::session::{Form, Signed};
use crate::domains::scheduling::service as scheduling;
use crate::error::{AppError, AppResult};
use crate::platform::scheduler::admin::JobFilter;
use crate::platform::scheduler::JobState;

const JOB_PAGE: u64 = 50;
const FILTER_MAX: usize = 200;

pub fn operates(signed: &Signed) -> bool {
    signed.me.has_global(Permission::SchedulerManage)
}

#[derive(Deserialize, Default)]
pub struct JobSearch {
    queue: Option<String>,
    state: Option<String>,
    kind: Option<String>,
    before: Option<String>,
}

impl JobSearch {
    fn text(raw: &Option<String>) -> Option<String> {
        raw.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    fn filter(&self) -> AppResult<JobFilter> {
        for (field, value) in [("queue", &self.queue), ("kind", &self.kind)] {
            if value.as_ref().is_some_and(|v| v.len() > FILTER_MAX) {
                return Err(AppError::bad_field(field, "at most 200 characters"));
            }
        }
        let state = match Self::text(&self.state) {
            None => None,
            Some(text) => Some(
                JobState::parse(&text)
                    .ok_or_else(|| AppError::bad_field("state", "not a job state"))?,
            ),
        };
        Ok(JobFilter {
            queue: Self::text(&self.queue),
            state,
            kind: Self::text(&self.kind),
        })
    }

    fn before(&self) -> AppResult<Option<Uuid>> {
        Self::text(&self.before)
            .map(|raw| {
                Uuid::parse_str(&raw).map_err(|_| AppError::bad_field("before", "not a job id"))
            })
            .transpose()
    }
}

fn may_retry(state: &str) -> bool {
    matches!(
        JobState::parse(state),
        Some(JobState::Discarded | JobState::Cancelled)
    )
}

fn may_cancel(state: &str) -> bool {
    matches!(
        JobState::parse(state),
        Some(JobState::Scheduled | JobState::Available | JobState::Retryable | JobState::Running)
    )
}

pub async fn overview(signed: Signed, Query(search): Query<JobSearch>) -> Response {
    if !operates(&signed) {
        return layout::not_found(signed.locale);
    }
    let db = &signed.app.db.conn;
    let viewer = &signed.viewer;
    let (filter, before) = match search.filter().and_then(|f| Ok((f, search.before()?))) {
        Ok(asked) => asked,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let loaded = async {
        let queues = scheduling::queues(db, viewer).await?;
        let (jobs, total) = scheduling::jobs(db, viewer, &filter, before, JOB_PAGE).await?;
        let nodes = scheduling::nodes(db, viewer, signed.app.scheduler.settings()).await?;
        AppResult::Ok((queues, jobs, total, nodes))
    };
    let (queues, jobs, total, nodes) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let locale = signed.locale;
    let next = (jobs.len() as u64 == JOB_PAGE)
        .then(|| jobs.last().map(|j| j.id))
        .flatten();
    let content = html! {
        section aria-labelledby="queues-h" id="queues" data-live="" {
            h2 id="queues-h" { (t.queues) }
            div class="table-wrap" tabindex="0" role="region" aria-label=(t.queues) {
                table {
                    thead { tr {
                        th scope="col" { (t.name) } th scope="col" { (t.status) }
                        @for state in JobState::ALL { th scope="col" class="num" { (state.as_str()) } }
                        th scope="col" { (t.actions) }
                    } }
                    tbody {
                        @for q in &queues {
                            tr {
                                th scope="row" { (q.queue.name) }
                                td { @if q.queue.paused { (t.paused) } @else { (t.running) } }
                                @for state in JobState::ALL {
                                    td class="num" {
                                        (q.counts.iter().find(|(s, _)| *s == state).map_or(0, |(_, n)| *n))
                                    }
                                }
                                td {
                                    @let action = format!("/operations/queues/{}/{}", q.queue.name, if q.queue.paused { "resume" } else { "pause" });
                                    (button_form(&signed, &action, if q.queue.paused { t.resume } else { t.pause }, ""))
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="jobs-h" {
            h2 id="jobs-h" { (t.jobs) }
            form method="get" action="/operations" class="filters" aria-label=(t.filters) {
                div class="field" {
                    label for="queue" { (t.queue) }
                    select id="queue" name="queue" {
                        option value="" { (t.any) }
                        @for q in &queues {
                            option value=(q.queue.name) selected[filter.queue.as_deref() == Some(q.queue.name.as_str())] { (q.queue.name) }
                        }
                    }
                }
                div class="field" {
                    label for="state" { (t.status) }
                    select id="state" name="state" {
                        option value="" { (t.any) }
                        @for state in JobState::ALL {
                            option value=(state.as_str()) selected[filter.state == Some(state)] { (state.as_str()) }
                        }
                    }
                }
                div class="field" {
                    label for="kind" { (t.kind) }
                    input id="kind" name="kind" type="text" maxlength="200" value=(filter.kind.clone().unwrap_or_default());
                }
                button type="submit" { (t.apply) }
            }
            p { (total) " " (t.jobs_matching) }
            div class="table-wrap" tabindex="0" role="region" aria-label=(t.jobs) id="jobs" data-live="" {
                table {
                    thead { tr {
                        th scope="col" { (t.kind) } th scope="col" { (t.queue) }
                        th scope="col" { (t.status) } th scope="col" { (t.attempt) }
                        th scope="col" { (t.progress) } th scope="col" { (t.created) }
                        th scope="col" { (t.error) } th scope="col" { (t.actions) }
                    } }
                    tbody {
                        @for job in &jobs {
                            tr id=(format!("job-{}", job.id)) {
                                td { (job.kind) }
                                td { (job.queue) }
                                td class="job-state" { (job.state) }
                                td class="num" { (job.attempt) " / " (job.max_attempts) }
                                td {
                                    progress max="100" value=(job.progress) aria-label=(format!("{} {}", t.progress, job.kind)) {}
                                    " " (job.progress) "%"
                                    @if let Some(message) = &job.progress_message { " " span class="hint" { (message) } }
                                }
                                td { (locale.date_time(job.created_at)) }
                                td { (job.last_error.clone().unwrap_or_default()) }
                                td {
                                    @if may_retry(&job.state) {
                                        (button_form(&signed, &format!("/operations/jobs/{}/retry", job.id), t.retry, ""))
                                    }
                                    @if may_cancel(&job.state) && !job.cancel_requested {
                                        (button_form(&signed, &format!("/operations/jobs/{}/cancel", job.id), t.cancel, "danger"))
                                    }
                                    @if job.cancel_requested { span class="hint" { (t.cancel_requested) } }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = next {
                p { a href=(format!("/operations?{}", serde_urlencoded::to_string([
                    ("queue", filter.queue.clone().unwrap_or_default()),
                    ("state", filter.state.map(|s| s.as_str().to_owned()).unwrap_or_default()),
                    ("kind", filter.kind.clone().unwrap_or_default()),
                    ("before", next.to_string()),
                ]).unwrap_or_default())) { (t.next_page) } }
            }
        }
        section aria-labelledby="nodes-h" id="nodes" data-live="" {
            h2 id="nodes-h" { (t.nodes) }
            div class="table-wrap" tabindex="0" role="region" aria-label=(t.nodes) {
                table {
                    thead { tr {
                        th scope="col" { (t.node) } th scope="col" { (t.status) }
                        th scope="col" class="num" { (t.capacity) } th scope="col" { (t.started) }
                        th scope="col" { (t.heartbeat) }
                    } }
                    tbody {
                        @for (node, live) in &nodes {
                            tr {
                                th scope="row" { (node.id) }
                                td { @if *live { (t.live) } @else { (t.gone) } }
                                td class="num" { (node.capacity) }
                                td { (locale.date_time(node.started_at)) }
                                td { (locale.date_time(node.heartbeat_at)) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page(&signed, t.operations, content).await
}

/// `POST /operations/queues/{name}/{pause|resume}`.
pub async fn steer_queue(
    signed: Signed,
    Path((name, action)): Path<(String, String)>,
    Form(_): Form<Nothing>,
) -> Response {
    if !operates(&signed) {
        return layout::not_found(signed.locale);
    }
    let paused = match action.as_str() {
        "pause" => true,
        "resume" => false,
        _ => return layout::not_found(signed.locale),
    };
    let app = &signed.app;
    match app
        .write(async |work| scheduling::set_paused(work, &signed.viewer, &name, paused).await)
        .await
    {
        Ok(queue) => {
            scheduling::queue_changed(&app.scheduler, app.bus.as_ref(), &queue).await;
            Redirect::to("/operations").into_response()
        }
        Err(err) => layout::error_response(signed.locale, &err),
    }
}

/// `POST /operations/jobs/{id}/{retry|cancel}`.
pub async fn steer_job(
    signed: Signed,
    Path((id, action)): Path<(String, String)>,
    Form(_): Form<Nothing>,
) -> Response {
    if !operates(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return layout::not_found(signed.locale);
    };
    let app = &signed.app;
    let done = match action.as_str() {
        "retry" => app
            .write(async |work| scheduling::retry(work, &signed.viewer, id).await)
            .await
            .map(drop),
        "cancel" => match app
            .write(async |work| scheduling::cancel(work, &signed.viewer, id).await)
            .await
        {
            Ok(outcome) => {
                scheduling::after_cancel(&app.scheduler, app.bus.as_ref(), outcome).await;
                Ok(())
            }
            Err(err) => Err(err),
        },
        _ => return layout::not_found(signed.locale),
    };
    match done {
        Ok(()) => Redirect::to("/operations").into_response(),
        Err(err) => layout::error_response(signed.locale, &err),
    }
}
