//! Identity: login, tokens and sessions, departments, users, roles and grants.

use chrono::Utc;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::{json, Value};

use crate::helpers::{error_code, str_at, unique_email, Backend, ADMIN_EMAIL, JWT_SECRET};
use crate::{on_both_backends, spawn_or_skip};

on_both_backends!(
    login_accepts_the_right_password_only,
    failed_logins_are_rate_limited,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    logout_ends_sessions,
    password_change_and_deactivation_invalidate_tokens,
    foreign_forged_and_expired_tokens_are_refused,
    departments_form_a_tree_without_cycles,
    users_have_unique_emails_and_admin_only_management,
    roles_and_scoped_grants_give_permissions,
    users_page_with_total_count,
);

const ME: &str = "{ me { id email name permissions roles { role { name } department { id } } } }";

async fn login_accepts_the_right_password_only(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let me = app.gql_ok(Some(&admin.access), ME, json!({})).await?;
    assert_eq!(me["me"]["email"], ADMIN_EMAIL);
    assert_eq!(me["me"]["permissions"], json!(["admin"]));

    let login =
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
    let wrong = app
        .gql(
            None,
            login,
            json!({ "e": ADMIN_EMAIL, "p": "not the password" }),
        )
        .await?;
    let unknown = app
        .gql(
            None,
            login,
            json!({ "e": "nobody@example.com", "p": "not the password" }),
        )
        .await?;
    assert_eq!(error_code(&wrong), Some("UNAUTHENTICATED"));
    assert_eq!(error_code(&unknown), Some("UNAUTHENTICATED"));
    // The answer does not tell an unknown email from a wrong password.
    assert_eq!(
        wrong["errors"][0]["message"],
        unknown["errors"][0]["message"]
    );

    // Emails match case-insensitively.
    let upper = app
        .login(&ADMIN_EMAIL.to_uppercase(), crate::helpers::ADMIN_PASSWORD)
        .await?;
    assert_eq!(upper.user_id, admin.user_id);

    let anonymous = app.gql(None, ME, json!({})).await?;
    assert_eq!(error_code(&anonymous), Some("UNAUTHENTICATED"));
    Ok(())
}

async fn failed_logins_are_rate_limited(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend, &[("INTERLINK_LOGIN_FAILURES_PER_WINDOW", "3")]);
    let login =
        "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
    for _ in 0..3 {
        let body = app
            .gql(
                None,
                login,
                json!({ "e": ADMIN_EMAIL, "p": "wrong password!" }),
            )
            .await?;
        assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
    }
    // Even the right password is refused until the window passes.
    let body = app
        .gql(
            None,
            login,
            json!({ "e": ADMIN_EMAIL, "p": crate::helpers::ADMIN_PASSWORD }),
        )
        .await?;
    assert_eq!(error_code(&body), Some("RATE_LIMITED"), "{body}");
    Ok(())
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let first = app.admin().await?;
    let refresh =
        "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";
    let second = app
        .gql_ok(None, refresh, json!({ "t": first.refresh }))
        .await?;
    let second_refresh = str_at(&second, "/refreshToken/refreshToken")?;
    assert_ne!(second_refresh, first.refresh);
    let second_access = str_at(&second, "/refreshToken/accessToken")?;
    app.gql_ok(Some(&second_access), ME, json!({})).await?;

    // Replaying the spent token is refused and revokes the whole family.
    let replay = app
        .gql(None, refresh, json!({ "t": first.refresh }))
        .await?;
    assert_eq!(error_code(&replay), Some("UNAUTHENTICATED"));
    let after = app
        .gql(None, refresh, json!({ "t": second_refresh }))
        .await?;
    assert_eq!(error_code(&after), Some("UNAUTHENTICATED"));

    let garbage = app
        .gql(None, refresh, json!({ "t": "not-a-token" }))
        .await?;
    assert_eq!(error_code(&garbage), Some("UNAUTHENTICATED"));

    // Another login is its own family and still works.
    let other = app.admin().await?;
    app.gql_ok(None, refresh, json!({ "t": other.refresh }))
        .await?;
    Ok(())
}

