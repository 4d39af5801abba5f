//! The console's two languages: every string in English and Simplified Chinese, chosen by a
//! remembered switch or by `Accept-Language`, and dates and money written the locale's way.

use chrono::{DateTime, NaiveDate, Utc};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locale {
    En,
    ZhCn,
}

/// The language cookie the switch sets.
pub const LANGUAGE_COOKIE: &str = "interlink_lang";

impl Locale {
    pub fn tag(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::ZhCn => "zh-CN",
        }
    }

    pub fn parse_tag(tag: &str) -> Option<Self> {
        match tag {
            "en" => Some(Self::En),
            "zh-CN" => Some(Self::ZhCn),
            _ => None,
        }
    }

    /// The switch's choice when there is one, else the best of `Accept-Language` by its
    /// weights (English when it names neither language).
    pub fn choose(cookie: Option<&str>, accept_language: Option<&str>) -> Self {
        if let Some(chosen) = cookie.and_then(Self::parse_tag) {
            return chosen;
        }
        let mut best: Option<(f32, Self)> = None;
        for item in accept_language.unwrap_or_default().split(',') {
            let mut parts = item.trim().split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let weight = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let locale = if tag == "zh" || tag.starts_with("zh-") {
                Self::ZhCn
            } else if tag == "en" || tag.starts_with("en-") {
                Self::En
            } else {
                continue;
            };
            if weight > 0.0 && best.is_none_or(|(w, _)| weight > w) {
                best = Some((weight, locale));
            }
        }
        best.map_or(Self::En, |(_, locale)| locale)
    }

    pub fn text(self) -> &'static Text {
        match self {
            Self::En => &EN,
            Self::ZhCn => &ZH,
        }
    }

    /// The other language, for the switch.
    pub fn other(self) -> Self {
        match self {
            Self::En => Self::ZhCn,
            Self::ZhCn => Self::En,
        }
    }

    /// A moment, in UTC (the hub keeps no time zone per person yet).
    pub fn date_time(self, at: DateTime<Utc>) -> String {
        match self {
            Self::En => at.format("%-d %b %Y, %H:%M UTC").to_string(),
            Self::ZhCn => at.format("%Y年%-m月%-d日 %H:%M (UTC)").to_string(),
        }
    }

    pub fn date(self, at: DateTime<Utc>) -> String {
        self.day(at.date_naive())
    }

    pub fn day(self, day: NaiveDate) -> String {
        match self {
            Self::En => day.format("%-d %b %Y").to_string(),
            Self::ZhCn => day.format("%Y年%-m月%-d日").to_string(),
        }
    }

    /// An exact decimal amount (`1234.5`, `-20.00`) grouped by thousands, with its currency.
    pub fn money(self, amount: &str, currency: &str) -> String {
        let grouped = group_thousands(amount);
        match self {
            Self::En => format!("{grouped} {currency}"),
            Self::ZhCn if currency == "CNY" => format!("¥{grouped}"),
            Self::ZhCn => format!("{grouped} {currency}"),
        }
    }
}

