//! The ledger's configuration for `finance.post` holders: the chart of accounts (create, edit,
//! deactivate, reactivate) and budgets (create, edit amount and policy).

use std::collections::HashMap;

use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use entities::{account, budget};
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use crate::auth::Permission;
use crate::console::layout::{self, field, token_field};
use crate::console::session::{Form, Signed};
use crate::domains::finance::model::{
    AccountChanges, AccountId, AccountType, BudgetChanges, BudgetId, BudgetPolicy, NewBudget,
};
use crate::domains::finance::service as finance;
use crate::domains::identity::model::parse_name;
use crate::domains::identity::service as identity;
use crate::error::{AppError, AppResult};
use crate::platform::money::{currency_exponent, Decimal};

const ACCOUNT_TYPES: [&str; 5] = ["ASSET", "LIABILITY", "EQUITY", "REVENUE", "EXPENSE"];
const POLICIES: [&str; 3] = ["STOP", "WARN", "IGNORE"];

pub fn posts_to_ledger(signed: &Signed) -> bool {
    signed.me.has_global(Permission::FinancePost)
}

/// The rows the configuration overview lists, for those who may post.
pub async fn overview_section(signed: &Signed) -> AppResult<Markup> {
    let db = &signed.app.db.conn;
    let accounts = finance::chart_of_accounts(db, &signed.viewer).await?;
    let budgets = finance::list_budgets(db, &signed.viewer).await?;
    let centers = department_names(signed).await?;
    let codes: HashMap<Uuid, &str> = accounts.iter().map(|a| (a.id, a.code.as_str())).collect();
    let t = signed.t();
    Ok(html! {
        section aria-labelledby="accounts-h" {
            h2 id="accounts-h" { (t.accounts) }
            p { a class="button" href="/configuration/accounts/new" { (t.new_account) } }
            div class="table-wrap" tabindex="0" role="region" aria-label=(t.accounts) {
                table {
                    thead { tr {
                        th scope="col" { (t.code) } th scope="col" { (t.name) }
                        th scope="col" { (t.account_type) } th scope="col" { (t.status) }
                    } }
                    tbody {
                        @for a in &accounts {
                            tr {
                                td { a href=(format!("/configuration/accounts/{}", a.id)) { (a.code) } }
                                td { (a.name) }
                                td { (a.account_type) }
                                td { @if a.deactivated_at.is_some() { (t.deactivated) } @else { (t.active) } }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="budgets-h" {
            h2 id="budgets-h" { (t.budgets) }
            p { a class="button" href="/configuration/budgets/new" { (t.new_budget) } }
            ul {
                @for b in &budgets {
                    li {
                        a href=(format!("/configuration/budgets/{}", b.id)) {
                            (codes.get(&b.account_id).copied().unwrap_or("?")) " · "
                            (centers.get(&b.cost_center_id).map_or("?", String::as_str)) " · "
                            (b.period_start.format("%Y-%m-%d")) " – " (b.period_end.format("%Y-%m-%d"))
                        }
                        " · " (b.policy)
                    }
                }
            }
        }
    })
}

async fn department_names(signed: &Signed) -> AppResult<HashMap<Uuid, String>> {
    Ok(
        identity::list_departments(&signed.app.db.conn, &signed.viewer)
            .await?
            .into_iter()
            .map(|d| (d.id, d.name))
            .collect(),
    )
}

#[derive(Deserialize, Default)]
pub struct AccountFields {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    account_type: String,
}

impl AccountFields {
    fn of(found: &account::Model) -> Self {
        Self {
            code: found.code.clone(),
            name: found.name.clone(),
            account_type: found.account_type.clone(),
        }
    }

    fn kind(&self) -> AppResult<AccountType> {
        AccountType::parse(self.account_type.trim()).ok_or_else(|| {
            AppError::bad_field("type", "ASSET, LIABILITY, EQUITY, REVENUE or EXPENSE")
        })
    }
}

fn account_form(
    signed: &Signed,
    found: Option<&account::Model>,
    shown: &AccountFields,
    err: Option<&AppError>,
) -> Markup {
    let t = signed.t();
    let action = found.map_or("/configuration/accounts/new".to_owned(), |a| {
        format!("/configuration/accounts/{}", a.id)
    });
    html! {
        (layout::alert(t, err))
        form method="post" action=(action) class="stack" {
            (token_field(&signed.form_token))
            (field(t.code, "code", "code", err, html! {
                @if found.is_some() {
                    input id="code" name="code" type="text" readonly value=(shown.code);
                } @else {
                    input id="code" name="code" type="text" required maxlength="32" value=(shown.code);
                }
            }))
            (field(t.name, "name", "name", err, html! {
                input id="name" name="name" type="text" required maxlength="200" value=(shown.name);
            }))
            (field(t.account_type, "account-type", "type", err, html! {
                select id="account-type" name="account_type" {
                    @for kind in ACCOUNT_TYPES {
                        option value=(kind) selected[shown.account_type == kind] { (kind) }
                    }
                }
            }))
            button type="submit" class="primary" { (t.save) }
        }
        @if let Some(found) = found {
            form method="post" action=(format!("/configuration/accounts/{}/active", found.id)) class="inline" {
                (token_field(&signed.form_token))
                @if found.deactivated_at.is_some() {
                    input type="hidden" name="active" value="true";
                    button type="submit" { (t.reactivate) }
                } @else {
                    input type="hidden" name="active" value="false";
                    button type="submit" class="danger" { (t.deactivate) }
                }
            }
        }
    }
}

async fn render_account(
    signed: &Signed,
    id: Option<&str>,
    shown: Option<&AccountFields>,
    err: Option<AppError>,
) -> Response {
    if !posts_to_ledger(signed) {
        return layout::not_found(signed.locale);
    }
    let found = match id {
        None => None,
        Some(raw) => match find_account(signed, raw).await {
            Ok(found) => Some(found),
            Err(err) => return layout::error_response(signed.locale, &err),
        },
    };
    let current = found.as_ref().map(AccountFields::of).unwrap_or_default();
    let content = account_form(
        signed,
        found.as_ref(),
        shown.unwrap_or(&current),
        err.as_ref(),
    );
    let t = signed.t();
    let title = match &found {
        Some(a) => format!("{} · {} {}", t.accounts, a.code, a.name),
        None => t.new_account.to_owned(),
    };
    layout::page_refusing(signed, &title, content, err.as_ref()).await
}

async fn find_account(signed: &Signed, raw: &str) -> AppResult<account::Model> {
    let id = Uuid::parse_str(raw).map_err(|_| AppError::not_found("account"))?;
    finance::chart_of_accounts(&signed.app.db.conn, &signed.viewer)
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or_else(|| AppError::not_found("account"))
}

pub async fn new_account_page(signed: Signed) -> Response {
    render_account(&signed, None, None, None).await
}

pub async fn account_page(signed: Signed, Path(id): Path<String>) -> Response {
    render_account(&signed, Some(&id), None, None).await
}

pub async fn create_account(signed: Signed, Form(form): Form<AccountFields>) -> Response {
    if !posts_to_ledger(&signed) {
        return layout::not_found(signed.locale);
    }
    let created = async {
        let name = parse_name("name", &form.name, 200)?;
        let kind = form.kind()?;
        signed
            .app
            .write(async |work| {
                finance::create_account(work, &signed.viewer, &form.code, &name, kind).await
            })
            .await
    };
    match created.await {
        Ok(_) => Redirect::to("/configuration").into_response(),
        Err(err) => render_account(&signed, None, Some(&form), Some(err)).await,
    }
}

pub async fn update_account(
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<AccountFields>,
) -> Response {
    if !posts_to_ledger(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(account) = Uuid::parse_str(&id).map(AccountId) else {
        return layout::not_found(signed.locale);
    };
    let updated = async {
        let changes = AccountChanges {
            name: Some(parse_name("name", &form.name, 200)?),
            kind: Some(form.kind()?),
        };
        signed
            .app
            .write(async |work| {
                finance::update_account(work, &signed.viewer, account, changes).await
            })
            .await
    };
    match updated.await {
        Ok(_) => Redirect::to("/configuration").into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render_account(&signed, Some(&id), Some(&form), Some(err)).await,
    }
}

#[derive(Deserialize)]
pub struct Active {
    active: bool,
}

pub async fn set_account_active(
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<Active>,
) -> Response {
    if !posts_to_ledger(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(account) = Uuid::parse_str(&id).map(AccountId) else {
        return layout::not_found(signed.locale);
    };
    match signed
        .app
        .write(async |work| {
            if form.active {
                finance::set_account_active(work, &signed.viewer, account, true).await
            } else {
                crate::domains::business::service::deactivate_account(work, &signed.viewer, account)
                    .await
            }
        })
        .await
    {
        Ok(_) => Redirect::to(&format!("/configuration/accounts/{id}")).into_response(),
        Err(err @ AppError::Conflict(_)) => {
            render_account(&signed, Some(&id), None, Some(err)).await
        }
        Err(err) => layout::error_response(signed.locale, &err),
    }
}

#[derive(Deserialize, Default)]
pub struct BudgetFields {
    #[serde(default)]
    cost_center: String,
    #[serde(default)]
    account_code: String,
    #[serde(default)]
    period: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    policy: String,
}

impl BudgetFields {
    fn amount_minor(&self, signed: &Signed) -> AppResult<i64> {
        let exponent = currency_exponent(&signed.app.config.currency);
        self.amount
            .trim()
            .parse::<Decimal>()
            .map_err(|e| AppError::bad_field("amount", format!("{e}")))?
            .to_minor(exponent)
            .map_err(|e| AppError::bad_field("amount", format!("{e}")))
    }

    fn policy(&self) -> AppResult<BudgetPolicy> {
        BudgetPolicy::parse(self.policy.trim())
            .ok_or_else(|| AppError::bad_field("policy", "STOP, WARN or IGNORE"))
    }
}

fn budget_form(
    signed: &Signed,
    found: Option<&budget::Model>,
    shown: &BudgetFields,
    choices: &Choices,
    err: Option<&AppError>,
) -> Markup {
    let t = signed.t();
    let action = found.map_or("/configuration/budgets/new".to_owned(), |b| {
        format!("/configuration/budgets/{}", b.id)
    });
    html! {
        (layout::alert(t, err))
        form method="post" action=(action) class="stack" {
            (token_field(&signed.form_token))
            @if found.is_some() {
                dl class="fields" {
                    div class="row" { dt { (t.department) } dd { (choices.center_name(&shown.cost_center)) } }
                    div class="row" { dt { (t.accounts) } dd { (shown.account_code) } }
                    div class="row" { dt { (t.period) } dd { (shown.period) } }
                }
            } @else {
                (field(t.department, "cost-center", "costCenterId", err, html! {
                    select id="cost-center" name="cost_center" required {
                        @for (id, name) in &choices.centers {
                            option value=(id) selected[shown.cost_center == id.to_string()] { (name) }
                        }
                    }
                }))
                (field(t.accounts, "account-code", "accountCode", err, html! {
                    select id="account-code" name="account_code" required {
                        @for code in &choices.codes {
                            option value=(code) selected[&shown.account_code == code] { (code) }
                        }
                    }
                }))
                (field(t.period, "period", "period", err, html! {
                    input id="period" name="period" type="text" required placeholder="2026-11 · 2026-Q4 · 2026"
                        aria-describedby="period-hint" value=(shown.period);
                }))
                p class="hint" id="period-hint" { (t.period_hint) }
            }
            (field(t.amount, "amount", "amount", err, html! {
                input id="amount" name="amount" type="text" inputmode="decimal" required value=(shown.amount);
            }))
            (field(t.policy, "policy", "policy", err, html! {
                select id="policy" name="policy" {
                    @for policy in POLICIES {
                        option value=(policy) selected[shown.policy == policy] { (policy) }
                    }
                }
            }))
            button type="submit" class="primary" { (t.save) }
        }
    }
}

struct Choices {
    centers: Vec<(Uuid, String)>,
    codes: Vec<String>,
}

impl Choices {
    fn center_name(&self, id: &str) -> &str {
        self.centers
            .iter()
            .find(|(c, _)| c.to_string() == id)
            .map_or("?", |(_, name)| name.as_str())
    }
}

async fn render_budget(
    signed: &Signed,
    id: Option<&str>,
    shown: Option<&BudgetFields>,
    err: Option<AppError>,
) -> Response {
    if !posts_to_ledger(signed) {
        return layout::not_found(signed.locale);
    }
    let db = &signed.app.db.conn;
    let loaded = async {
        let found = match id {
            None => None,
            Some(raw) => {
                let id = Uuid::parse_str(raw).map_err(|_| AppError::not_found("budget"))?;
                Some(finance::find_budget(db, &signed.viewer, BudgetId(id)).await?)
            }
        };
        let accounts = finance::chart_of_accounts(db, &signed.viewer).await?;
        let centers = identity::list_departments(db, &signed.viewer)
            .await?
            .into_iter()
            .map(|d| (d.id, d.name))
            .collect();
        AppResult::Ok((found, accounts, centers))
    };
    let (found, accounts, centers) = match loaded.await {
        Ok(loaded) => loaded,
        Err(err) => return layout::error_response(signed.locale, &err),
    };
    let exponent = currency_exponent(&signed.app.config.currency);
    let current = found
        .as_ref()
        .map_or_else(BudgetFields::default, |b| BudgetFields {
            cost_center: b.cost_center_id.to_string(),
            account_code: accounts
                .iter()
                .find(|a| a.id == b.account_id)
                .map(|a| a.code.clone())
                .unwrap_or_default(),
            period: format!(
                "{} – {}",
                b.period_start.format("%Y-%m-%d"),
                b.period_end.format("%Y-%m-%d")
            ),
            amount: Decimal::from_minor(b.amount_minor, exponent).to_string(),
            policy: b.policy.clone(),
        });
    let choices = Choices {
        centers,
        codes: accounts
            .iter()
            .filter(|a| a.deactivated_at.is_none())
            .map(|a| a.code.clone())
            .collect(),
    };
    // An edit shows the budget's fixed fields as stored, with what was typed for the rest.
    let shown = match (shown, &found) {
        (Some(typed), Some(_)) => BudgetFields {
            amount: typed.amount.clone(),
            policy: typed.policy.clone(),
            ..current
        },
        (Some(typed), None) => BudgetFields {
            cost_center: typed.cost_center.clone(),
            account_code: typed.account_code.clone(),
            period: typed.period.clone(),
            amount: typed.amount.clone(),
            policy: typed.policy.clone(),
        },
        (None, _) => current,
    };
    let content = budget_form(signed, found.as_ref(), &shown, &choices, err.as_ref());
    let t = signed.t();
    let title = if found.is_some() {
        t.edit_budget
    } else {
        t.new_budget
    };
    layout::page_refusing(signed, title, content, err.as_ref()).await
}

pub async fn new_budget_page(signed: Signed) -> Response {
    render_budget(&signed, None, None, None).await
}

pub async fn budget_page(signed: Signed, Path(id): Path<String>) -> Response {
    render_budget(&signed, Some(&id), None, None).await
}

pub async fn create_budget(signed: Signed, Form(form): Form<BudgetFields>) -> Response {
    if !posts_to_ledger(&signed) {
        return layout::not_found(signed.locale);
    }
    let created = async {
        let new = NewBudget {
            cost_center: Uuid::parse_str(form.cost_center.trim())
                .map_err(|_| AppError::bad_field("costCenterId", "no such cost centre"))?,
            account_code: form.account_code.trim().to_owned(),
            period: form.period.clone(),
            amount_minor: form.amount_minor(&signed)?,
            policy: form.policy()?,
        };
        signed
            .app
            .write(async |work| finance::create_budget(work, &signed.viewer, new).await)
            .await
    };
    match created.await {
        Ok(_) => Redirect::to("/configuration").into_response(),
        Err(err) => render_budget(&signed, None, Some(&form), Some(err)).await,
    }
}

pub async fn update_budget(
    signed: Signed,
    Path(id): Path<String>,
    Form(form): Form<BudgetFields>,
) -> Response {
    if !posts_to_ledger(&signed) {
        return layout::not_found(signed.locale);
    }
    let Ok(budget) = Uuid::parse_str(&id).map(BudgetId) else {
        return layout::not_found(signed.locale);
    };
    let updated = async {
        let changes = BudgetChanges {
            amount_minor: Some(form.amount_minor(&signed)?),
            policy: Some(form.policy()?),
        };
        signed
            .app
            .write(async |work| finance::update_budget(work, &signed.viewer, budget, changes).await)
            .await
    };
    match updated.await {
        Ok(_) => Redirect::to("/configuration").into_response(),
        Err(err @ AppError::NotFound(_)) => layout::error_response(signed.locale, &err),
        Err(err) => render_budget(&signed, Some(&id), Some(&form), Some(err)).await,
    }
}
