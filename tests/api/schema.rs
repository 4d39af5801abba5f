//! The committed SDL is what the code serves.

use crate::helpers::repo_file;

#[test]
fn committed_schema_matches_the_code() -> anyhow::Result<()> {
    let committed = std::fs::read_to_string(repo_file("schema/schema.graphql"))?;
    let current = interlink::api::sdl();
    assert!(!current.is_empty());
    assert!(
        committed == current,
        "schema/schema.graphql is stale: run `cargo run -- schema > schema/schema.graphql`"
    );
    Ok(())
}
