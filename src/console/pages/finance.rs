//! Finance for `finance.read` holders, over their cost centres only: the trial balance, profit
//! and loss by month (a server-drawn chart) and by department, budget use as bars, and each
//! account's ledger; with CSV downloads of the same reports.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::Response;
use chrono::{Datelike, NaiveDate, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::Permission;
use crate::console::layout;
use crate::console::session::Signed;
use crate::domains::finance::service::{self as finance, PnlCell};
use crate::domains::identity::service as identity;
use crate::error::{AppError, AppResult};
use crate::platform::money::{currency_exponent, Decimal};

pub const LEDGER_PAGE: u64 = 50;

/// Whether the viewer reads any part of the ledger (the services narrow it to their subtrees).
pub fn reads_finance(signed: &Signed) -> bool {
    signed.me.holds_anywhere(Permission::FinanceRead)
}

/// An amount in minor units, written the locale's way.
pub fn amount(signed: &Signed, minor: i128) -> String {
    let currency = &signed.app.config.currency;
    let exact = Decimal::from_wide_minor(minor, currency_exponent(currency)).to_string();
    signed.locale.money(&exact, currency)
}

#[derive(Deserialize, Default)]
pub struct Period {
    from: Option<String>,
    to: Option<String>,
    page: Option<u64>,
}

fn this_year() -> (NaiveDate, NaiveDate) {
    let today = Utc::now().date_naive();
    let start = NaiveDate::from_ymd_opt(today.year(), 1, 1).unwrap_or(today);
    (start, today)
}

/// The asked period, this year to date when none is given. A date that does not parse is
/// `BAD_USER_INPUT` naming its field, shown beside the form.
fn period_of(asked: &Period) -> AppResult<(NaiveDate, NaiveDate)> {
    let (start_of_year, today) = this_year();
    let parse = |raw: &Option<String>, field: &str, default: NaiveDate| match raw
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => Ok(default),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| AppError::bad_field(field, "a date is YYYY-MM-DD")),
    };
    let from = parse(&asked.from, "from", start_of_year)?;
    let to = parse(&asked.to, "to", today)?;
    if to < from {
        return Err(AppError::bad_field(
            "to",
            "the period ends before it starts",
        ));
    }
    Ok((from, to))
}

fn period_form(
    signed: &Signed,
    action: &str,
    from: NaiveDate,
    to: NaiveDate,
    err: Option<&AppError>,
) -> Markup {
    let t = signed.t();
    html! {
        form method="get" action=(action) class="filters" aria-label=(t.period) {
            (layout::field(t.from, "from", "from", err, html! {
                input id="from" name="from" type="date" value=(from.format("%Y-%m-%d"));
            }))
            (layout::field(t.to, "to", "to", err, html! {
                input id="to" name="to" type="date" value=(to.format("%Y-%m-%d"));
            }))
            button type="submit" { (t.apply) }
        }
    }
}

