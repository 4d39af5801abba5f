//! Sign-in hardening under the default settings: one password field per operation, sign-in
//! budgets per client and per (account, client), the changePassword budget, the per-client
//! request budget and whose address counts. Hashes are counted on the node's own /metrics.

use std::net::IpAddr;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    error_code, poll_until, str_at, unique_email, Backend, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD,
};
use crate::{on_both_backends, spawn_or_skip};

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";

/// A client whose requests come from `127.0.0.<last>`: another address on the same machine.
fn client_from(last: u8) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, last]))
        .build()?)
}

struct Answer {
    status: StatusCode,
    retry_after: Option<u64>,
    body: Value,
}

async fn post(
    app: &TestApp,
    client: &reqwest::Client,
    token: Option<&str>,
    body: &Value,
    headers: &[(&str, &str)],
) -> anyhow::Result<Answer> {
    let mut request = client.post(app.url("/graphql")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await?;
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Ok(Answer {
        status,
        retry_after,
        body: response.json().await?,
    })
}

fn login_body(email: &str, password: &str) -> Value {
    json!({ "query": LOGIN, "variables": { "e": email, "p": password } })
}

/// This node's `interlink_password_hashes_total`.
async fn hashes(app: &TestApp) -> anyhow::Result<u64> {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|line| line.strip_prefix("interlink_password_hashes_total "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no interlink_password_hashes_total in /metrics"))
}

fn retry_after_of(error: &Value) -> Option<u64> {
    error
        .pointer("/extensions/retryAfter")
        .and_then(Value::as_u64)
}

async fn aliased_logins_hash_nothing_and_others_still_sign_in(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let before = hashes(&app).await?;
    let fields: String = (0..300)
        .map(|i| {
            format!("a{i}: login(email: \"victim{i}@example.com\", password: \"guess-{i}\") {{ accessToken }} ")
        })
        .collect();
    let attack = json!({ "query": format!("mutation {{ {fields} }}") });
    // Several such requests at once from one address, while someone else signs in.
    let attacker = client_from(2)?;
    let attacks: Vec<_> = (0..4)
        .map(|_| {
            let (app_url, attacker, attack) =
                (app.url("/graphql"), attacker.clone(), attack.clone());
            tokio::spawn(async move {
                let response = attacker.post(app_url).json(&attack).send().await?;
                anyhow::Ok((response.status(), response.json::<Value>().await?))
            })
        })
        .collect();
    let user = client_from(3)?;
    let signed_in = post(
        &app,
        &user,
        None,
        &login_body(ADMIN_EMAIL, ADMIN_PASSWORD),
        &[],
    )
    .await?;
    str_at(&signed_in.body, "/data/login/accessToken")?;
    for attack in attacks {
        let (status, body) = attack.await??;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    }
    // Hidden in fragments, they are counted all the same; one login in a fragment is fine.
    let hidden = json!({ "query": "mutation { ...A ...B } \
        fragment A on MutationRoot { a: login(email: \"x@example.com\", password: \"p\") { accessToken } } \
        fragment B on MutationRoot { ... on MutationRoot { b: login(email: \"y@example.com\", password: \"p\") { accessToken } } }" });
    let refused = post(&app, &attacker, None, &hidden, &[]).await?;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    let one = json!({
        "query": "mutation($e: String!, $p: String!) { ...A } \
            fragment A on MutationRoot { login(email: $e, password: $p) { accessToken } }",
        "variables": { "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD }
    });
    let fragment_login = post(&app, &user, None, &one, &[]).await?;
    str_at(&fragment_login.body, "/data/login/accessToken")?;
    // The two real sign-ins are the only hashes.
    assert_eq!(hashes(&app).await? - before, 2);
    Ok(())
}

async fn a_batch_of_logins_draws_on_the_client_budget(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let budget = app.state.config.limits.login_attempts_per_client;
    let window = app.state.config.limits.login_attempt_window;
    let started = std::time::Instant::now();
    let before = hashes(&app).await?;
    let stuffer = client_from(4)?;
    let batch: Vec<Value> = (0..10)
        .map(|i| login_body(&format!("stuffed{i}@example.com"), "password-1234"))
        .collect();
    let answer = post(&app, &stuffer, None, &json!(batch), &[]).await?;
    let answers = answer.body.as_array().cloned().unwrap_or_default();
    assert_eq!(answers.len(), 10, "{}", answer.body);
    for one in &answers {
        assert_eq!(error_code(one), Some("UNAUTHENTICATED"), "{one}");
    }
    // Ten attempts against this address: what is left of its budget is the rest.
    let mut accepted = 0u32;
    let limited = loop {
        let email = format!("stuffed-{accepted}@example.com");
        let answer = post(
            &app,
            &stuffer,
            None,
            &login_body(&email, "password-1234"),
            &[],
        )
        .await?;
        match error_code(&answer.body) {
            Some("UNAUTHENTICATED") => accepted += 1,
            Some("RATE_LIMITED") => break answer.body,
            _ => anyhow::bail!("unexpected answer {}", answer.body),
        }
        anyhow::ensure!(accepted <= budget, "the budget of {budget} never ran out");
    };
    // The bucket refills one attempt per window / budget; allow for what came back meanwhile.
    let refilled = u32::try_from(started.elapsed().as_micros() / (window / budget).as_micros())
        .unwrap_or(u32::MAX);
    assert!(
        accepted >= budget - 10 && accepted <= budget - 10 + refilled + 1,
        "{accepted} single attempts after a batch of 10, with a budget of {budget}"
    );
    let retry = retry_after_of(&limited["errors"][0]);
    assert!(retry.is_some_and(|s| s >= 1), "{limited}");
    // Refused attempts cost no hash, and a spent budget refuses a whole batch without any.
    let spent = hashes(&app).await?;
    assert_eq!(spent - before, u64::from(10 + accepted));
    let answer = post(&app, &stuffer, None, &json!(batch), &[]).await?;
    for one in answer.body.as_array().cloned().unwrap_or_default() {
        assert_eq!(error_code(&one), Some("RATE_LIMITED"), "{one}");
    }
    assert_eq!(hashes(&app).await?, spent);
    // Another address still signs in.
    let other = post(
        &app,
        &client_from(5)?,
        None,
        &login_body(ADMIN_EMAIL, ADMIN_PASSWORD),
        &[],
    )
    .await?;
    str_at(&other.body, "/data/login/accessToken")?;
    Ok(())
}

async fn strangers_cannot_lock_an_account(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let limit = app.state.config.limits.login_failures_per_window;
    let stranger = client_from(6)?;
    for i in 0..limit {
        // A forwarded-for header changes nothing: this peer is no trusted proxy.
        let spoofed = format!("198.51.100.{i}");
        let wrong = login_body(ADMIN_EMAIL, "not the password");
        let answer = post(
            &app,
            &stranger,
            None,
            &wrong,
            &[("x-forwarded-for", &spoofed)],
        )
        .await?;
        assert_eq!(
            error_code(&answer.body),
            Some("UNAUTHENTICATED"),
            "{}",
            answer.body
        );
    }
    let before = hashes(&app).await?;
    for password in ["not the password", ADMIN_PASSWORD] {
        let answer = post(
            &app,
            &stranger,
            None,
            &login_body(ADMIN_EMAIL, password),
            &[("x-forwarded-for", "203.0.113.1")],
        )
        .await?;
        assert_eq!(
            error_code(&answer.body),
            Some("RATE_LIMITED"),
            "{}",
            answer.body
        );
        let retry = retry_after_of(&answer.body["errors"][0]);
        let window = app.state.config.limits.login_failure_window.as_secs();
        assert!(
            retry.is_some_and(|s| (1..=window).contains(&s)),
            "{}",
            answer.body
        );
    }
    assert_eq!(hashes(&app).await?, before, "refused before hashing");
    // The owner, elsewhere, signs in with the right password.
    let owner = post(
        &app,
        &client_from(7)?,
        None,
        &login_body(ADMIN_EMAIL, ADMIN_PASSWORD),
        &[],
    )
    .await?;
    str_at(&owner.body, "/data/login/accessToken")?;
    Ok(())
}

async fn change_password_guesses_are_limited_per_user(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let email = unique_email("changer");
    app.create_user(&admin.access, &email, "the real password")
        .await?;
    let session = app.login(&email, "the real password").await?;
    let change = |current: &str| {
        json!({
            "query": "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }",
            "variables": { "c": current, "n": "a brand new password" }
        })
    };
    let limit = app.state.config.limits.password_change_failures_per_window;
    let here = client_from(8)?;
    for _ in 0..limit {
        let answer = post(
            &app,
            &here,
            Some(&session.access),
            &change("a wrong guess"),
            &[],
        )
        .await?;
        assert_eq!(
            error_code(&answer.body),
            Some("BAD_USER_INPUT"),
            "{}",
            answer.body
        );
    }
    let before = hashes(&app).await?;
    // Past the budget even the right password waits, from any address: the budget is the user's.
    for (client, current) in [
        (&here, "another guess"),
        (&client_from(9)?, "the real password"),
    ] {
        let answer = post(&app, client, Some(&session.access), &change(current), &[]).await?;
        assert_eq!(
            error_code(&answer.body),
            Some("RATE_LIMITED"),
            "{}",
            answer.body
        );
        assert!(
            retry_after_of(&answer.body["errors"][0]).is_some_and(|s| s >= 1),
            "{}",
            answer.body
        );
    }
    assert_eq!(hashes(&app).await?, before, "refused before hashing");
    // The password did not change.
    app.login(&email, "the real password").await?;
    Ok(())
}

async fn the_request_budget_answers_429_with_retry_after(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let burst = app.state.config.limits.rate_limit_burst;
    assert!(burst > 0, "the request budget is on by default");
    let batch = json!(vec![json!({ "query": "{ __typename }" }); 10]);
    let mut refused = None;
    let mut sent = 0u32;
    // Far faster than the refill: the bucket runs dry within a few rounds.
    while refused.is_none() {
        anyhow::ensure!(sent < 40 * burst, "no 429 after {sent} operations");
        let round: Vec<_> = (0..20)
            .map(|_| post(&app, &app.http, Some(&admin.access), &batch, &[]))
            .collect();
        for answer in futures_util::future::try_join_all(round).await? {
            sent += 10;
            match answer.status {
                StatusCode::OK => {}
                StatusCode::TOO_MANY_REQUESTS => refused = Some(answer),
                other => anyhow::bail!("unexpected {other}: {}", answer.body),
            }
        }
    }
    let refused = refused.ok_or_else(|| anyhow::anyhow!("no refusal"))?;
    assert!(sent > burst, "refused within the burst: {sent}");
    assert_eq!(
        error_code(&refused.body),
        Some("RATE_LIMITED"),
        "{}",
        refused.body
    );
    let header = refused.retry_after;
    assert!(header.is_some_and(|s| s >= 1), "Retry-After: {header:?}");
    assert_eq!(retry_after_of(&refused.body["errors"][0]), header);
    // Someone else is not held back by it.
    let other = post(
        &app,
        &client_from(10)?,
        None,
        &json!({ "query": "{ __typename }" }),
        &[],
    )
    .await?;
    assert_eq!(other.status, StatusCode::OK, "{}", other.body);
    // And the user gets through again once the bucket refills.
    poll_until(
        std::time::Duration::from_secs(30),
        "the bucket to refill",
        || async {
            let again = post(
                &app,
                &app.http,
                Some(&admin.access),
                &json!({ "query": "{ __typename }" }),
                &[],
            )
            .await?;
            Ok(again.status == StatusCode::OK)
        },
    )
    .await?;
    Ok(())
}

async fn trusted_proxies_name_the_client(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend, &[("INTERLINK_TRUSTED_PROXIES", "127.0.0.0/8")]);
    let limit = app.state.config.limits.login_failures_per_window;
    let proxy = client_from(11)?;
    let wrong = login_body(ADMIN_EMAIL, "not the password");
    // The right-most address the proxy did not add itself is the client.
    let from_a = [("x-forwarded-for", "198.51.100.20, 127.0.0.12")];
    for _ in 0..limit {
        let answer = post(&app, &proxy, None, &wrong, &from_a).await?;
        assert_eq!(
            error_code(&answer.body),
            Some("UNAUTHENTICATED"),
            "{}",
            answer.body
        );
    }
    let right = login_body(ADMIN_EMAIL, ADMIN_PASSWORD);
    let locked = post(&app, &proxy, None, &right, &from_a).await?;
    assert_eq!(
        error_code(&locked.body),
        Some("RATE_LIMITED"),
        "{}",
        locked.body
    );
    // A client claiming to be someone else left of the real hop changes nothing.
    let claimed = [("x-forwarded-for", "203.0.113.50, 198.51.100.20")];
    let still = post(&app, &proxy, None, &right, &claimed).await?;
    assert_eq!(
        error_code(&still.body),
        Some("RATE_LIMITED"),
        "{}",
        still.body
    );
    // Another client behind the same proxy signs in.
    let from_b = [("x-forwarded-for", "198.51.100.21")];
    let other = post(&app, &proxy, None, &right, &from_b).await?;
    str_at(&other.body, "/data/login/accessToken")?;
    Ok(())
}

/// Subscriptions draw on the same per-client budget as HTTP operations (lowered here: a socket
/// holds at most 32 subscriptions, far fewer than the default burst).
async fn websocket_subscriptions_draw_on_the_budget(backend: Backend) -> anyhow::Result<()> {
    use crate::websocket::{connect, init, next, send};
    let app = spawn_or_skip!(
        backend,
        &[
            ("INTERLINK_RATE_LIMIT_PER_SECOND", "1"),
            ("INTERLINK_RATE_LIMIT_BURST", "2")
        ]
    );
    let admin = app.admin().await?;
    let mut socket = connect(&app).await?;
    init(&mut socket, Some(&admin.access)).await?;
    let query = "subscription { identityEvents { kind } }";
    // Sent at once: well within the one unit a second brings back.
    for id in ["a", "b", "c", "d"] {
        let subscribe = json!({ "id": id, "type": "subscribe", "payload": { "query": query } });
        send(&mut socket, subscribe).await?;
    }
    let refused = next(&mut socket, std::time::Duration::from_secs(5)).await?;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["payload"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(
        retry_after_of(&refused["payload"][0]).is_some_and(|s| s >= 1),
        "{refused}"
    );
    Ok(())
}

on_both_backends!(
    websocket_subscriptions_draw_on_the_budget,
    aliased_logins_hash_nothing_and_others_still_sign_in,
    a_batch_of_logins_draws_on_the_client_budget,
    strangers_cannot_lock_an_account,
    change_password_guesses_are_limited_per_user,
    the_request_budget_answers_429_with_retry_after,
    trusted_proxies_name_the_client,
);

/// A private Redis for a fault test, killed when dropped (also when the test fails).
struct PrivateRedis {
    child: std::process::Child,
    url: String,
}

impl PrivateRedis {
    fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()?;
        Ok(Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        })
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two nodes draw on one bucket through Redis; when Redis dies each keeps limiting on its own
/// instead of failing requests or letting everything through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_are_shared_through_redis_and_survive_its_loss() -> anyhow::Result<()> {
    use interlink::platform::rate_limit::{Bucket, Budget};
    use interlink::platform::redis::{RedisLink, RedisTarget};
    use std::num::NonZeroU32;
    use std::time::Duration;

    if crate::helpers::redis_url()?.is_none() {
        return Ok(());
    }
    let mut redis = match PrivateRedis::start() {
        Ok(redis) => redis,
        Err(err) if std::env::var("INTERLINK_REQUIRE_SERVICES").is_ok_and(|v| v == "1") => {
            return Err(err.context("starting redis-server"))
        }
        Err(_) => return Ok(()),
    };
    let target = RedisTarget::parse(&redis.url)?;
    poll_until(Duration::from_secs(10), "the private Redis", || async {
        Ok(RedisLink::connect(&target).await.is_ok())
    })
    .await?;
    let link = RedisLink::connect(&target).await?;
    let three = NonZeroU32::new(3).ok_or_else(|| anyhow::anyhow!("3 is not zero"))?;
    let budget = Budget::per_window(three, Duration::from_secs(600));
    let (a, b) = (
        Bucket::new("t", budget, Some((&link, "shared-test"))),
        Bucket::new("t", budget, Some((&link, "shared-test"))),
    );
    assert_eq!(a.take("client", 2).await, Ok(()));
    assert_eq!(b.take("client", 1).await, Ok(()));
    let wait = b.take("client", 1).await.err();
    assert!(
        wait.is_some_and(|w| w > Duration::from_secs(100)),
        "the second node saw the first one's spending: {wait:?}"
    );
    redis.kill();
    // Redis is gone: node A answers from its own bucket, which is fresh, then runs dry.
    for _ in 0..3 {
        assert_eq!(a.take("client", 1).await, Ok(()));
    }
    assert!(a.take("client", 1).await.is_err());
    Ok(())
}
