//! A small demo company, made through the same services the API uses, so every rule applies.

use chrono::{Duration, Utc};
use entities::department;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::{first_admin, installation_viewer};
use crate::app::AppState;
use crate::domains::approvals::model::{ApproverRule, NewFlow, NewStep};
use crate::domains::approvals::service as approvals;
use crate::domains::identity::model::parse_permissions;
use crate::domains::identity::model::{
    DepartmentChanges, DepartmentId, Email, NewDepartment, NewPassword, NewRole, NewUser, RoleId,
    UserId,
};
use crate::domains::identity::service as identity;
use crate::domains::tasks::model::{AssignmentStrategy, CategoryId, NewCategory, TaskFields};
use crate::domains::tasks::service::{self as tasks, NewTask};
use crate::platform::work::{self, Work};

pub const DEMO_PASSWORD: &str = "demo-password-1";

fn err(e: crate::error::AppError) -> anyhow::Error {
    anyhow::anyhow!("{}: {}", e.code(), e.public_message())
}

/// Returns the demo users' emails; does nothing (and says so) when the demo already exists.
/// One unit of work: a demo is made whole or not at all.
pub async fn seed_demo(state: &AppState) -> anyhow::Result<Vec<String>> {
    work::write(&state.db, async |work| {
        seed_demo_in(work, &state.passwords, &state.config.currency).await
    })
    .await
}

async fn seed_demo_in(
    work: &Work,
    passwords: &crate::auth::password::Passwords,
    currency: &str,
) -> anyhow::Result<Vec<String>> {
    if department::Entity::find()
        .filter(department::Column::Name.eq("Demo Company"))
        .one(work)
        .await?
        .is_some()
    {
        anyhow::bail!("the demo company is already here");
    }
    let admin = installation_viewer(first_admin(work).await?);
    let department = |name: &str, parent: Option<DepartmentId>| NewDepartment {
        name: name.into(),
        parent_id: parent,
    };
    let company = identity::create_department(work, &admin, department("Demo Company", None))
        .await
        .map_err(err)?;
    let sales = identity::create_department(
        work,
        &admin,
        department("Sales", Some(DepartmentId(company.id))),
    )
    .await
    .map_err(err)?;
    let north = identity::create_department(
        work,
        &admin,
        department("Sales North", Some(DepartmentId(sales.id))),
    )
    .await
    .map_err(err)?;

    let role = |name: &str, permissions: &[&str]| -> anyhow::Result<NewRole> {
        Ok(NewRole {
            name: name.into(),
            permissions: parse_permissions(
                &permissions
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect::<Vec<_>>(),
            )
            .map_err(err)?,
        })
    };
    let creator = identity::create_role(
        work,
        &admin,
        role("Demo Task Creator", &["task.create_main"])?,
    )
    .await
    .map_err(err)?;
    let reviewer = identity::create_role(work, &admin, role("Demo Reviewer", &["task.review"])?)
        .await
        .map_err(err)?;

    let mut emails = Vec::new();
    let mut person = |name: &'static str, department: uuid::Uuid| {
        let email = format!("{}@demo.interlink.local", name.to_lowercase());
        emails.push(email.clone());
        (name, email, department)
    };
    let people = [
        person("Alice", north.id),
        person("Bob", north.id),
        person("Carol", sales.id),
        person("Dave", sales.id),
    ];
    let mut ids = Vec::new();
    for (name, email, department) in &people {
        let user = identity::create_user(
            work,
            passwords,
            &admin,
            NewUser {
                email: Email::parse(email).map_err(err)?,
                name: (*name).into(),
                password: NewPassword::parse(DEMO_PASSWORD).map_err(err)?,
                department_id: Some(DepartmentId(*department)),
            },
        )
        .await
        .map_err(err)?;
        ids.push(user.id);
    }
    let (alice, bob, carol, dave) = (ids[0], ids[1], ids[2], ids[3]);
    identity::grant_role(
        work,
        &admin,
        UserId(alice),
        RoleId(creator.id),
        Some(DepartmentId(north.id)),
    )
    .await
    .map_err(err)?;
    identity::grant_role(
        work,
        &admin,
        UserId(carol),
        RoleId(reviewer.id),
        Some(DepartmentId(sales.id)),
    )
    .await
    .map_err(err)?;
    identity::update_department(
        work,
        &admin,
        DepartmentId(sales.id),
        DepartmentChanges {
            head_user_id: Some(Some(UserId(dave))),
            ..Default::default()
        },
    )
    .await
    .map_err(err)?;

    let flow = approvals::create_flow(
        work,
        &admin,
        NewFlow {
            name: "Reviewer, then head".into(),
            allow_self_approval: false,
            steps: vec![
                NewStep {
                    name: "Review".into(),
                    rule: ApproverRule::Role("Demo Reviewer".into()),
                    required_approvals: 1,
                    condition: None,
                    sla_hours: Some(24),
                },
                NewStep {
                    name: "Head".into(),
                    rule: ApproverRule::DepartmentHead,
                    required_approvals: 1,
                    condition: None,
                    sla_hours: Some(48),
                },
            ],
        },
    )
    .await
    .map_err(err)?;
    let category = tasks::create_category(
        work,
        &admin,
        NewCategory {
            code: "DEMO-VISIT".into(),
            name: "Customer visit".into(),
            default_priority: 2,
            approval_flow_id: Some(flow.id),
            strategy: AssignmentStrategy::Manual,
            pool: None,
            custom_fields_schema: Some(serde_json::json!({ "type": "object", "properties": { "customer": { "type": "string" } } })),
        },
    )
    .await
    .map_err(err)?;
    let alice_viewer = crate::auth::Viewer::User(std::sync::Arc::new(
        identity::viewer_for_user(work, alice)
            .await
            .map_err(err)?
            .ok_or_else(|| anyhow::anyhow!("the demo initiator vanished"))?,
    ));
    for (n, title) in [
        "Visit Acme",
        "Renew the Globex contract",
        "Demo for Initech",
    ]
    .iter()
    .enumerate()
    {
        tasks::create_task(
            work,
            &alice_viewer,
            currency,
            NewTask {
                category_id: Some(CategoryId(category.id)),
                parent_id: None,
                fields: TaskFields {
                    title: (*title).into(),
                    key_points: "Bring the latest price list".into(),
                    executor_ids: vec![bob],
                    is_team_task: false,
                    confirmer_id: Some(alice),
                    cash_output_minor: Some(1_250_000 * (n as i64 + 1)),
                    start_at: Some(Utc::now()),
                    deadline: Some(Utc::now() + Duration::days(7 * (n as i64 + 1))),
                    priority: None,
                    merit_points: 10,
                    custom_fields: serde_json::json!({ "customer": title.split(' ').next_back().unwrap_or_default() }),
                },
                cash_output: None,
            },
        )
        .await
        .map_err(err)?;
    }
    seed_books(work, &admin, north.id, sales.id).await?;
    Ok(emails)
}