/// A CSV download is a form: the export it may start is work done for the person, so it takes
/// the form token like any other action (a link would let another site start exports).
fn csv_link(signed: &Signed, report: &str, query: &[(&str, String)]) -> Markup {
    let t = signed.t();
    html! {
        form method="post" action=(format!("/finance/export/{report}.csv")) class="inline csv" {
            (layout::token_field(&signed.form_token))
            @for (name, value) in query {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" class="link" { (t.download_csv) }
        }
    }
}

/// Revenue and expense per month as paired bars, drawn on the server; the table after it
/// carries the same figures for screen readers and for copying.
fn pnl_chart(signed: &Signed, months: &[&PnlCell]) -> Markup {
    let t = signed.t();
    let top = months
        .iter()
        .flat_map(|m| [m.revenue, m.expense])
        .max()
        .unwrap_or(0)
        .max(1);
    let (slot, bar, height) = (56_i128, 20_i128, 160_i128);
    let width = (months.len() as i128 * slot).max(slot);
    let scaled = |value: i128| (value.max(0) * height / top).max(1);
    html! {
        svg class="chart pnl" viewBox=(format!("0 0 {} {}", width, height + 40)) role="img"
            aria-label=(t.profit_and_loss_chart) {
            @for (i, month) in months.iter().enumerate() {
                @let x = i as i128 * slot + 6;
                @let (revenue, expense) = (scaled(month.revenue), scaled(month.expense));
                rect class="chart-bar revenue" x=(x) y=(height - revenue) width=(bar) height=(revenue) {
                    title { (t.revenue) " " (amount(signed, month.revenue)) }
                }
                rect class="chart-bar expense" x=(x + bar + 2) y=(height - expense) width=(bar) height=(expense) {
                    title { (t.expense) " " (amount(signed, month.expense)) }
                }
                text class="chart-label" x=(x) y=(height + 18) { (month.month.as_deref().unwrap_or("")) }
            }
        }
        p class="legend" {
            span class="swatch revenue" aria-hidden="true" {} " " (t.revenue) " "
            span class="swatch expense" aria-hidden="true" {} " " (t.expense)
        }
    }
}

fn pnl_table(signed: &Signed, first_column: &str, rows: &[(String, &PnlCell)]) -> Markup {
    let t = signed.t();
    html! {
        div class="table-wrap" tabindex="0" role="region" aria-label=(first_column) {
            table {
                thead { tr {
                    th scope="col" { (first_column) }
                    th scope="col" class="num" { (t.revenue) }
                    th scope="col" class="num" { (t.expense) }
                    th scope="col" class="num" { (t.net) }
                } }
                tbody {
                    @for (label, cell) in rows {
                        tr {
                            th scope="row" { (label) }
                            td class="num" { (amount(signed, cell.revenue)) }
                            td class="num" { (amount(signed, cell.expense)) }
                            td class="num" { (amount(signed, cell.revenue - cell.expense)) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn overview(signed: Signed, Query(asked): Query<Period>) -> Response {
    if !reads_finance(&signed) {
        return layout::not_found(signed.locale);
    }
    let ((from, to), period_error) = match period_of(&asked) {
        Ok(period) => (period, None),
        Err(err) => (this_year(), Some(err)),
    };
    let db = &signed.app.db.conn;
    let viewer = &signed.viewer;
    let loaded = async {
        let trial = finance::trial_balance(db, viewer, Some(to)).await?;
        let by_month = finance::profit_and_loss(db, viewer, from, to, false, true).await?;
        let by_department = finance::profit_and_loss(db, viewer, from, to, true, false).await?;
        let budgets = finance::budget_usage(db, viewer, None).await?;
        let accounts = finance::list_accounts(db, viewer).await?;
        let departments: HashMap<_, _> = identity::list_departments(db, viewer)
            .await?
            .into_iter()
            .map(|d| (d.id, d.name))
            .collect();
        AppResult::Ok((
            trial,
            by_month,
            by_department,
            budgets,
            accounts,
            departments,
        ))
    };
    let (trial, by_month, by_department, budgets, accounts, departments) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let posts = signed.me.has_global(Permission::FinancePost);
    let dates = [
        ("from", from.format("%Y-%m-%d").to_string()),
        ("to", to.format("%Y-%m-%d").to_string()),
    ];
    let total_debit: i128 = trial.iter().map(|r| r.debit).sum();
    let total_credit: i128 = trial.iter().map(|r| r.credit).sum();
    let mut months: Vec<&PnlCell> = by_month.iter().collect();
    months.sort_by(|a, b| a.month.cmp(&b.month));
    let month_rows: Vec<(String, &PnlCell)> = months
        .iter()
        .map(|m| (m.month.clone().unwrap_or_default(), *m))
        .collect();
    let department_rows: Vec<(String, &PnlCell)> = by_department
        .iter()
        .map(|cell| {
            let name = cell
                .cost_center
                .and_then(|id| departments.get(&id).cloned())
                .unwrap_or_else(|| t.no_cost_center.to_owned());
            (name, cell)
        })
        .collect();
    let content = html! {
        (layout::alert(t, period_error.as_ref()))
        (period_form(&signed, "/finance", from, to, period_error.as_ref()))
        section aria-labelledby="trial-h" {
            h2 id="trial-h" { (t.trial_balance) " · " (signed.locale.day(to)) }
            (csv_link(&signed, "trial-balance", &[("asOf", dates[1].1.clone())]))
            div class="table-wrap" tabindex="0" role="region" aria-label=(t.trial_balance) {
                table {
                    thead { tr {
                        th scope="col" { (t.code) } th scope="col" { (t.name) }
                        th scope="col" class="num" { (t.debit) } th scope="col" class="num" { (t.credit) }
                    } }
                    tbody {
                        @for row in &trial {
                            tr {
                                td { a href=(format!("/finance/ledger/{}", row.account.code)) { (row.account.code) } }
                                td { (row.account.name) }
                                td class="num" { (amount(&signed, row.debit)) }
                                td class="num" { (amount(&signed, row.credit)) }
                            }
                        }
                    }
                    tfoot { tr {
                        th scope="row" colspan="2" { (t.total) }
                        td class="num" id="total-debit" { (amount(&signed, total_debit)) }
                        td class="num" id="total-credit" { (amount(&signed, total_credit)) }
                    } }
                }
            }
        }
        section aria-labelledby="pnl-h" {
            h2 id="pnl-h" { (t.profit_and_loss) }
            (csv_link(&signed, "profit-and-loss", &[dates[0].clone(), dates[1].clone(), ("groupBy", "MONTH".into())]))
            @if months.is_empty() {
                p { (t.nothing_posted) }
            } @else {
                (pnl_chart(&signed, &months))
                (pnl_table(&signed, t.month, &month_rows))
            }
            h3 { (t.by_department) }
            (pnl_table(&signed, t.department, &department_rows))
        }
        section aria-labelledby="budgets-h" {
            h2 id="budgets-h" { (t.budgets) }
            @if budgets.is_empty() {
                p { (t.no_budgets) }
            }
            ul class="budgets" {
                @for usage in &budgets {
                    @let budgeted = i128::from(usage.budget.amount_minor);
                    @let center = departments.get(&usage.budget.cost_center_id).cloned().unwrap_or_default();
                    @let label = format!("{} · {} · {}", usage.account.code, center, usage.budget.period_start.format("%Y-%m"));
                    li {
                        span class="budget-label" { (label) }
                        meter min="0" max=(budgeted.max(1)) value=(usage.actual.clamp(0, budgeted.max(1)))
                            low=(budgeted * 8 / 10) high=(budgeted * 95 / 100) optimum="0"
                            aria-label=(label) {}
                        span class=(if usage.actual > budgeted { "budget-figures over" } else { "budget-figures" }) {
                            (amount(&signed, usage.actual)) " / " (amount(&signed, budgeted))
                            " · " (usage.budget.policy)
                        }
                        @if posts {
                            " " a href=(format!("/configuration/budgets/{}", usage.budget.id)) { (t.edit) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="accounts-h" {
            h2 id="accounts-h" { (t.accounts) }
            ul {
                @for account in &accounts {
                    li {
                        a href=(format!("/finance/ledger/{}", account.code)) { (account.code) " · " (account.name) }
                        " · " (account.account_type)
                        @if account.deactivated_at.is_some() { " · " (t.deactivated) }
                        @if posts {
                            " " a href=(format!("/configuration/accounts/{}", account.id)) { (t.edit) }
                        }
                    }
                }
            }
        }
    };
    layout::page_refusing(&signed, t.finance, content, period_error.as_ref()).await
}

pub async fn ledger(
    signed: Signed,
    Path(code): Path<String>,
    Query(asked): Query<Period>,
) -> Response {
    if !reads_finance(&signed) {
        return layout::not_found(signed.locale);
    }
    let (from, to) = match period_of(&asked) {
        Ok(period) => period,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let page = asked.page.unwrap_or(0).min(100_000);
    let db = &signed.app.db.conn;
    let loaded = async {
        let ledger = finance::account_ledger(
            db,
            &signed.viewer,
            &code,
            Some(from),
            Some(to),
            page * LEDGER_PAGE,
            LEDGER_PAGE,
        )
        .await?;
        let departments: HashMap<_, _> = identity::list_departments(db, &signed.viewer)
            .await?
            .into_iter()
            .map(|d| (d.id, d.name))
            .collect();
        AppResult::Ok((ledger, departments))
    };
    let (ledger, departments) = match loaded.await {
        Ok(loaded) => loaded,
        // An unknown code is a page that does not exist.
        Err(AppError::BadUserInput { .. }) => return layout::not_found(signed.locale),
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let t = signed.t();
    let here = format!("/finance/ledger/{}", ledger.account.code);
    let dates = [
        ("from", from.format("%Y-%m-%d").to_string()),
        ("to", to.format("%Y-%m-%d").to_string()),
    ];
    let more = (page + 1) * LEDGER_PAGE < ledger.total;
    let content = html! {
        p { a href="/finance" { (t.finance) } }
        (period_form(&signed, &here, from, to, None))
        (csv_link(&signed, "ledger", &[("accountCode", ledger.account.code.clone()), dates[0].clone(), dates[1].clone()]))
        p { (t.opening_balance) ": " (amount(&signed, ledger.opening)) }
        div class="table-wrap" tabindex="0" role="region" aria-label=(t.ledger) {
            table {
                thead { tr {
                    th scope="col" { (t.date) } th scope="col" { (t.memo) } th scope="col" { (t.department) }
                    th scope="col" class="num" { (t.debit) } th scope="col" class="num" { (t.credit) }
                    th scope="col" class="num" { (t.balance) }
                } }
                tbody {
                    @for line in &ledger.lines {
                        tr {
                            td { (line.line.posting_date.format("%Y-%m-%d")) }
                            td { (line.memo) }
                            td { (line.line.cost_center_id.and_then(|c| departments.get(&c).cloned()).unwrap_or_default()) }
                            td class="num" { (amount(&signed, line.line.debit_minor.into())) }
                            td class="num" { (amount(&signed, line.line.credit_minor.into())) }
                            td class="num" { (amount(&signed, line.balance)) }
                        }
                    }
                }
            }
        }
        @if more {
            p { a href=(format!("{here}?{}", serde_urlencoded::to_string([
                dates[0].clone(), dates[1].clone(), ("page", (page + 1).to_string()),
            ]).unwrap_or_default())) { (t.next_page) } }
        }
    };
    let title = format!(
        "{} · {} {}",
        t.ledger, ledger.account.code, ledger.account.name
    );
    layout::page(&signed, &title, content).await
}