async fn logout_ends_sessions(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let session = app.admin().await?;
    let refresh = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }";
    let out = app
        .gql_ok(
            None,
            "mutation($t: String) { logout(refreshToken: $t) }",
            json!({ "t": session.refresh }),
        )
        .await?;
    assert_eq!(out["logout"], true);
    assert_eq!(
        error_code(
            &app.gql(None, refresh, json!({ "t": session.refresh }))
                .await?
        ),
        Some("UNAUTHENTICATED")
    );

    let everywhere = app.admin().await?;
    app.gql_ok(
        Some(&everywhere.access),
        "mutation { logout(allSessions: true) }",
        json!({}),
    )
    .await?;
    let stale = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&everywhere.access)
        .json(&json!({ "query": ME }))
        .send()
        .await?;
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        error_code(
            &app.gql(None, refresh, json!({ "t": everywhere.refresh }))
                .await?
        ),
        Some("UNAUTHENTICATED")
    );
    Ok(())
}

async fn password_change_and_deactivation_invalidate_tokens(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let email = unique_email("pw");
    let user_id = app
        .create_user(&admin.access, &email, "first password 1")
        .await?;
    let user = app.login(&email, "first password 1").await?;

    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let wrong = app
        .gql(
            Some(&user.access),
            change,
            json!({ "c": "not it at all", "n": "second password 2" }),
        )
        .await?;
    assert_eq!(error_code(&wrong), Some("BAD_USER_INPUT"));
    let weak = app
        .gql(
            Some(&user.access),
            change,
            json!({ "c": "first password 1", "n": "short" }),
        )
        .await?;
    assert_eq!(error_code(&weak), Some("BAD_USER_INPUT"));
    app.gql_ok(
        Some(&user.access),
        change,
        json!({ "c": "first password 1", "n": "second password 2" }),
    )
    .await?;
    let old = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&user.access)
        .json(&json!({ "query": ME }))
        .send()
        .await?;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let body: Value = old.json().await?;
    assert_eq!(error_code(&body), Some("UNAUTHENTICATED"));
    let refresh = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }";
    let stale = app.gql(None, refresh, json!({ "t": user.refresh })).await?;
    assert_eq!(error_code(&stale), Some("UNAUTHENTICATED"));
    let user = app.login(&email, "second password 2").await?;

    // A refresh token minted for an older token version (a login that raced the change) is dead
    // even though nothing revoked it.
    let racing = app.login(&email, "second password 2").await?;
    app.state
        .db
        .conn
        .execute_unprepared(&format!(
            "UPDATE refresh_tokens SET token_version = token_version - 1 WHERE token_hash = '{}'",
            interlink::auth::tokens::digest(&racing.refresh)
        ))
        .await?;
    let raced = app
        .gql(None, refresh, json!({ "t": racing.refresh }))
        .await?;
    assert_eq!(error_code(&raced), Some("UNAUTHENTICATED"));

    app.gql_ok(
        Some(&admin.access),
        "mutation($id: ID!) { deactivateUser(id: $id) { isActive } }",
        json!({ "id": user_id }),
    )
    .await?;
    let old = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&user.access)
        .json(&json!({ "query": ME }))
        .send()
        .await?;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let login = app
        .gql(None, "mutation($e: String!) { login(email: $e, password: \"second password 2\") { accessToken } }", json!({ "e": email }))
        .await?;
    assert_eq!(error_code(&login), Some("UNAUTHENTICATED"));
    let refresh = app
        .gql(
            None,
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
            json!({ "t": user.refresh }),
        )
        .await?;
    assert_eq!(error_code(&refresh), Some("UNAUTHENTICATED"));

    // Administrators cannot lock themselves out.
    let own = app
        .gql(
            Some(&admin.access),
            "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
            json!({ "id": admin.user_id }),
        )
        .await?;
    assert_eq!(error_code(&own), Some("CONFLICT"));

    app.gql_ok(
        Some(&admin.access),
        "mutation($id: ID!) { reactivateUser(id: $id) { isActive } }",
        json!({ "id": user_id }),
    )
    .await?;
    app.login(&email, "second password 2").await?;
    Ok(())
}

