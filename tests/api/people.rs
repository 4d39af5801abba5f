//! The people directory and who reads an email: names for everyone signed in, addresses only
//! for the person, their department and administrators.

use serde_json::{json, Value};

use crate::helpers::{error_code, str_at, Backend};
use crate::on_both_backends;
use crate::tasks::company;

on_both_backends!(
    everyone_finds_people_but_emails_stay_in_the_department,
    the_directory_refuses_bad_input,
);

const PEOPLE: &str = "query($s: String, $d: ID, $i: Boolean, $f: Int, $a: String) {
    people(search: $s, departmentId: $d, includeInactive: $i, first: $f, after: $a) {
        totalCount pageInfo { hasNextPage endCursor }
        edges { node { id name email isActive department { id } } } } }";

fn nodes(data: &Value) -> Vec<Value> {
    data["people"]["edges"]
        .as_array()
        .map(|edges| edges.iter().map(|e| e["node"].clone()).collect())
        .unwrap_or_default()
}

async fn everyone_finds_people_but_emails_stay_in_the_department(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let db = &c.app.state.db.conn;
    // A name unlike the email, to tell a name match from an address match.
    use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel};
    let stranger_id = uuid::Uuid::parse_str(&c.stranger.user_id)?;
    let stranger = entities::user::Entity::find_by_id(stranger_id)
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the stranger exists"))?;
    let stranger_email = stranger.email.clone();
    let mut renamed = stranger.into_active_model();
    renamed.name = sea_orm::Set("Zhang Wei".into());
    renamed.update(db).await?;

    // The executor (North) looks the stranger (Elsewhere) up by name: found, no address.
    let found = c
        .ok_as(&c.executor, PEOPLE, json!({ "s": "zhang" }))
        .await?;
    let people = nodes(&found);
    assert_eq!(people.len(), 1, "{found}");
    assert_eq!(people[0]["id"], c.stranger.user_id.as_str());
    assert_eq!(people[0]["name"], "Zhang Wei");
    assert!(people[0]["email"].is_null(), "{found}");
    assert!(people[0]["department"]["id"].is_string());
    // Searching by the address finds nobody for a non-administrator...
    let by_address = c
        .ok_as(&c.executor, PEOPLE, json!({ "s": stranger_email }))
        .await?;
    assert_eq!(by_address["people"]["totalCount"], 0, "{by_address}");
    // ...and the one-person read keeps the address too.
    let one = c
        .ok_as(
            &c.executor,
            "query($id: ID!) { user(id: $id) { name email } }",
            json!({ "id": c.stranger.user_id }),
        )
        .await?;
    assert!(one["user"]["email"].is_null(), "{one}");
    // An administrator reads it, and finds people by it.
    let admin = c
        .app
        .gql_ok(
            Some(&c.admin.access),
            PEOPLE,
            json!({ "s": stranger_email }),
        )
        .await?;
    assert_eq!(
        nodes(&admin)[0]["email"],
        stranger_email.as_str(),
        "{admin}"
    );

    // The North department: colleagues' addresses are shown, ordered by name.
    let north = c
        .ok_as(&c.executor, PEOPLE, json!({ "d": c.north }))
        .await?;
    let colleagues = nodes(&north);
    assert_eq!(
        colleagues.len(),
        4,
        "initiator, two executors, confirmer: {north}"
    );
    assert!(colleagues.iter().all(|p| p["email"].is_string()), "{north}");
    let names: Vec<&str> = colleagues
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    let me = c.ok_as(&c.executor, "{ me { email } }", json!({})).await?;
    assert!(me["me"]["email"].is_string());

    // Pages: two at a time, every North person once.
    let first = c
        .ok_as(&c.executor, PEOPLE, json!({ "d": c.north, "f": 2 }))
        .await?;
    assert_eq!(first["people"]["pageInfo"]["hasNextPage"], true);
    let cursor = str_at(&first, "/people/pageInfo/endCursor")?;
    let second = c
        .ok_as(
            &c.executor,
            PEOPLE,
            json!({ "d": c.north, "f": 2, "a": cursor }),
        )
        .await?;
    let paged: Vec<Value> = nodes(&first).into_iter().chain(nodes(&second)).collect();
    assert_eq!(paged, colleagues);
    assert_eq!(second["people"]["pageInfo"]["hasNextPage"], false);

    // Without `totalCount` nothing counts the matches, and the pages still know their ends.
    const UNCOUNTED: &str = "query($d: ID, $f: Int, $a: String) {
        people(departmentId: $d, first: $f, after: $a) {
            pageInfo { hasNextPage endCursor }
            edges { node { id name email isActive department { id } } } } }";
    let mut uncounted = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..colleagues.len() {
        let before = c.app.state.db.statement_count();
        let viewers_before = c.app.state.viewers.reads();
        let page = c
            .ok_as(
                &c.executor,
                UNCOUNTED,
                json!({ "d": c.north, "f": 2, "a": after }),
            )
            .await?;
        // The page (one row past it says whether another follows) and its departments, besides
        // the viewer when it was not cached.
        let statements = c.app.state.db.statement_count() - before;
        let viewers = c.app.state.viewers.reads() - viewers_before;
        assert_eq!(
            statements - viewers,
            2,
            "{statements} statements, {viewers} viewer reads"
        );
        uncounted.extend(nodes(&page));
        if page["people"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = Some(str_at(&page, "/people/pageInfo/endCursor")?);
    }
    assert_eq!(uncounted, colleagues);

    // A deactivated person leaves the directory unless asked for.
    c.app
        .gql_ok(
            Some(&c.admin.access),
            "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
            json!({ "id": c.stranger.user_id }),
        )
        .await?;
    let gone = c
        .ok_as(&c.executor, PEOPLE, json!({ "s": "zhang" }))
        .await?;
    assert_eq!(gone["people"]["totalCount"], 0, "{gone}");
    let kept = c
        .ok_as(&c.executor, PEOPLE, json!({ "s": "zhang", "i": true }))
        .await?;
    assert_eq!(nodes(&kept)[0]["isActive"], false, "{kept}");
    Ok(())
}

async fn the_directory_refuses_bad_input(backend: Backend) -> anyhow::Result<()> {
    let Some(c) = company(backend).await? else {
        return Ok(());
    };
    let anonymous = c.app.gql(None, PEOPLE, json!({})).await?;
    assert_eq!(
        error_code(&anonymous),
        Some("UNAUTHENTICATED"),
        "{anonymous}"
    );
    for (variables, field) in [
        (json!({ "f": 101 }), "first"),
        (json!({ "s": "x".repeat(201) }), "search"),
        (json!({ "d": "not-an-id" }), "departmentId"),
        (json!({ "a": "not-a-cursor" }), "after"),
    ] {
        let refused = c.as_(&c.executor, PEOPLE, variables.clone()).await?;
        assert_eq!(
            error_code(&refused),
            Some("BAD_USER_INPUT"),
            "{variables}: {refused}"
        );
        assert_eq!(
            refused["errors"][0]["extensions"]["field"], field,
            "{variables}: {refused}"
        );
    }
    Ok(())
}