/// A small chart of accounts, two months of postings and a budget, so the finance pages show
/// something real.
async fn seed_books(
    work: &Work,
    admin: &crate::auth::Viewer,
    north: uuid::Uuid,
    sales: uuid::Uuid,
) -> anyhow::Result<()> {
    use crate::domains::finance::model::{
        AccountType, BudgetPolicy, NewBudget, NewEntry, PostingLine,
    };
    use crate::domains::finance::service as finance;
    for (code, name, kind) in [
        ("1000", "Cash", AccountType::Asset),
        ("4000", "Sales revenue", AccountType::Revenue),
        ("6000", "Travel", AccountType::Expense),
    ] {
        finance::create_account(work, admin, code, name, kind)
            .await
            .map_err(err)?;
    }
    let line = |code: &str, debit: i64, credit: i64, center: Option<uuid::Uuid>| PostingLine {
        account_code: code.into(),
        debit_minor: debit,
        credit_minor: credit,
        cost_center_id: center,
        task_id: None,
    };
    let today = Utc::now().date_naive();
    let last_month = today - Duration::days(31);
    for (date, memo, revenue, travel, center) in [
        (last_month, "Acme order", 180_000, 52_000, north),
        (today, "Globex renewal", 240_000, 38_000, north),
        (today, "Initech demo", 90_000, 12_500, sales),
    ] {
        for entry in [
            NewEntry {
                memo: memo.into(),
                posting_date: date,
                lines: vec![
                    line("1000", revenue, 0, None),
                    line("4000", 0, revenue, Some(center)),
                ],
            },
            NewEntry {
                memo: format!("Travel for {memo}"),
                posting_date: date,
                lines: vec![
                    line("6000", travel, 0, Some(center)),
                    line("1000", 0, travel, None),
                ],
            },
        ] {
            finance::post_entry(work, admin, entry).await.map_err(err)?;
        }
    }
    finance::create_budget(
        work,
        admin,
        NewBudget {
            cost_center: north,
            account_code: "6000".into(),
            period: today.format("%Y-%m").to_string(),
            amount_minor: 100_000,
            policy: BudgetPolicy::Warn,
        },
    )
    .await
    .map_err(err)?;
    Ok(())
}
