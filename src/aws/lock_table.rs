//! The lock table (`ATTINI_LOCK_TABLE`), as the worker's [`LockStore`]: partition key `lock`
//! (S), sort key `ticket` (N). Ticket 0 of each lock is its counter (`next`, added to
//! atomically); every other item is an entry of the lock's line (`owner`, `expires` in epoch
//! ms, and `ttl` in epoch seconds a day later, for the table's TTL to clear what a dead runner
//! left). Conditions keep every change to the entry it was meant for. Each call is one
//! request; the worker's loops retry. Dropping a call cancels it.

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;

use super::error::classify;
use crate::metrics::Figures;
use crate::worker::CallError;
use crate::worker::locks::{Entry, LockFuture, LockStore, Removal};

/// A day, in seconds: how long after its lease an entry's `ttl` lets DynamoDB remove it.
const TTL_AFTER_S: i64 = 86_400;

/// The lock table.
#[derive(Debug, Clone)]
pub struct LockTable {
    /// The DynamoDB client.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Its name.
    pub table: String,
    /// Where failed calls are counted.
    pub figures: Arc<Figures>,
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn number(item: &std::collections::HashMap<String, AttributeValue>, key: &str) -> Option<i64> {
    item.get(key)?.as_n().ok()?.parse().ok()
}

/// Whether a failed call failed its condition (the entry changed or is gone).
fn condition_failed(e: &CallError) -> bool {
    e.message.starts_with("ConditionalCheckFailed")
}

impl LockStore for LockTable {
    fn next_ticket<'a>(&'a self, name: &'a str) -> LockFuture<'a, u64> {
        Box::pin(async move {
            let out = self
                .dynamodb
                .update_item()
                .table_name(&self.table)
                .key("lock", s(name))
                .key("ticket", n(0))
                .update_expression("ADD #next :one")
                .expression_attribute_names("#next", "next")
                .expression_attribute_values(":one", n(1))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
                .send()
                .await
                .map_err(|e| classify(&self.figures, "UpdateItem", e))?;
            let next = out.attributes.as_ref().and_then(|a| number(a, "next"));
            Ok(next.unwrap_or_default().max(1) as u64)
        })
    }

    fn put<'a>(&'a self, name: &'a str, entry: &'a Entry) -> LockFuture<'a, ()> {
        Box::pin(async move {
            self.dynamodb
                .put_item()
                .table_name(&self.table)
                .item("lock", s(name))
                .item("ticket", n(entry.ticket))
                .item("owner", s(&entry.owner))
                .item("expires", n(entry.expires_ms))
                .item("ttl", n(entry.expires_ms / 1000 + TTL_AFTER_S))
                .send()
                .await
                .map_err(|e| classify(&self.figures, "PutItem", e))?;
            Ok(())
        })
    }

    fn line<'a>(&'a self, name: &'a str) -> LockFuture<'a, Vec<Entry>> {
        Box::pin(async move {
            let mut entries = Vec::new();
            let mut start = None;
            loop {
                let page = self
                    .dynamodb
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("#lock = :lock AND #ticket > :zero")
                    .expression_attribute_names("#lock", "lock")
                    .expression_attribute_names("#ticket", "ticket")
                    .expression_attribute_values(":lock", s(name))
                    .expression_attribute_values(":zero", n(0))
                    .consistent_read(true)
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(|e| classify(&self.figures, "Query", e))?;
                for item in page.items.unwrap_or_default() {
                    entries.push(Entry {
                        ticket: number(&item, "ticket").unwrap_or_default() as u64,
                        owner: item
                            .get("owner")
                            .and_then(|v| v.as_s().ok())
                            .cloned()
                            .unwrap_or_default(),
                        expires_ms: number(&item, "expires").unwrap_or_default(),
                    });
                }
                match page.last_evaluated_key {
                    Some(key) if !key.is_empty() => start = Some(key),
                    _ => break,
                }
            }
            entries.sort_by_key(|e| e.ticket);
            Ok(entries)
        })
    }

    fn renew<'a>(
        &'a self,
        name: &'a str,
        ticket: u64,
        owner: &'a str,
        expires_ms: i64,
    ) -> LockFuture<'a, bool> {
        Box::pin(async move {
            let sent = self
                .dynamodb
                .update_item()
                .table_name(&self.table)
                .key("lock", s(name))
                .key("ticket", n(ticket))
                .update_expression("SET #expires = :expires, #ttl = :ttl")
                .condition_expression("#owner = :owner")
                .expression_attribute_names("#expires", "expires")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_names("#owner", "owner")
                .expression_attribute_values(":expires", n(expires_ms))
                .expression_attribute_values(":ttl", n(expires_ms / 1000 + TTL_AFTER_S))
                .expression_attribute_values(":owner", s(owner))
                .send()
                .await
                .map_err(|e| classify(&self.figures, "UpdateItem", e));
            match sent {
                Ok(_) => Ok(true),
                Err(e) if condition_failed(&e) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn remove<'a>(
        &'a self,
        name: &'a str,
        ticket: u64,
        condition: Removal<'a>,
    ) -> LockFuture<'a, bool> {
        Box::pin(async move {
            let delete = self
                .dynamodb
                .delete_item()
                .table_name(&self.table)
                .key("lock", s(name))
                .key("ticket", n(ticket));
            let delete = match condition {
                Removal::Lapsed(expires_ms) => delete
                    .condition_expression("#expires = :expires")
                    .expression_attribute_names("#expires", "expires")
                    .expression_attribute_values(":expires", n(expires_ms)),
                Removal::Owned(owner) => delete
                    .condition_expression("#owner = :owner")
                    .expression_attribute_names("#owner", "owner")
                    .expression_attribute_values(":owner", s(owner)),
            };
            match delete
                .send()
                .await
                .map_err(|e| classify(&self.figures, "DeleteItem", e))
            {
                Ok(_) => Ok(true),
                Err(e) if condition_failed(&e) => Ok(false),
                Err(e) => Err(e),
            }
        })
    }
}
