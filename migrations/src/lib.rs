//! Forward-only schema migrations; a landed migration is never edited, each change is a new one.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_create_identity;
mod m20261127_000002_create_approvals_and_tasks;
mod m20261127_000003_add_refresh_token_version;
mod m20261127_000004_one_decision_per_person;
mod m20261127_000005_create_finance;
mod m20261127_000006_create_business_transactions;
mod m20261127_000007_create_scheduler;
mod m20261127_000008_add_task_board_index;
mod m20261127_000009_maintain_main_task_count;
mod m20261127_000010_index_live_comments_in_order;
mod m20261201_000011_create_event_log;
mod m20261201_000012_realign_edited_migrations;
mod m20261202_000013_create_apps_and_api_keys;
mod m20261202_000014_create_webhooks;
mod m20261202_000015_create_report_rollups;
mod m20261202_000016_create_bi_schema;
mod m20261202_000017_add_bi_rollup_view;
mod m20261203_000021_create_task_rollup_months;
mod m20261203_000022_create_executor_rollups;
mod m20261203_000023_version_approval_flows;
mod m20261203_000024_add_task_category_archived_at;
mod m20261203_000025_add_account_deactivated_at;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_identity::Migration),
            Box::new(m20261127_000002_create_approvals_and_tasks::Migration),
            Box::new(m20261127_000003_add_refresh_token_version::Migration),
            Box::new(m20261127_000004_one_decision_per_person::Migration),
            Box::new(m20261127_000005_create_finance::Migration),
            Box::new(m20261127_000006_create_business_transactions::Migration),
            Box::new(m20261127_000007_create_scheduler::Migration),
            Box::new(m20261127_000008_add_task_board_index::Migration),
            Box::new(m20261127_000009_maintain_main_task_count::Migration),
            Box::new(m20261127_000010_index_live_comments_in_order::Migration),
            Box::new(m20261201_000011_create_event_log::Migration),
            Box::new(m20261201_000012_realign_edited_migrations::Migration),
            Box::new(m20261202_000013_create_apps_and_api_keys::Migration),
            Box::new(m20261202_000014_create_webhooks::Migration),
            Box::new(m20261202_000015_create_report_rollups::Migration),
            Box::new(m20261202_000016_create_bi_schema::Migration),
            Box::new(m20261202_000017_add_bi_rollup_view::Migration),
            Box::new(m20261203_000021_create_task_rollup_months::Migration),
            Box::new(m20261203_000022_create_executor_rollups::Migration),
            Box::new(m20261203_000023_version_approval_flows::Migration),
            Box::new(m20261203_000024_add_task_category_archived_at::Migration),
            Box::new(m20261203_000025_add_account_deactivated_at::Migration),
        ]
    }
}

#[cfg(test)]
mod tests {
    //! The guard behind "never edit a landed migration": every migration file must match the
    //! checksum committed in `migrations/checksums.txt` when it landed.

    use std::collections::BTreeMap;
    use std::fmt::Write as _;
    use std::path::Path;

    use sha2::{Digest, Sha256};

    const REGENERATE: &str =
        "(cd migrations/src && sha256sum m[0-9]*.rs) > migrations/checksums.txt";

    /// `sha256sum` output: `<hex>  <path>` (or `<hex> *<path>` in binary mode), keyed by file
    /// name so that running it with or without a directory prefix reads the same.
    fn listed(text: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (number, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (hash, path) = line
                .split_once(' ')
                .unwrap_or_else(|| panic!("checksums.txt line {}: {line:?}", number + 1));
            let path = path.trim_start_matches([' ', '*']);
            let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
            assert!(
                hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                "checksums.txt line {}: not a sha256: {line:?}",
                number + 1
            );
            let previous = out.insert(name.to_owned(), hash.to_ascii_lowercase());
            assert!(previous.is_none(), "checksums.txt lists {name} twice");
        }
        out
    }

    fn on_disk(dir: &Path) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(dir).expect("reading migrations/src") {
            let path = entry.expect("reading migrations/src").path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let numbered = name
                .strip_prefix('m')
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
            if numbered && name.ends_with(".rs") {
                let bytes = std::fs::read(&path).expect("reading a migration");
                let mut hex = String::with_capacity(64);
                for byte in Sha256::digest(&bytes) {
                    let _ = write!(hex, "{byte:02x}");
                }
                out.insert(name.to_owned(), hex);
            }
        }
        out
    }

    #[test]
    fn landed_migrations_are_unchanged() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("checksums.txt"))
            .expect("reading migrations/checksums.txt");
        let listed = listed(&text);
        let found = on_disk(&root.join("src"));
        let mut problems = Vec::new();
        for (name, hash) in &listed {
            match found.get(name) {
                None => problems.push(format!(
                    "{name} is listed but gone: a landed migration is never removed \
                     (databases have run it); restore it"
                )),
                Some(actual) if actual != hash => problems.push(format!(
                    "{name} changed after it landed (sha256 {actual}, listed {hash}): revert \
                     the edit and put the change in a new migration (see migrations/README.md)"
                )),
                Some(_) => {}
            }
        }
        for name in found.keys().filter(|name| !listed.contains_key(*name)) {
            problems.push(format!(
                "{name} is new and not in migrations/checksums.txt: add it with `{REGENERATE}` \
                 (from the repository root) in the change that adds the migration"
            ));
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    /// A migration file that is not registered would never run, yet would pass the checksum.
    #[test]
    fn every_migration_file_is_registered() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("reading lib.rs");
        let unregistered: Vec<_> = on_disk(&root.join("src"))
            .into_keys()
            .filter_map(|name| {
                let module = name.trim_end_matches(".rs").to_owned();
                let declared = lib.contains(&format!("mod {module};"));
                let listed = lib.contains(&format!("{module}::Migration"));
                (!(declared && listed)).then_some(module)
            })
            .collect();
        assert!(
            unregistered.is_empty(),
            "not registered in migrations/src/lib.rs (mod + Migrator::migrations): {unregistered:?}"
        );
    }
}