async fn foreign_forged_and_expired_tokens_are_refused(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let now = Utc::now().timestamp();
    let claims = |exp: i64, iss: &str, secret: &str| -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        Ok(encode(
            &header,
            &json!({ "sub": admin.user_id, "iss": iss, "aud": "interlink-api", "exp": exp, "iat": now - 10, "nbf": now - 10, "jti": "t", "ver": 0 }),
            &EncodingKey::from_secret(secret.as_bytes()),
        )?)
    };
    let valid = claims(now + 60, "interlink", JWT_SECRET)?;
    let accepted = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&valid)
        .json(&json!({ "query": ME }))
        .send()
        .await?;
    assert_eq!(accepted.status(), StatusCode::OK);

    for (name, token) in [
        ("expired", claims(now - 120, "interlink", JWT_SECRET)?),
        (
            "forged",
            claims(
                now + 60,
                "interlink",
                "another-secret-that-is-long-enough-1234",
            )?,
        ),
        (
            "foreign issuer",
            claims(now + 60, "someone-else", JWT_SECRET)?,
        ),
        ("garbage", "abc.def.ghi".to_owned()),
    ] {
        let response = app
            .http
            .post(app.url("/graphql"))
            .bearer_auth(&token)
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        let body: Value = response.json().await?;
        assert_eq!(error_code(&body), Some("UNAUTHENTICATED"), "{name}");
    }
    let basic = app
        .http
        .post(app.url("/graphql"))
        .header("authorization", "Basic abc")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await?;
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    Ok(())
}

async fn departments_form_a_tree_without_cycles(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let token = Some(admin.access.as_str());
    let create = "mutation($i: CreateDepartmentInput!) { createDepartment(input: $i) { id name parent { id } } }";
    let root = str_at(
        &app.gql_ok(token, create, json!({ "i": { "name": "Company" } }))
            .await?,
        "/createDepartment/id",
    )?;
    let sales = str_at(
        &app.gql_ok(
            token,
            create,
            json!({ "i": { "name": "Sales", "parentId": root } }),
        )
        .await?,
        "/createDepartment/id",
    )?;
    let north = str_at(
        &app.gql_ok(
            token,
            create,
            json!({ "i": { "name": "North", "parentId": sales } }),
        )
        .await?,
        "/createDepartment/id",
    )?;

    let update = "mutation($id: ID!, $i: UpdateDepartmentInput!) { updateDepartment(id: $id, input: $i) { id parent { id } } }";
    for (moving, under) in [(&root, &north), (&sales, &north), (&sales, &sales)] {
        let body = app
            .gql(
                token,
                update,
                json!({ "id": moving, "i": { "parentId": under } }),
            )
            .await?;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
        assert_eq!(body["errors"][0]["extensions"]["field"], "parentId");
    }
    let missing = app
        .gql(
            token,
            create,
            json!({ "i": { "name": "Orphan", "parentId": uuid::Uuid::now_v7().to_string() } }),
        )
        .await?;
    assert_eq!(error_code(&missing), Some("BAD_USER_INPUT"));
    let blank = app
        .gql(token, create, json!({ "i": { "name": "   " } }))
        .await?;
    assert_eq!(error_code(&blank), Some("BAD_USER_INPUT"));

    // The failed moves changed nothing.
    let tree = "query($id: ID!) { department(id: $id) { parent { id parent { id } } } }";
    let data = app.gql_ok(token, tree, json!({ "id": north })).await?;
    assert_eq!(data["department"]["parent"]["id"], sales.as_str());
    assert_eq!(data["department"]["parent"]["parent"]["id"], root.as_str());

    // A legal move carries the subtree along: North stays under Sales, Sales moves to the root.
    app.gql_ok(
        token,
        update,
        json!({ "id": sales, "i": { "parentId": null } }),
    )
    .await?;
    let data = app.gql_ok(token, tree, json!({ "id": north })).await?;
    assert_eq!(data["department"]["parent"]["id"], sales.as_str());
    assert_eq!(data["department"]["parent"]["parent"], Value::Null);
    let children = app
        .gql_ok(
            token,
            "query($id: ID!) { department(id: $id) { children { id } } }",
            json!({ "id": root }),
        )
        .await?;
    assert_eq!(children["department"]["children"], json!([]));
    // Paths were rewritten: Company can now move under North (no longer its descendant), but
    // Sales can still not move under Company, which now sits below Sales.
    app.gql_ok(
        token,
        update,
        json!({ "id": root, "i": { "parentId": north } }),
    )
    .await?;
    let cycle = app
        .gql(
            token,
            update,
            json!({ "id": sales, "i": { "parentId": root } }),
        )
        .await?;
    assert_eq!(error_code(&cycle), Some("BAD_USER_INPUT"), "{cycle}");
    let data = app
        .gql_ok(
            token,
            "query($id: ID!) { department(id: $id) { parent { id parent { id } } } }",
            json!({ "id": root }),
        )
        .await?;
    assert_eq!(data["department"]["parent"]["id"], north.as_str());
    assert_eq!(data["department"]["parent"]["parent"]["id"], sales.as_str());
    // Moving lost nothing.
    let data = app
        .gql_ok(token, "{ departments { id } }", json!({}))
        .await?;
    assert_eq!(data["departments"].as_array().map(Vec::len), Some(3));
    Ok(())
}

