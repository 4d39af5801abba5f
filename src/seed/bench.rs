//! The benchmark dataset, inserted in large batches straight into the tables: 20 departments,
//! 1,000 users, 20,000 main tasks with 80,000 subtasks, 300,000 comments (by default).

use chrono::{Duration, Utc};
use entities::{
    department, role, role_grant, task, task_category, task_comment, task_executor, user,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::password;
use crate::platform::work;

pub const BENCH_PASSWORD: &str = "bench-password-1";
pub const BENCH_ADMIN: &str = "bench-admin@interlink.local";

#[derive(Clone, Copy, Debug)]
pub struct BenchSize {
    pub departments: usize,
    pub users: usize,
    pub main_tasks: usize,
    pub subtasks_per_task: usize,
    pub comments_per_task: usize,
}

impl Default for BenchSize {
    fn default() -> Self {
        Self {
            departments: 20,
            users: 1_000,
            main_tasks: 20_000,
            subtasks_per_task: 4,
            comments_per_task: 15,
        }
    }
}

/// Rows per INSERT: well under PostgreSQL's 65,535 bind parameters for the widest table.
const BATCH: usize = 1_000;

async fn insert_batches<C, A>(db: &C, rows: Vec<A>) -> anyhow::Result<()>
where
    C: ConnectionTrait,
    A: ActiveModelTrait + Send,
{
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(BATCH).collect();
        <A::Entity as EntityTrait>::insert_many(chunk)
            .exec(db)
            .await?;
    }
    Ok(())
}

fn task_row(
    rng: &mut StdRng,
    category: Uuid,
    parent: Option<Uuid>,
    initiator: Uuid,
    department: Uuid,
    n: usize,
) -> task::ActiveModel {
    let now = Utc::now();
    let created = now - Duration::minutes(rng.gen_range(0..60 * 24 * 90));
    task::ActiveModel {
        id: Set(Uuid::now_v7()),
        category_id: Set(category),
        parent_id: Set(parent),
        title: Set(format!(
            "{} {n}",
            if parent.is_some() { "Step" } else { "Task" }
        )),
        key_points: Set("Generated for the benchmark".into()),
        initiator_id: Set(initiator),
        department_id: Set(Some(department)),
        is_team_task: Set(false),
        confirmer_id: Set(Some(initiator)),
        has_cash_output: Set(false),
        cash_output_minor: Set(None),
        currency: Set("CNY".into()),
        start_at: Set(Some(created)),
        deadline: Set(Some(created + Duration::days(rng.gen_range(1..120)))),
        priority: Set(rng.gen_range(1..=5)),
        progress: Set(0),
        reported_progress: Set(None),
        merit_points: Set(rng.gen_range(0..20)),
        review_status: Set("APPROVED".into()),
        rejection_reason: Set(None),
        status: Set("OPEN".into()),
        custom_fields: Set(serde_json::json!({})),
        version: Set(1),
        approval_instance_id: Set(None),
        overdue: Set(false),
        completed_at: Set(None),
        created_at: Set(created),
        updated_at: Set(created),
    }
}

