//! User portraits: the figures of a scripted history with known answers, and who may see them.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ActiveModelTrait, DatabaseConnection, Set};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{error_code, str_at, Backend, Session, TestApp};
use crate::on_both_backends;
use crate::tasks::person;

on_both_backends!(a_portrait_gives_the_known_figures_of_a_scripted_history);

const PROFILE: &str = "query($id: ID!, $from: DateTime, $to: DateTime) { user(id: $id) { profile(from: $from, to: $to) { tasksOpen tasksDone onTimeRate onTimeCount doneWithDeadline throughputPerWeek cycleTimeHours { p50 p85 } meritTotal cashOutputTotal currentWorkload approvalsPending approvalDecisionHours { avg p50 } from to asOf } } }";

fn at(text: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(text)?.with_timezone(&Utc))
}

async fn department(
    app: &TestApp,
    admin: &str,
    name: &str,
    parent: Option<&str>,
) -> anyhow::Result<String> {
    let created = app
        .gql_ok(
            Some(admin),
            "mutation($i: CreateDepartmentInput!) { createDepartment(input: $i) { id } }",
            json!({ "i": { "name": name, "parentId": parent } }),
        )
        .await?;
    str_at(&created, "/createDepartment/id")
}

/// A holder of a fresh role (`task.review`, which says nothing about people) over `department`.
async fn role_holder(
    app: &TestApp,
    admin: &str,
    home: &str,
    department: &str,
) -> anyhow::Result<Session> {
    let holder = person(app, home).await?;
    let role = app
        .gql_ok(
            Some(admin),
            "mutation($i: CreateRoleInput!) { createRole(input: $i) { id } }",
            json!({ "i": { "name": format!("Reviewer {}", Uuid::now_v7()), "permissions": ["task.review"] } }),
        )
        .await?;
    app.gql_ok(
        Some(admin),
        "mutation($u: ID!, $r: ID!, $d: ID) { grantRole(userId: $u, roleId: $r, departmentId: $d) { id } }",
        json!({ "u": holder.user_id, "r": str_at(&role, "/createRole/id")?, "d": department }),
    )
    .await?;
    Ok(holder)
}

struct Done<'a> {
    created: &'a str,
    approved: Option<&'a str>,
    completed: Option<&'a str>,
    deadline: Option<&'a str>,
    status: &'a str,
    cash_minor: Option<i64>,
}

async fn task(
    db: &DatabaseConnection,
    category: Uuid,
    executor: Uuid,
    t: Done<'_>,
) -> anyhow::Result<Uuid> {
    let id = Uuid::now_v7();
    let created = at(t.created)?;
    entities::task::ActiveModel {
        id: Set(id),
        category_id: Set(category),
        parent_id: Set(None),
        title: Set("scripted".into()),
        key_points: Set(String::new()),
        initiator_id: Set(executor),
        department_id: Set(None),
        is_team_task: Set(false),
        confirmer_id: Set(None),
        has_cash_output: Set(t.cash_minor.is_some()),
        cash_output_minor: Set(t.cash_minor),
        currency: Set("CNY".into()),
        start_at: Set(None),
        deadline: Set(t.deadline.map(at).transpose()?),
        priority: Set(3),
        progress: Set(if t.completed.is_some() { 100 } else { 0 }),
        reported_progress: Set(None),
        merit_points: Set(0),
        review_status: Set("APPROVED".into()),
        rejection_reason: Set(None),
        status: Set(t.status.into()),
        custom_fields: Set(json!({})),
        version: Set(1),
        approval_instance_id: Set(None),
        overdue: Set(false),
        completed_at: Set(t.completed.map(at).transpose()?),
        created_at: Set(created),
        updated_at: Set(created),
    }
    .insert(db)
    .await?;
    entities::task_executor::ActiveModel {
        task_id: Set(id),
        user_id: Set(executor),
        position: Set(0),
    }
    .insert(db)
    .await?;
    if let Some(approved) = t.approved {
        entities::task_activity::ActiveModel {
            id: Set(Uuid::now_v7()),
            task_id: Set(id),
            actor_id: Set(executor),
            action: Set("review_decided".into()),
            field: Set(Some("reviewStatus".into())),
            old_value: Set(Some("PENDING".into())),
            new_value: Set(Some("APPROVED".into())),
            at: Set(at(approved)?),
        }
        .insert(db)
        .await?;
    }
    Ok(id)
}