async fn users_have_unique_emails_and_admin_only_management(
    backend: Backend,
) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let email = unique_email("dup");
    app.create_user(&admin.access, &email, "a good password")
        .await?;
    let create = "mutation($i: CreateUserInput!) { createUser(input: $i) { id } }";
    let duplicate = app
        .gql(Some(&admin.access), create, json!({ "i": { "email": email.to_uppercase(), "name": "Twin", "password": "a good password" } }))
        .await?;
    assert_eq!(error_code(&duplicate), Some("CONFLICT"), "{duplicate}");
    for bad in [
        json!({ "email": "not-an-email", "name": "X", "password": "a good password" }),
        json!({ "email": unique_email("x"), "name": "", "password": "a good password" }),
        json!({ "email": unique_email("x"), "name": "X", "password": "short" }),
        json!({ "email": unique_email("x"), "name": "X", "password": "a good password", "departmentId": "nope" }),
    ] {
        let body = app
            .gql(Some(&admin.access), create, json!({ "i": bad }))
            .await?;
        assert_eq!(error_code(&body), Some("BAD_USER_INPUT"), "{body}");
    }
    let total = app
        .gql_ok(
            Some(&admin.access),
            "{ users(first: 0) { totalCount } }",
            json!({}),
        )
        .await?;
    assert_eq!(total["users"]["totalCount"], 2);

    let plain = app.login(&email, "a good password").await?;
    let forbidden = app
        .gql(Some(&plain.access), create, json!({ "i": { "email": unique_email("y"), "name": "Y", "password": "a good password" } }))
        .await?;
    assert_eq!(error_code(&forbidden), Some("FORBIDDEN"));
    let anonymous = app
        .gql(None, create, json!({ "i": { "email": unique_email("z"), "name": "Z", "password": "a good password" } }))
        .await?;
    assert_eq!(error_code(&anonymous), Some("UNAUTHENTICATED"));
    // Roles of others are private.
    let others = app
        .gql(
            Some(&plain.access),
            "query($id: ID!) { user(id: $id) { name roles { id } } }",
            json!({ "id": admin.user_id }),
        )
        .await?;
    assert_eq!(error_code(&others), Some("FORBIDDEN"));
    let total = app
        .gql_ok(
            Some(&admin.access),
            "{ users(first: 0) { totalCount } }",
            json!({}),
        )
        .await?;
    assert_eq!(total["users"]["totalCount"], 2);

    // Renaming and moving through updateUser.
    let dept = app
        .gql_ok(
            Some(&admin.access),
            "mutation { createDepartment(input: { name: \"Ops\" }) { id } }",
            json!({}),
        )
        .await?;
    let dept_id = str_at(&dept, "/createDepartment/id")?;
    let updated = app
        .gql_ok(
            Some(&admin.access),
            "mutation($id: ID!, $i: UpdateUserInput!) { updateUser(id: $id, input: $i) { name department { name } } }",
            json!({ "id": plain.user_id, "i": { "name": "Renamed", "departmentId": dept_id } }),
        )
        .await?;
    assert_eq!(updated["updateUser"]["name"], "Renamed");
    assert_eq!(updated["updateUser"]["department"]["name"], "Ops");
    Ok(())
}