fn group_thousands(amount: &str) -> String {
    let (sign, digits) = match amount.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", amount),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (digits, None),
    };
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// Declares every string once with both translations, so neither language can miss one.
macro_rules! catalogue {
    ($($key:ident: $en:literal, $zh:literal;)*) => {
        pub struct Text {
            $(pub $key: &'static str,)*
        }
        pub const EN: Text = Text { $($key: $en,)* };
        pub const ZH: Text = Text { $($key: $zh,)* };
    };
}

catalogue! {
    product: "Interlink", "Interlink";
    skip_to_content: "Skip to content", "跳到正文";
    main_navigation: "Main", "主导航";
    language_switch: "中文", "English";
    language_switch_label: "Switch to Chinese", "切换为英文";
    my_work: "My work", "我的工作";
    approvals: "Approvals", "审批";
    notifications: "Notifications", "通知";
    configuration: "Configuration", "配置";
    people: "People", "人员";
    query_page: "Query page", "查询页";
    account: "Account", "账户";
    unread: "unread", "未读";
    sign_in: "Sign in", "登录";
    sign_out: "Sign out", "退出";
    email: "Email", "邮箱";
    password: "Password", "密码";
    change_password: "Change password", "修改密码";
    current_password: "Current password", "当前密码";
    new_password: "New password", "新密码";
    password_changed: "Your password was changed. Sign in with the new one.", "密码已修改，请用新密码登录。";
    signed_out: "You are signed out.", "您已退出。";
    wrong_credentials: "Wrong email or password.", "邮箱或密码错误。";
    form_expired: "This form expired. Reload the page and try again.", "表单已过期，请刷新页面后重试。";
    not_found: "Not found", "未找到";
    not_found_text: "There is nothing here, or you may not see it.", "这里没有内容，或您无权查看。";
    error_bad_input: "Check the form", "请检查表单";
    error_conflict: "This changed meanwhile or no longer allows that", "内容已变化或不再允许此操作";
    error_forbidden: "You may not do that", "您无权执行此操作";
    error_rate_limited: "Too many attempts; try again later", "尝试次数过多，请稍后再试";
    error_internal: "The server failed; try again", "服务器出错，请重试";
    filters: "Filters", "筛选";
    category: "Category", "类别";
    department: "Department", "部门";
    any: "Any", "全部";
    none: "None", "无";
    overdue: "Overdue", "逾期";
    overdue_only: "Overdue only", "仅逾期";
    search: "Search", "搜索";
    apply: "Apply", "应用";
    new_task: "New task", "新建任务";
    edit_task: "Edit task", "编辑任务";
    no_tasks: "No tasks", "没有任务";
    status: "Status", "状态";
    status_open: "Open", "待开始";
    status_in_progress: "In progress", "进行中";
    status_done: "Done", "已完成";
    status_cancelled: "Cancelled", "已取消";
    review_status: "Review status", "审核状态";
    review_draft: "Draft", "草稿";
    review_pending: "Pending approval", "待审批";
    review_approved: "Approved", "已批准";
    review_rejected: "Rejected", "已驳回";
    title: "Title", "标题";
    key_points: "Key points", "要点";
    executors: "Executors", "执行人";
    team_task: "Team task", "团队任务";
    cash_output: "Cash output", "现金产出";
    start: "Start", "开始";
    deadline: "Deadline", "截止";
    progress: "Progress", "进度";
    reported_progress: "Reported progress", "已报进度";
    confirmer: "Progress confirmer", "进度确认人";
    initiator: "Initiator", "发起人";
    priority: "Priority", "优先级";
    files: "Files", "附件";
    merit: "Merit", "功劳";
    rejection_reason: "Rejection reason", "驳回理由";
    review_records: "Review records", "审核记录";
    comments: "Comments", "评论";
    activity: "Activity", "动态";
    subtasks: "Subtasks", "子任务";
    custom_fields: "Custom fields", "自定义字段";
    yes: "Yes", "是";
    no: "No", "否";
    actions: "Actions", "操作";
    submit_for_approval: "Submit for approval", "提交审批";
    approve: "Approve", "批准";
    reject: "Reject", "驳回";
    reason: "Reason", "理由";
    report_progress: "Report progress", "汇报进度";
    note: "Note", "备注";
    confirm_progress: "Confirm progress", "确认进度";
    add_comment: "Add comment", "添加评论";
    comment: "Comment", "评论";
    edit: "Edit", "编辑";
    delete: "Delete", "删除";
    save: "Save", "保存";
    create_subtask: "Create subtask", "创建子任务";
    cancel_task: "Cancel task", "取消任务";
    create: "Create", "创建";
    choose_category: "Choose", "选择";
    executor_ids_hint: "Pick people from the directory", "从人员目录中选择";
    pending_decisions: "Waiting for my decision", "待我审批";
    step: "Step", "步骤";
    started: "Started", "发起于";
    no_pending: "Nothing waits for you.", "没有待您审批的事项。";
    delegations: "My delegations", "我的委托";
    delegate_from: "From", "委托人";
    delegate_to: "To", "受托人";
    delegate_until: "Until", "截止";
    no_delegations: "No delegations.", "没有委托。";
    mark_all_read: "Mark all read", "全部标为已读";
    no_notifications: "No notifications.", "没有通知。";
    task_categories: "Task categories", "任务类别";
    code: "Code", "代码";
    name: "Name", "名称";
    strategy: "Assignment strategy", "分派策略";
    pool: "Pool", "候选池";
    pool_role: "Pool role", "候选角色";
    default_priority: "Default priority", "默认优先级";
    custom_field_schema: "Custom-field schema (JSON Schema)", "自定义字段结构（JSON Schema）";
    approval_flow: "Approval flow", "审批流程";
    approval_flows: "Approval flows", "审批流程";
    approver_rule: "Approver rule", "审批人规则";
    required_approvals: "Required approvals", "所需批准数";
    condition: "Condition", "条件";
    sla_hours: "SLA (hours)", "时限（小时）";
    version: "Version", "版本";
    archived: "Archived", "已归档";
    archive: "Archive", "归档";
    restore: "Restore", "恢复";
    open_tasks: "Open tasks", "进行中的任务";
    done_tasks: "Done tasks", "已完成的任务";
    merit_total: "Merit total", "功劳合计";
    portrait: "Portrait", "画像";
    on_time_rate: "On-time rate", "按时完成率";
    throughput: "Done per week", "每周完成";
    cash_output_total: "Cash output total", "现金产出合计";
    person_not_listed: "Nobody matches.", "没有匹配的人员。";
    next_page: "Next page", "下一页";
    transaction_types: "Transaction types", "交易类型";
    roles: "Roles", "角色";
    finance: "Finance", "财务";
    period: "Period", "期间";
    from: "From", "起";
    to: "To", "止";
    download_csv: "Download CSV", "下载 CSV";
    trial_balance: "Trial balance", "试算平衡表";
    debit: "Debit", "借方";
    credit: "Credit", "贷方";
    balance: "Balance", "余额";
    total: "Total", "合计";
    profit_and_loss: "Profit and loss", "损益";
    profit_and_loss_chart: "Revenue and expense by month", "按月收入与费用";
    revenue: "Revenue", "收入";
    expense: "Expense", "费用";
    net: "Net", "净额";
    month: "Month", "月份";
    by_department: "By department", "按部门";
    no_cost_center: "No cost centre", "无成本中心";
    nothing_posted: "Nothing is posted in this period.", "此期间没有记账。";
    budgets: "Budgets", "预算";
    no_budgets: "No budgets.", "没有预算。";
    new_budget: "New budget", "新建预算";
    edit_budget: "Edit budget", "编辑预算";
    period_hint: "A month (2026-11), a quarter (2026-Q4) or a year (2026)", "月（2026-11）、季度（2026-Q4）或年（2026）";
    amount: "Amount", "金额";
    policy: "When exceeded", "超出时";
    accounts: "Accounts", "会计科目";
    new_account: "New account", "新建科目";
    account_type: "Type", "类型";
    active: "Active", "启用";
    deactivated: "Deactivated", "已停用";
    deactivate: "Deactivate", "停用";
    reactivate: "Reactivate", "重新启用";
    ledger: "Ledger", "明细账";
    opening_balance: "Opening balance", "期初余额";
    date: "Date", "日期";
    memo: "Memo", "摘要";
    export: "Export", "导出";
    report: "Report", "报表";
    rows: "Rows", "行数";
    error: "Error", "错误";
    refresh: "Refresh", "刷新";
    operations: "Operations", "运维";
    queues: "Queues", "队列";
    queue: "Queue", "队列";
    paused: "Paused", "已暂停";
    running: "Running", "运行中";
    pause: "Pause", "暂停";
    resume: "Resume", "恢复";
    jobs: "Jobs", "作业";
    jobs_matching: "jobs match", "个作业匹配";
    kind: "Kind", "类型";
    attempt: "Attempt", "尝试";
    created: "Created", "创建于";
    retry: "Retry", "重试";
    cancel: "Cancel", "取消";
    cancel_requested: "Cancel requested", "已请求取消";
    nodes: "Nodes", "节点";
    node: "Node", "节点";
    capacity: "Capacity", "容量";
    heartbeat: "Last heartbeat", "最近心跳";
    live: "Live", "在线";
    gone: "Gone", "离线";
    integrations: "Integrations", "集成";
    apps: "Apps", "应用";
    new_app: "New app", "新建应用";
    everywhere: "Everywhere", "全部范围";
    scopes: "Scopes", "权限范围";
    api_keys: "API keys", "API 密钥";
    key_name: "Key name", "密钥名称";
    key_hint: "Ends with", "结尾";
    new_key: "New key", "新建密钥";
    expires: "Expires", "到期";
    last_used: "Last used", "最近使用";
    revoked: "Revoked", "已吊销";
    revoke: "Revoke", "吊销";
    key_shown_once: "Copy this key now: it is shown only once.", "请立即复制此密钥：它只显示这一次。";
    secret_shown_once: "Copy this signing secret now: it is shown only once.", "请立即复制此签名密钥：它只显示这一次。";
    webhook_endpoints: "Webhook endpoints", "Webhook 端点";
    new_endpoint: "New endpoint", "新建端点";
    url: "URL", "URL";
    description: "Description", "说明";
    topics: "Topics", "主题";
    deliveries: "Deliveries", "投递";
    deliveries_queued: "deliveries queued again", "个投递已重新排队";
    event: "Event", "事件";
    attempts: "Attempts", "尝试记录";
    redeliver: "Redeliver", "重新投递";
    replay: "Replay", "重放";
    replay_after: "Replay events after cursor", "重放此游标之后的事件";
    attach_file: "Attach a file", "添加附件";
    upload: "Upload", "上传";
    delegate_approvals: "Delegate my approvals", "委托我的审批";
    cancel_delegation: "End delegation", "结束委托";
    times_in_utc: "Times are in UTC.", "时间为 UTC。";
    organisation: "Organisation", "组织";
    departments: "Departments", "部门";
    new_department: "New department", "新建部门";
    parent: "Parent", "上级";
    head: "Head", "负责人";
    new_person: "New person", "新建人员";
    new_role: "New role", "新建角色";
    permissions: "Permissions", "权限";
    grants: "Role grants", "角色授予";
    grant_role: "Grant role", "授予角色";
    allow_self_approval: "The initiator may approve their own", "发起人可审批自己的";
    approver: "Approver (role, field or user id)", "审批人（角色、字段或用户 ID）";
    comparison: "Comparison", "比较";
    threshold: "Threshold", "阈值";
    new_flow: "New approval flow", "新建审批流程";
    flow_versions_hint: "Saving makes a new version; approvals already running keep theirs.", "保存会生成新版本；进行中的审批沿用原版本。";
    route: "Route", "路由";
    payload_schema: "Payload schema (JSON Schema)", "载荷结构（JSON Schema）";
    posting_rule: "Posting rule (JSON)", "记账规则（JSON）";
    forward_url: "Forward URL", "转发地址";
    new_transaction_type: "New transaction type", "新建交易类型";
    approved_task_locked: "This task is approved: only its executors, confirmer and deadline can change.", "此任务已批准：只能修改执行人、确认人和截止时间。";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_heaviest_known_language() {
        assert_eq!(
            Locale::choose(None, Some("zh-CN,zh;q=0.9,en;q=0.8")),
            Locale::ZhCn
        );
        assert_eq!(
            Locale::choose(None, Some("fr, en;q=0.5, zh;q=0.4")),
            Locale::En
        );
        assert_eq!(
            Locale::choose(None, Some("en;q=0.2, zh-TW;q=0.7")),
            Locale::ZhCn
        );
        assert_eq!(Locale::choose(None, Some("de")), Locale::En);
        assert_eq!(Locale::choose(None, None), Locale::En);
        assert_eq!(Locale::choose(Some("en"), Some("zh-CN")), Locale::En);
        assert_eq!(Locale::choose(Some("bogus"), Some("zh-CN")), Locale::ZhCn);
    }

    #[test]
    fn money_is_grouped_by_thousands() {
        assert_eq!(Locale::En.money("1234567.50", "CNY"), "1,234,567.50 CNY");
        assert_eq!(Locale::ZhCn.money("-1000", "CNY"), "¥-1,000");
        assert_eq!(Locale::En.money("12.5", "EUR"), "12.5 EUR");
        assert_eq!(Locale::ZhCn.money("999", "USD"), "999 USD");
    }
}
