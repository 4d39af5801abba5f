//! The real binary: first start, secrets on disk, production refusal, schema and admin commands.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{free_port, repo_file, Backend, Deployment};

fn interlink() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_interlink"));
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "INTERLINK_JWT_SECRET",
        "INTERLINK_ENV",
        "INTERLINK_ADMIN_EMAIL",
        "INTERLINK_ADMIN_PASSWORD",
    ] {
        command.env_remove(var);
    }
    command
}

/// Starts `serve`, collects stdout until the listening line, then stops it.
fn first_lines(
    data_dir: &std::path::Path,
    port: u16,
    env: &[(&str, &str)],
) -> anyhow::Result<Vec<String>> {
    let mut child = interlink()
        .envs(env.iter().copied())
        .env("INTERLINK_DATA_DIR", data_dir)
        .env("INTERLINK_BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        let done = line.contains("listening");
        lines.push(line);
        if done || Instant::now() > deadline {
            break;
        }
    }
    child.kill()?;
    child.wait()?;
    Ok(lines)
}

#[test]
fn first_start_prints_an_admin_login_once_and_keeps_the_secret_private() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let lines = first_lines(dir.path(), free_port()?, &[])?;
    let text = lines.join("\n");
    assert!(text.contains("email:    admin@interlink.local"), "{text}");
    let password_line = lines
        .iter()
        .find(|l| l.trim_start().starts_with("password:"))
        .ok_or_else(|| anyhow::anyhow!("no password line in {text}"))?;
    let password = password_line.split_whitespace().nth(1).unwrap_or_default();
    assert!(password.len() >= 16, "{password_line}");
    assert!(text.contains("listening on http://127.0.0.1:"), "{text}");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("jwt-secret"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(dir.path().join("interlink.db").exists());

    let again = first_lines(dir.path(), free_port()?, &[])?.join("\n");
    assert!(!again.contains("password:"), "printed twice: {again}");
    Ok(())
}

#[test]
fn production_refuses_to_start_without_a_secret() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let output = interlink()
        .env("INTERLINK_DATA_DIR", dir.path())
        .env("INTERLINK_ENV", "production")
        .output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INTERLINK_JWT_SECRET"), "{stderr}");
    assert!(
        !dir.path().join("interlink.db").exists(),
        "it started anyway"
    );
    Ok(())
}

#[test]
fn schema_command_prints_the_committed_sdl() -> anyhow::Result<()> {
    let output = interlink().arg("schema").output()?;
    assert!(output.status.success());
    let committed = std::fs::read_to_string(repo_file("schema/schema.graphql"))?;
    assert!(
        String::from_utf8(output.stdout)? == committed,
        "`interlink schema` differs from schema/schema.graphql"
    );
    for sub in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["admin", "create-user", "--help"],
    ] {
        assert!(interlink().args(sub).output()?.status.success(), "{sub:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_create_user_and_migrate_from_the_shell() -> anyhow::Result<()> {
    let Some(deployment) = Deployment::new(Backend::Sqlite, &[]).await? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let unmigrated = interlink()
        .env("INTERLINK_DATA_DIR", dir.path())
        .env("INTERLINK_AUTO_MIGRATE", "false")
        .env("INTERLINK_BIND", format!("127.0.0.1:{}", free_port()?))
        .output()?;
    assert!(!unmigrated.status.success());
    assert!(String::from_utf8_lossy(&unmigrated.stderr).contains("interlink migrate"));
    let migrate = interlink()
        .env("INTERLINK_DATA_DIR", dir.path())
        .arg("migrate")
        .output()?;
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let create = |email: &str| -> anyhow::Result<std::process::Output> {
        Ok(interlink()
            .env("INTERLINK_DATA_DIR", dir.path())
            .env("INTERLINK_JWT_SECRET", crate::helpers::JWT_SECRET)
            .env("INTERLINK_NEW_USER_PASSWORD", "shell password 1")
            .args([
                "admin",
                "create-user",
                "--email",
                email,
                "--name",
                "Shell User",
                "--admin",
            ])
            .output()?)
    };
    let output = create("shell@example.com")?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let duplicate = create("SHELL@example.com")?;
    assert!(!duplicate.status.success());
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("CONFLICT"));

    // The same data directory served by a node accepts the new administrator.
    let mut vars = deployment.vars.clone();
    vars.insert(
        "INTERLINK_DATA_DIR".into(),
        dir.path().to_string_lossy().into_owned(),
    );
    let node = Deployment { vars }.node().await?;
    let session = node.login("shell@example.com", "shell password 1").await?;
    let me = node
        .gql_ok(
            Some(&session.access),
            "{ me { permissions } }",
            serde_json::json!({}),
        )
        .await?;
    assert_eq!(me["me"]["permissions"], serde_json::json!(["admin"]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_loads_a_demo_company_and_the_bench_dataset() -> anyhow::Result<()> {
    let Some(deployment) = Deployment::new(Backend::Sqlite, &[]).await? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let run = |args: &[&str]| -> anyhow::Result<std::process::Output> {
        Ok(interlink()
            .env("INTERLINK_DATA_DIR", dir.path())
            .env("INTERLINK_JWT_SECRET", crate::helpers::JWT_SECRET)
            .args(args)
            .output()?)
    };
    let demo = run(&["seed", "--demo"])?;
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(String::from_utf8_lossy(&demo.stdout).contains("alice@demo.interlink.local"));
    assert!(
        !run(&["seed", "--demo"])?.status.success(),
        "the demo loaded twice"
    );
    let bench = run(&["seed", "--bench", "--main-tasks", "30"])?;
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );

    let mut vars = deployment.vars.clone();
    vars.insert(
        "INTERLINK_DATA_DIR".into(),
        dir.path().to_string_lossy().into_owned(),
    );
    let node = Deployment { vars }.node().await?;
    let alice = node
        .login("alice@demo.interlink.local", "demo-password-1")
        .await?;
    let mine = node
        .gql_ok(
            Some(&alice.access),
            "{ tasks { totalCount edges { node { cashOutputValue executors { name } } } } }",
            serde_json::json!({}),
        )
        .await?;
    assert_eq!(mine["tasks"]["totalCount"], 3);
    assert_eq!(
        mine["tasks"]["edges"][0]["node"]["executors"][0]["name"],
        "Bob"
    );
    let admin = node
        .login("bench-admin@interlink.local", "bench-password-1")
        .await?;
    let board = node
        .gql_ok(
            Some(&admin.access),
            crate::board::BOARD,
            serde_json::json!({}),
        )
        .await?;
    assert_eq!(
        board["tasks"]["totalCount"], 33,
        "30 bench tasks and the 3 demo tasks"
    );
    assert_eq!(
        board["tasks"]["edges"][0]["node"]["comments"]["totalCount"]
            .as_u64()
            .map(|n| n == 15 || n == 0),
        Some(true)
    );
    Ok(())
}

#[test]
fn serve_prints_its_mode_and_what_it_exposes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let development = first_lines(dir.path(), free_port()?, &[])?;
    assert!(
        development.iter().any(|l| l.starts_with(
            "Mode: development (GraphiQL, introspection and field suggestions are on"
        ) && l.contains("INTERLINK_ENV=production")),
        "{development:?}"
    );
    let production = first_lines(
        dir.path(),
        free_port()?,
        &[
            ("INTERLINK_ENV", "production"),
            ("INTERLINK_JWT_SECRET", crate::helpers::JWT_SECRET),
        ],
    )?;
    assert!(
        production.iter().any(
            |l| l == "Mode: production (GraphiQL, introspection and field suggestions are off)"
        ),
        "{production:?}"
    );
    Ok(())
}