async fn roles_and_scoped_grants_give_permissions(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    let token = Some(admin.access.as_str());
    let create_role =
        "mutation($i: CreateRoleInput!) { createRole(input: $i) { id name permissions } }";
    let role = app
        .gql_ok(
            token,
            create_role,
            json!({ "i": { "name": "Reviewer", "permissions": ["task.review", "finance.read"] } }),
        )
        .await?;
    let role_id = str_at(&role, "/createRole/id")?;
    let unknown = app
        .gql(
            token,
            create_role,
            json!({ "i": { "name": "Bad", "permissions": ["task.fly"] } }),
        )
        .await?;
    assert_eq!(error_code(&unknown), Some("BAD_USER_INPUT"));
    let empty = app
        .gql(
            token,
            create_role,
            json!({ "i": { "name": "Empty", "permissions": [] } }),
        )
        .await?;
    assert_eq!(error_code(&empty), Some("BAD_USER_INPUT"));
    let duplicate = app
        .gql(
            token,
            create_role,
            json!({ "i": { "name": "Reviewer", "permissions": ["admin"] } }),
        )
        .await?;
    assert_eq!(error_code(&duplicate), Some("CONFLICT"));

    let dept = app
        .gql_ok(
            token,
            "mutation { createDepartment(input: { name: \"Finance\" }) { id } }",
            json!({}),
        )
        .await?;
    let dept_id = str_at(&dept, "/createDepartment/id")?;
    let email = unique_email("grant");
    let user_id = app
        .create_user(&admin.access, &email, "a good password")
        .await?;
    let grant = "mutation($u: ID!, $r: ID!, $d: ID) { grantRole(userId: $u, roleId: $r, departmentId: $d) { id role { name } department { id } } }";
    let granted = app
        .gql_ok(
            token,
            grant,
            json!({ "u": user_id, "r": role_id, "d": dept_id }),
        )
        .await?;
    assert_eq!(granted["grantRole"]["department"]["id"], dept_id.as_str());
    let again = app
        .gql(
            token,
            grant,
            json!({ "u": user_id, "r": role_id, "d": dept_id }),
        )
        .await?;
    assert_eq!(error_code(&again), Some("CONFLICT"));
    let bad_role = app
        .gql(
            token,
            grant,
            json!({ "u": user_id, "r": uuid::Uuid::now_v7().to_string() }),
        )
        .await?;
    assert_eq!(error_code(&bad_role), Some("BAD_USER_INPUT"));

    let user = app.login(&email, "a good password").await?;
    let me = app.gql_ok(Some(&user.access), ME, json!({})).await?;
    assert_eq!(
        me["me"]["permissions"],
        json!(["finance.read", "task.review"])
    );
    assert_eq!(me["me"]["roles"][0]["department"]["id"], dept_id.as_str());
    // A scoped reviewer is not an administrator.
    let roles = app
        .gql(Some(&user.access), "{ roles { id } }", json!({}))
        .await?;
    assert_eq!(error_code(&roles), Some("FORBIDDEN"));

    // Updating the role changes the holder's permissions on their next request.
    app.gql_ok(
        token,
        "mutation($id: ID!) { updateRole(id: $id, input: { permissions: [\"finance.read\"] }) { permissions } }",
        json!({ "id": role_id }),
    )
    .await?;
    let me = app.gql_ok(Some(&user.access), ME, json!({})).await?;
    assert_eq!(me["me"]["permissions"], json!(["finance.read"]));

    // Nobody may remove the last administrator, by grant or by role.
    let admin_grant = app
        .gql_ok(token, "{ me { roles { id role { id } } } }", json!({}))
        .await?;
    let admin_grant_id = str_at(&admin_grant, "/me/roles/0/id")?;
    let admin_role_id = str_at(&admin_grant, "/me/roles/0/role/id")?;
    let last = app
        .gql(
            token,
            "mutation($g: ID!) { revokeRole(grantId: $g) }",
            json!({ "g": admin_grant_id }),
        )
        .await?;
    assert_eq!(error_code(&last), Some("CONFLICT"), "{last}");
    let stripped = app
        .gql(
            token,
            "mutation($id: ID!) { updateRole(id: $id, input: { permissions: [\"task.review\"] }) { id } }",
            json!({ "id": admin_role_id }),
        )
        .await?;
    assert_eq!(error_code(&stripped), Some("CONFLICT"), "{stripped}");
    let still = app.gql_ok(token, ME, json!({})).await?;
    assert_eq!(still["me"]["permissions"], json!(["admin"]));

    let grant_id = str_at(&granted, "/grantRole/id")?;
    app.gql_ok(
        token,
        "mutation($g: ID!) { revokeRole(grantId: $g) }",
        json!({ "g": grant_id }),
    )
    .await?;
    let me = app.gql_ok(Some(&user.access), ME, json!({})).await?;
    assert_eq!(me["me"]["permissions"], json!([]));
    Ok(())
}

