//! SeaORM entities: the tables, their columns and relations. No rules live here.

pub mod account;
pub mod approval_assignment;
pub mod approval_decision;
pub mod approval_delegation;
pub mod approval_flow;
pub mod approval_instance;
pub mod approval_step;
pub mod budget;
pub mod business_transaction;
pub mod department;
pub mod journal_entry;
pub mod journal_line;
pub mod merit_record;
pub mod notification;
pub mod outbox;
pub mod refresh_token;
pub mod role;
pub mod role_grant;
pub mod task;
pub mod task_activity;
pub mod task_attachment;
pub mod task_category;
pub mod task_comment;
pub mod task_executor;
pub mod transaction_type;
pub mod user;