pub async fn seed_bench(state: &AppState, size: BenchSize) -> anyhow::Result<()> {
    let db = &state.db.conn;
    let mut rng = StdRng::seed_from_u64(20_261_127);
    let now = Utc::now();
    // One hash for every bench user: argon2 is deliberately slow.
    let hash = password::Passwords::unmetered()
        .hash(BENCH_PASSWORD.to_owned())
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.public_message()))?;
    // One unit of work: a half-loaded dataset would skew every run made on it.
    work::write(&state.db, async |txn| {
        let departments: Vec<Uuid> = (0..size.departments).map(|_| Uuid::now_v7()).collect();
        insert_batches(
            txn,
            departments
                .iter()
                .enumerate()
                .map(|(n, id)| department::ActiveModel {
                    id: Set(*id),
                    name: Set(format!("Bench department {n}")),
                    parent_id: Set(None),
                    path: Set(format!("/{id}/")),
                    head_user_id: Set(None),
                    created_at: Set(now),
                    updated_at: Set(now),
                })
                .collect(),
        )
        .await?;

        let users: Vec<(Uuid, Uuid)> = (0..size.users)
            .map(|n| (Uuid::now_v7(), departments[n % departments.len().max(1)]))
            .collect();
        insert_batches(
            txn,
            users
                .iter()
                .enumerate()
                .map(|(n, (id, department))| {
                    let email = if n == 0 {
                        BENCH_ADMIN.to_owned()
                    } else {
                        format!("bench-user-{n}@interlink.local")
                    };
                    user::ActiveModel {
                        id: Set(*id),
                        email: Set(email.clone()),
                        email_normalized: Set(email),
                        name: Set(format!("Bench User {n}")),
                        department_id: Set(Some(*department)),
                        password_hash: Set(hash.clone()),
                        is_active: Set(true),
                        token_version: Set(0),
                        created_at: Set(now),
                        updated_at: Set(now),
                    }
                })
                .collect(),
        )
        .await?;
        let admin_role = role::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(format!("Bench administrator {}", Uuid::now_v7().simple())),
            permissions: Set(serde_json::json!(["admin"])),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(txn)
        .await?;
        if let Some((admin, _)) = users.first() {
            role_grant::ActiveModel {
                id: Set(Uuid::now_v7()),
                user_id: Set(*admin),
                role_id: Set(admin_role.id),
                department_id: Set(None),
                scope_key: Set("*".into()),
                created_at: Set(now),
            }
            .insert(txn)
            .await?;
        }
        let category = task_category::ActiveModel {
            id: Set(Uuid::now_v7()),
            code: Set(
                format!("BENCH-{}", &Uuid::now_v7().simple().to_string()[20..]).to_uppercase(),
            ),
            name: Set("Benchmark".into()),
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
        .insert(txn)
        .await?;

        // Tasks go in slices so memory stays modest whatever the size.
        const SLICE: usize = 2_000;
        let mut made = 0;
        while made < size.main_tasks {
            let count = SLICE.min(size.main_tasks - made);
            let mut tasks = Vec::with_capacity(count * (1 + size.subtasks_per_task));
            let mut executors = Vec::with_capacity(tasks.capacity());
            let mut comments = Vec::with_capacity(count * size.comments_per_task);
            for n in made..made + count {
                let (initiator, department) = users[rng.gen_range(0..users.len())];
                let main = task_row(&mut rng, category.id, None, initiator, department, n);
                let main_id = main.id.clone().unwrap();
                tasks.push(main);
                executors.push((main_id, users[rng.gen_range(0..users.len())].0));
                for s in 0..size.subtasks_per_task {
                    let sub = task_row(
                        &mut rng,
                        category.id,
                        Some(main_id),
                        initiator,
                        department,
                        s,
                    );
                    executors.push((
                        sub.id.clone().unwrap(),
                        users[rng.gen_range(0..users.len())].0,
                    ));
                    tasks.push(sub);
                }
                for c in 0..size.comments_per_task {
                    let at = now - Duration::minutes(rng.gen_range(0..60 * 24 * 30));
                    comments.push(task_comment::ActiveModel {
                        id: Set(Uuid::now_v7()),
                        task_id: Set(main_id),
                        author_id: Set(users[rng.gen_range(0..users.len())].0),
                        body: Set(format!("Comment {c} on task {n}")),
                        created_at: Set(at),
                        updated_at: Set(at),
                        deleted_at: Set(None),
                    });
                }
            }
            insert_batches(txn, tasks).await?;
            insert_batches(
                txn,
                executors
                    .into_iter()
                    .map(|(task_id, user_id)| task_executor::ActiveModel {
                        task_id: Set(task_id),
                        user_id: Set(user_id),
                        position: Set(0),
                    })
                    .collect(),
            )
            .await?;
            insert_batches(txn, comments).await?;
            made += count;
        }
        Ok::<(), anyhow::Error>(())
    })
    .await?;
    if state.db.backend() == crate::platform::db::Backend::Postgres {
        db.execute_unprepared("ANALYZE").await?;
    }
    Ok(())
}