async fn users_page_with_total_count(backend: Backend) -> anyhow::Result<()> {
    let app = spawn_or_skip!(backend);
    let admin = app.admin().await?;
    for i in 0..4 {
        app.create_user(
            &admin.access,
            &unique_email(&format!("page{i}")),
            "a good password",
        )
        .await?;
    }
    let page = "query($after: String) { users(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { email } } } }";
    let mut after = Value::Null;
    let mut seen = Vec::new();
    loop {
        let data = app
            .gql_ok(Some(&admin.access), page, json!({ "after": after }))
            .await?;
        assert_eq!(data["users"]["totalCount"], 5);
        for edge in data["users"]["edges"].as_array().into_iter().flatten() {
            seen.push(edge["node"]["email"].clone());
        }
        if data["users"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = data["users"]["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(seen.len(), 5);
    let search = app
        .gql_ok(
            Some(&admin.access),
            "{ users(filter: { search: \"PAGE2\" }) { totalCount } }",
            json!({}),
        )
        .await?;
    assert_eq!(search["users"]["totalCount"], 1);
    // LIKE wildcards in a search are literal.
    app.create_user(
        &admin.access,
        &unique_email("under_score"),
        "a good password",
    )
    .await?;
    app.create_user(
        &admin.access,
        &unique_email("underXscore"),
        "a good password",
    )
    .await?;
    let literal = app
        .gql_ok(
            Some(&admin.access),
            "{ users(filter: { search: \"under_score\" }) { totalCount } }",
            json!({}),
        )
        .await?;
    assert_eq!(literal["users"]["totalCount"], 1);
    let percent = app
        .gql_ok(
            Some(&admin.access),
            "{ users(filter: { search: \"%\" }) { totalCount } }",
            json!({}),
        )
        .await?;
    assert_eq!(percent["users"]["totalCount"], 0);
    let too_many = app
        .gql(
            Some(&admin.access),
            "{ users(first: 101) { totalCount } }",
            json!({}),
        )
        .await?;
    assert_eq!(error_code(&too_many), Some("BAD_USER_INPUT"));
    Ok(())
}
