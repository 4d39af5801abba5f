//! Report rules: each statistic is one grouped SQL statement over the rows the viewer's list
//! would show, with the same text on PostgreSQL and SQLite but for a few date fragments here.
//!
//! The reports domain is a read model: it reads the tasks' and approvals' tables in SQL (as
//! the BI views do), through the owning domains' visibility conditions, and never writes them.

mod approvals;
mod rollups;
mod tasks;

pub use approvals::*;
pub use rollups::*;
pub use tasks::*;

use sea_orm::sea_query::{Alias, Asterisk, Expr, Query, SelectStatement};
use sea_orm::{DbBackend, QueryResult, Statement};

use super::model::{interpolate, percentile_rank, Percentiles, MAX_GROUPS};
use crate::error::AppResult;

/// Whole seconds since the epoch of a timestamp expression (fractions dropped on both).
fn secs(backend: DbBackend, expr: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("CAST(FLOOR(EXTRACT(EPOCH FROM {expr})) AS BIGINT)"),
        _ => format!("CAST(strftime('%s', {expr}) AS INTEGER)"),
    }
}

/// `YYYY-MM` of a timestamp expression, in UTC.
fn month(backend: DbBackend, expr: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM')"),
        _ => format!("strftime('%Y-%m', {expr})"),
    }
}

/// `YYYY-MM-DD` of a timestamp expression, in UTC.
fn day(backend: DbBackend, expr: &str) -> String {
    match backend {
        DbBackend::Postgres => format!("to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
        _ => format!("strftime('%Y-%m-%d', {expr})"),
    }
}

/// `select` capped one past the most groups an answer may have, the cap written as a literal.
/// As a parameter, PostgreSQL's generic plan (taken after five runs of a prepared statement)
/// guesses that the limit stops the scan early and walks a whole index in key order: the
/// overdue count went from 0.9 ms to 77 ms that way on the bench data.
fn capped(backend: DbBackend, select: &SelectStatement) -> Statement {
    let mut statement = backend.build(select);
    statement.sql = format!("{} LIMIT {}", statement.sql, MAX_GROUPS + 1);
    statement
}

/// A bigint sum that is 0 over no rows (PostgreSQL sums BIGINT into NUMERIC, hence the cast).
fn sum(column: &str) -> String {
    format!("COALESCE(CAST(SUM({column}) AS BIGINT), 0)")
}

const PERCENTS: [i64; 2] = [50, 85];

/// The window columns a percentile of `value` needs in the ranked level: each value's rank in
/// its group (nulls ranked apart) and the group's count of values.
fn ranked_columns(value: &str, partition: &[String]) -> [(String, String); 2] {
    let mut keys = partition.to_vec();
    keys.push(format!("CASE WHEN {value} IS NULL THEN 1 ELSE 0 END"));
    let by_value = keys.join(", ");
    let by_group = if partition.is_empty() {
        String::new()
    } else {
        format!("PARTITION BY {}", partition.join(", "))
    };
    [
        (
            format!("{value}_rn"),
            format!("ROW_NUMBER() OVER (PARTITION BY {by_value} ORDER BY {value})"),
        ),
        (
            format!("{value}_n"),
            format!("COUNT({value}) OVER ({by_group})"),
        ),
    ]
}

/// The two levels every statistic shares: `measured` rows with each of `values` ranked in its
/// group (`ranked_columns`), then grouped by `keys` with the group's `count`; the caller adds
/// its sums and `percentile_columns`.
fn ranked_and_grouped(
    measured: SelectStatement,
    values: &[&str],
    keys: &[String],
) -> SelectStatement {
    let mut ranked = Query::select();
    ranked
        .column(Asterisk)
        .from_subquery(measured, Alias::new("m"));
    for value in values {
        for (alias, expr) in ranked_columns(value, keys) {
            ranked.expr_as(Expr::cust(expr), Alias::new(alias));
        }
    }
    let mut outer = Query::select();
    outer.from_subquery(ranked, Alias::new("r"));
    for key in keys {
        outer.expr(Expr::col(Alias::new(key.as_str())));
        outer.group_by_col(Alias::new(key.as_str()));
    }
    outer.expr_as(Expr::cust("COUNT(*)"), Alias::new("count"));
    outer
}

/// The grouped level's picks: the group's count and, per percent, the values at the two ranks
/// `percentile_rank` names (1-based in SQL).
fn percentile_columns(value: &str) -> Vec<(String, String)> {
    let mut columns = vec![(format!("{value}_cnt"), format!("MAX({value}_n)"))];
    for percent in PERCENTS {
        for (suffix, step) in [("lo", 1), ("hi", 2)] {
            columns.push((
                format!("{value}_{percent}_{suffix}"),
                format!(
                    "MAX(CASE WHEN {value} IS NOT NULL AND {value}_rn = ({value}_n - 1) * {percent} / 100 + {step} THEN {value} END)"
                ),
            ));
        }
    }
    columns
}

/// Reads the picks of `percentile_columns` back into percentiles, in hours.
fn read_percentiles(row: &QueryResult, value: &str) -> AppResult<Percentiles> {
    let n: Option<i64> = row.try_get("", &format!("{value}_cnt"))?;
    let n = n.unwrap_or(0);
    let mut out = [None, None];
    if n > 0 {
        for (slot, percent) in out.iter_mut().zip(PERCENTS) {
            let (_, frac) = percentile_rank(n, percent);
            let low: Option<i64> = row.try_get("", &format!("{value}_{percent}_lo"))?;
            let high: Option<i64> = row.try_get("", &format!("{value}_{percent}_hi"))?;
            *slot = low.map(|low| {
                let high = if frac > 0 { high.unwrap_or(low) } else { low };
                super::model::hours(interpolate(low, high, frac))
            });
        }
    }
    Ok(Percentiles {
        p50: out[0],
        p85: out[1],
    })
}
