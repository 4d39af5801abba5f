//! The `interlink` command: serve (the default), migrate, schema and admin tasks.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use interlink::app::AppState;
use interlink::auth::jwt::KeySource;
use interlink::config::{Config, LogFormat};
use interlink::domains::identity::service as identity;
use interlink::http::build_router;
use interlink::platform::work;
use tracing_subscriber::EnvFilter;

/// glibc's allocator took about a third of the server's CPU under the board load (perf, see
/// bench/ANALYSIS.md): a GraphQL response is thousands of small, short-lived allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "interlink",
    version,
    about = "Interlink: a GraphQL data-access hub"
)]
struct Cli {
    /// A TOML settings file (also INTERLINK_CONFIG); variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GraphQL hub (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Load data: `--demo` for a small company to try, `--bench` for the benchmark dataset.
    Seed {
        #[arg(long, conflicts_with = "bench")]
        demo: bool,
        #[arg(long)]
        bench: bool,
        /// With --bench: how many main tasks (each with 4 subtasks and 15 comments).
        #[arg(long, default_value_t = 20_000)]
        main_tasks: usize,
    },
    /// Administrative tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a user; with --admin the user is granted the Administrator role.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// The password; read from INTERLINK_NEW_USER_PASSWORD when omitted, so it stays out of shell history.
        #[arg(long, env = "INTERLINK_NEW_USER_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        admin: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Schema) = cli.command {
        print!("{}", interlink::api::sdl());
        return Ok(());
    }
    let config = Config::from_env(cli.config.as_deref())?;
    init_tracing(config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            let db = interlink::platform::db::Db::connect(
                config.database_url.as_ref().map(|s| s.expose()),
                &config.data_dir,
                config.db_max_connections,
            )
            .await?;
            db.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Admin { command } => admin(config, command).await,
        Command::Seed {
            demo,
            bench,
            main_tasks,
        } => seed(config, demo, bench, main_tasks).await,
        Command::Schema => Ok(()),
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let bind = config.bind;
    let scaled_out = config.database_url.is_some() || config.redis_url.is_some();
    let startup = AppState::initialize(config).await?;
    match startup.jwt_key_source {
        KeySource::GeneratedNow => tracing::warn!(
            "no INTERLINK_JWT_SECRET set: generated one and saved it in the data directory (mode 0600)"
        ),
        KeySource::LoadedFromDataDir if scaled_out => tracing::warn!(
            "using the JWT secret from this node's data directory; nodes sharing a database must share INTERLINK_JWT_SECRET"
        ),
        _ => {}
    }
    announce_first_admin(&startup);
    let router = build_router(startup.state.clone());
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let graphiql = if startup.state.config.dev_tools_enabled() {
        format!(", GraphiQL at http://{bind}/graphiql")
    } else {
        String::new()
    };
    let (mode, exposes) = if startup.state.config.dev_tools_enabled() {
        (
            "development",
            "GraphiQL, introspection and field suggestions are on; set INTERLINK_ENV=production to turn them off",
        )
    } else {
        (
            "production",
            "GraphiQL, introspection and field suggestions are off",
        )
    };
    tracing::info!(mode, "running in {mode} mode: {exposes}");
    println!("Mode: {mode} ({exposes})");
    tracing::info!("Interlink serving GraphQL at http://{bind}/graphql{graphiql}");
    println!("Interlink is listening on http://{bind}/graphql{graphiql}");
    let jobs = if startup.state.config.jobs.enabled {
        Some(
            startup
                .state
                .scheduler
                .start()
                .await
                .context("starting the scheduler")?,
        )
    } else {
        None
    };
    // With the peer's address, for per-client budgets (see `http::client`).
    let served = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await
    .context("serving");
    if let Some(jobs) = jobs {
        jobs.stop(std::time::Duration::from_secs(10)).await;
    }
    served
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

async fn admin(config: Config, command: AdminCommand) -> anyhow::Result<()> {
    let startup = AppState::initialize(config).await?;
    announce_first_admin(&startup);
    let state = startup.state;
    match command {
        AdminCommand::CreateUser {
            email,
            name,
            password,
            admin,
        } => {
            let user = work::write(&state.db, async |work| {
                identity::create_user_from_shell(
                    work,
                    &state.passwords,
                    &email,
                    &name,
                    &password,
                    admin,
                )
                .await
            })
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", e.code(), e.public_message()))?;
            println!("created user {} <{}> id {}", user.name, user.email, user.id);
            Ok(())
        }
    }
}

/// The first administrator's credentials, printed once, on whichever command created them.
fn announce_first_admin(startup: &interlink::app::Startup) {
    if let Some(admin) = &startup.first_admin {
        println!("Interlink first start: created the administrator account");
        println!("  email:    {}", admin.email);
        match &admin.generated_password {
            Some(password) => {
                println!("  password: {password}   (shown once; change it after signing in)")
            }
            None => println!("  password: the one given in INTERLINK_ADMIN_PASSWORD"),
        }
    }
}

async fn seed(config: Config, demo: bool, bench: bool, main_tasks: usize) -> anyhow::Result<()> {
    if !demo && !bench {
        anyhow::bail!("choose --demo or --bench");
    }
    let startup = AppState::initialize(config).await?;
    announce_first_admin(&startup);
    let state = startup.state;
    if demo {
        let people = interlink::seed::seed_demo(&state).await?;
        println!(
            "demo company loaded; sign in as any of these with password {}:",
            interlink::seed::demo::DEMO_PASSWORD
        );
        for email in people {
            println!("  {email}");
        }
    } else {
        let started = std::time::Instant::now();
        let size = interlink::seed::BenchSize {
            main_tasks,
            ..Default::default()
        };
        interlink::seed::seed_bench(&state, size).await?;
        println!(
            "benchmark data loaded in {:.1}s: {size:?}; admin {} / {}",
            started.elapsed().as_secs_f64(),
            interlink::seed::bench::BENCH_ADMIN,
            interlink::seed::bench::BENCH_PASSWORD
        );
    }
    Ok(())
}