async fn merit(
    db: &DatabaseConnection,
    task: Uuid,
    user: Uuid,
    points: i32,
    when: &str,
) -> anyhow::Result<()> {
    entities::merit_record::ActiveModel {
        id: Set(Uuid::now_v7()),
        task_id: Set(task),
        user_id: Set(user),
        points: Set(points),
        created_at: Set(at(when)?),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// An approval of `steps` steps started at `started`; `decisions` are (step, who, when).
async fn approval(
    db: &DatabaseConnection,
    flow: Uuid,
    started: &str,
    assigned: &[(i32, Uuid)],
    decisions: &[(i32, Uuid, &str)],
    pending: bool,
) -> anyhow::Result<()> {
    let id = Uuid::now_v7();
    let started = at(started)?;
    let steps = assigned.iter().map(|(s, _)| *s).max().unwrap_or(0) + 1;
    entities::approval_instance::ActiveModel {
        id: Set(id),
        flow_id: Set(flow),
        flow_version: Set(1),
        subject_type: Set("task".into()),
        subject_id: Set(Uuid::now_v7()),
        subject_department_id: Set(None),
        initiator_id: Set(Uuid::now_v7()),
        status: Set(if pending { "PENDING" } else { "APPROVED" }.into()),
        step_positions: Set(json!((0..steps).collect::<Vec<_>>())),
        current_index: Set(if pending { 0 } else { steps - 1 }),
        facts: Set(json!({})),
        started_at: Set(started),
        step_started_at: Set(started),
        decided_at: Set(None),
    }
    .insert(db)
    .await?;
    for (step, user) in assigned {
        entities::approval_assignment::ActiveModel {
            id: Set(Uuid::now_v7()),
            instance_id: Set(id),
            step_index: Set(*step),
            user_id: Set(*user),
            created_at: Set(started),
        }
        .insert(db)
        .await?;
    }
    for (step, user, when) in decisions {
        entities::approval_decision::ActiveModel {
            id: Set(Uuid::now_v7()),
            instance_id: Set(id),
            step_index: Set(*step),
            step_name: Set(format!("step {step}")),
            accountable_user_id: Set(*user),
            decided_by: Set(*user),
            approve: Set(true),
            comment: Set(None),
            decided_at: Set(at(when)?),
        }
        .insert(db)
        .await?;
    }
    Ok(())
}

async fn a_portrait_gives_the_known_figures_of_a_scripted_history(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[]).await? else {
        return Ok(());
    };
    let admin = app.admin().await?;
    let db = &app.state.db.conn;
    let parent = department(&app, &admin.access, "Parent", None).await?;
    let child = department(&app, &admin.access, "Child", Some(&parent)).await?;
    let sibling = department(&app, &admin.access, "Sibling", Some(&parent)).await?;
    let subject = person(&app, &child).await?;
    let me = Uuid::parse_str(&subject.user_id)?;
    let other = Uuid::parse_str(&admin.user_id)?;
    let now = Utc::now();

    let category = Uuid::now_v7();
    entities::task_category::ActiveModel {
        id: Set(category),
        code: Set(format!("SCRIPT-{category}")),
        name: Set("Scripted".into()),
        default_priority: Set(3),
        custom_fields_schema: Set(None),
        approval_flow_id: Set(None),
        assignment_strategy: Set("MANUAL".into()),
        pool_department_id: Set(None),
        pool_role: Set(None),
        round_robin_counter: Set(0),
        archived_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    let done = |created, approved, completed, deadline, cash| Done {
        created,
        approved: Some(approved),
        completed: Some(completed),
        deadline,
        status: "DONE",
        cash_minor: cash,
    };
    // Four done in the window: cycle 10h, 20h, 30h, 40h; three with deadlines, two on time.
    let mut tasks = Vec::new();
    for t in [
        done(
            "2026-01-02T00:00:00Z",
            "2026-01-05T00:00:00Z",
            "2026-01-05T10:00:00Z",
            Some("2026-01-06T00:00:00Z"),
            Some(10_000),
        ),
        done(
            "2026-01-02T00:00:00Z",
            "2026-01-10T00:00:00Z",
            "2026-01-10T20:00:00Z",
            Some("2026-01-10T12:00:00Z"),
            Some(5_000),
        ),
        done(
            "2026-01-02T00:00:00Z",
            "2026-02-01T00:00:00Z",
            "2026-02-02T06:00:00Z",
            Some("2026-02-10T00:00:00Z"),
            None,
        ),
        done(
            "2026-01-02T00:00:00Z",
            "2026-02-03T00:00:00Z",
            "2026-02-04T16:00:00Z",
            None,
            None,
        ),
        // Done before the window: counted nowhere.
        done(
            "2025-11-01T00:00:00Z",
            "2025-11-02T00:00:00Z",
            "2025-12-01T00:00:00Z",
            Some("2025-12-31T00:00:00Z"),
            Some(99_999),
        ),
    ] {
        tasks.push(task(db, category, me, t).await?);
    }
    for (created, status) in [
        ("2026-01-03T00:00:00Z", "OPEN"),
        ("2025-06-01T00:00:00Z", "IN_PROGRESS"),
    ] {
        task(
            db,
            category,
            me,
            Done {
                created,
                approved: None,
                completed: None,
                deadline: None,
                status,
                cash_minor: None,
            },
        )
        .await?;
    }
    // Merit is written at completion: 5 and 7 in the window, 3 before it.
    for (task, points, when) in [
        (tasks[0], 5, "2026-01-05T10:00:00Z"),
        (tasks[2], 7, "2026-02-02T06:00:00Z"),
        (tasks[4], 3, "2025-12-01T00:00:00Z"),
    ] {
        merit(db, task, me, points, when).await?;
    }
    let flow = Uuid::now_v7();
    entities::approval_flow::ActiveModel {
        id: Set(flow),
        name: Set(format!("Scripted {flow}")),
        allow_self_approval: Set(false),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    // Decision times 2h (first step), 6h (second step, from the first's decision), 16h.
    approval(
        db,
        flow,
        "2026-01-01T00:00:00Z",
        &[(0, me)],
        &[(0, me, "2026-01-01T02:00:00Z")],
        false,
    )
    .await?;
    approval(
        db,
        flow,
        "2026-01-01T00:00:00Z",
        &[(0, other), (1, me)],
        &[
            (0, other, "2026-01-02T00:00:00Z"),
            (1, me, "2026-01-02T06:00:00Z"),
        ],
        false,
    )
    .await?;
    approval(
        db,
        flow,
        "2026-01-20T00:00:00Z",
        &[(0, me)],
        &[(0, me, "2026-01-20T16:00:00Z")],
        false,
    )
    .await?;
    // Waiting on them now; and one decided long before the window.
    approval(db, flow, "2026-01-20T00:00:00Z", &[(0, me)], &[], true).await?;
    approval(
        db,
        flow,
        "2025-01-01T00:00:00Z",
        &[(0, me)],
        &[(0, me, "2025-01-03T00:00:00Z")],
        false,
    )
    .await?;

    let window = json!({ "id": subject.user_id, "from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z" });
    let read = app
        .gql_ok(Some(&admin.access), PROFILE, window.clone())
        .await?;
    let p = &read["user"]["profile"];
    assert_eq!(p["tasksDone"], 4, "{read}");
    assert_eq!(p["tasksOpen"], 1, "{read}");
    assert_eq!(p["currentWorkload"], 2, "{read}");
    assert_eq!(p["doneWithDeadline"], 3, "{read}");
    assert_eq!(p["onTimeCount"], 2, "{read}");
    assert_eq!(p["onTimeRate"], 0.6667, "{read}");
    // 4 tasks over 59 days (8.43 weeks).
    assert_eq!(p["throughputPerWeek"], 0.47, "{read}");
    assert_eq!(p["cycleTimeHours"]["p50"], 25.0, "{read}");
    // (4-1)·0.85 = 2.55: 30h + 0.55·10h.
    assert_eq!(p["cycleTimeHours"]["p85"], 35.5, "{read}");
    assert_eq!(p["meritTotal"], 12, "{read}");
    assert_eq!(p["cashOutputTotal"], "150.00", "{read}");
    assert_eq!(p["approvalsPending"], 1, "{read}");
    assert_eq!(p["approvalDecisionHours"]["avg"], 8.0, "{read}");
    assert_eq!(p["approvalDecisionHours"]["p50"], 6.0, "{read}");
    assert_eq!(p["from"], "2026-01-01T00:00:00+00:00", "{read}");

    // Fewer than three with a deadline: no rate, but the counts.
    let january = json!({ "id": subject.user_id, "from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z" });
    let short = app.gql_ok(Some(&admin.access), PROFILE, january).await?;
    assert_eq!(
        short["user"]["profile"]["onTimeRate"],
        Value::Null,
        "{short}"
    );
    assert_eq!(short["user"]["profile"]["doneWithDeadline"], 2, "{short}");

    // The person sees their own, and a role holder over the parent department sees it.
    let own = app
        .gql_ok(Some(&subject.access), PROFILE, window.clone())
        .await?;
    assert_eq!(own["user"]["profile"]["tasksDone"], 4, "{own}");
    assert_eq!(own["user"]["profile"]["meritTotal"], 12);
    let manager = role_holder(&app, &admin.access, &parent, &parent).await?;
    let managed = app
        .gql_ok(Some(&manager.access), PROFILE, window.clone())
        .await?;
    assert_eq!(managed["user"]["profile"]["tasksDone"], 4, "{managed}");

    // A holder over the sibling department, and a stranger, get NOT_FOUND.
    let neighbour = role_holder(&app, &admin.access, &sibling, &sibling).await?;
    let stranger = person(&app, &child).await?;
    for outsider in [&neighbour, &stranger] {
        let body = app
            .gql(Some(&outsider.access), PROFILE, window.clone())
            .await?;
        assert_eq!(error_code(&body), Some("NOT_FOUND"), "{body}");
        assert_eq!(
            body["errors"][0]["path"],
            json!(["user", "profile"]),
            "{body}"
        );
    }

    // Bad windows.
    for (from, to) in [
        ("2026-03-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        ("2015-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
    ] {
        let body = app
            .gql(
                Some(&admin.access),
                PROFILE,
                json!({ "id": subject.user_id, "from": from, "to": to }),
            )
            .await?;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    }
    // The default window ends now and starts 90 days before.
    let default = app
        .gql_ok(
            Some(&admin.access),
            PROFILE,
            json!({ "id": subject.user_id }),
        )
        .await?;
    let (from, to) = (
        at(&str_at(&default, "/user/profile/from")?)?,
        at(&str_at(&default, "/user/profile/to")?)?,
    );
    assert_eq!(to - from, Duration::days(90));
    assert!(to >= now);

    // Apps: without PROFILES_READ refused; with it over the child department, allowed; over
    // the sibling, NOT_FOUND.
    let query = |id: &str| {
        format!("{{ user(id: \"{id}\") {{ profile(from: \"2026-01-01T00:00:00Z\", to: \"2026-03-01T00:00:00Z\") {{ tasksDone }} }} }}")
    };
    for (scopes, department, expected) in [
        (vec!["TASKS_READ"], Some(child.as_str()), Some("FORBIDDEN")),
        (vec!["PROFILES_READ"], Some(parent.as_str()), None),
        (
            vec!["PROFILES_READ"],
            Some(sibling.as_str()),
            Some("NOT_FOUND"),
        ),
        (vec!["PROFILES_READ"], None, None),
    ] {
        let (app_id, key) =
            crate::apps::app_with_key(&app, &admin.access, &scopes, department).await?;
        // The export's list of people agrees with the field.
        if scopes == ["PROFILES_READ"] {
            use sea_orm::EntityTrait;
            let viewer = interlink::domains::integrations::service::app_viewer(
                db,
                Uuid::parse_str(&app_id)?,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
            .ok_or_else(|| anyhow::anyhow!("the app has no viewer"))?;
            let viewer = interlink::auth::Viewer::User(std::sync::Arc::new(viewer));
            let people = interlink::domains::profiles::service::visible_people_query(&viewer)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?
                .all(db)
                .await?;
            let listed = people.iter().any(|p| p.id == me);
            assert_eq!(listed, expected.is_none(), "{department:?}");
            let everyone = entities::user::Entity::find().all(db).await?.len();
            assert_eq!(
                people.len() == everyone,
                department.is_none(),
                "{department:?}"
            );
            let mut sorted = people.clone();
            sorted.sort_by(|a, b| (&a.name, a.id).cmp(&(&b.name, b.id)));
            assert_eq!(people, sorted);
        }
        let body: Value = app
            .http
            .post(app.url("/graphql"))
            .header("x-api-key", key)
            .json(&json!({ "query": query(&subject.user_id) }))
            .send()
            .await?
            .json()
            .await?;
        match expected {
            Some(code) => assert_eq!(error_code(&body), Some(code), "{scopes:?}: {body}"),
            None => assert_eq!(
                body["data"]["user"]["profile"]["tasksDone"], 4,
                "{scopes:?}: {body}"
            ),
        }
    }
    Ok(())
}
