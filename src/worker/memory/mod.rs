//! An in-memory [`Queue`] and [`TaskTokens`] pair for tests of the worker: a queue with
//! visibility timeouts on tokio's clock (so it works under a paused clock) and task tokens
//! that can be closed or made to fail, both writing every call into one shared [`Journal`]
//! so that tests can assert the order of lease, heartbeat, report and delete. The queue is
//! here, the tokens in `tokens.rs`. Stateful fakes, not mocks; nothing to cancel.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::{Instant, sleep};

use super::{CallError, ErrorClass, Message, Queue};

mod tokens;
pub use tokens::MemoryTokens;

/// One call, as seen by the in-memory pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message was received (its id).
    Received(String),
    /// A message's lease was extended.
    Extended(String),
    /// A message was made visible again.
    Released(String),
    /// A message was deleted.
    Deleted(String),
    /// A heartbeat for a token.
    Heartbeat(String),
    /// A success report (token, output).
    Succeeded(String, String),
    /// A failure report (token, error, cause).
    Failed(String, String, String),
}

/// The calls of a pair, in order.
#[derive(Debug, Default)]
pub struct Journal(Mutex<Vec<Event>>);

impl Journal {
    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.0).clone()
    }

    fn push(&self, event: Event) {
        lock(&self.0).push(event);
    }
}

struct Stored {
    id: String,
    body: String,
    receipt: String,
    visible_at: Instant,
    deliveries: u32,
}

/// A queue in memory.
pub struct MemoryQueue {
    visibility: Duration,
    may_extend: bool,
    messages: Mutex<Vec<Stored>>,
    deleted: Mutex<HashMap<String, String>>,
    receive_error: Mutex<Option<CallError>>,
    /// What the next extensions meet, in order.
    extend_faults: Mutex<std::collections::VecDeque<ExtendFault>>,
    next_id: Mutex<u64>,
    journal: Arc<Journal>,
    /// Receives begun.
    polls: std::sync::atomic::AtomicUsize,
    /// Deletes asked, with a valid receipt or not.
    deletes: std::sync::atomic::AtomicUsize,
    /// Extensions asked, answered or not.
    extends: std::sync::atomic::AtomicUsize,
}

/// What an extension meets instead of an answer at once.
#[derive(Debug, Clone, Copy)]
pub enum ExtendFault {
    /// It never answers (a half-open connection).
    Hang,
    /// It answers after this long (and takes effect then).
    Slow(Duration),
    /// It fails at once with an error of this class (a throttle, a denial).
    Fail(ErrorClass),
}

impl MemoryQueue {
    /// An empty queue with this visibility timeout; `may_extend` false is a role without
    /// `sqs:ChangeMessageVisibility`.
    pub fn new(visibility: Duration, may_extend: bool) -> Self {
        MemoryQueue {
            visibility,
            may_extend,
            messages: Mutex::default(),
            deleted: Mutex::default(),
            receive_error: Mutex::default(),
            extend_faults: Mutex::default(),
            next_id: Mutex::new(0),
            journal: Arc::default(),
            polls: Default::default(),
            deletes: Default::default(),
            extends: Default::default(),
        }
    }

    /// The journal shared with [`MemoryTokens::new`].
    pub fn journal(&self) -> Arc<Journal> {
        self.journal.clone()
    }

    /// Sends a message; returns its id.
    pub fn push(&self, body: &str) -> String {
        let id = {
            let mut next = lock(&self.next_id);
            *next += 1;
            format!("m{next}")
        };
        lock(&self.messages).push(Stored {
            id: id.clone(),
            body: body.to_string(),
            receipt: String::new(),
            visible_at: Instant::now(),
            deliveries: 0,
        });
        id
    }

    /// How many receives have begun (a long poll in progress counts).
    pub fn polls(&self) -> usize {
        self.polls.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many deletes were asked, including those with a receipt no longer valid.
    pub fn deletes(&self) -> usize {
        self.deletes.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many extensions were asked, answered or not.
    pub fn extends(&self) -> usize {
        self.extends.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every receive from now on fails with `error` (a queue gone, access denied).
    pub fn fail_receives(&self, error: CallError) {
        *lock(&self.receive_error) = Some(error);
    }

    /// The next `times` extensions meet `fault`.
    pub fn fault_extends(&self, fault: ExtendFault, times: usize) {
        lock(&self.extend_faults).extend(std::iter::repeat_n(fault, times));
    }

    /// Ends message `id`'s lease now, as if it had lapsed: the next receive hands it out again
    /// with a new receipt handle.
    pub fn expire(&self, id: &str) {
        if let Some(m) = lock(&self.messages).iter_mut().find(|m| m.id == id) {
            m.visible_at = Instant::now();
        }
    }

    /// Brings deleted message `id` back (a delete that was lost), visible at once.
    pub fn resurrect(&self, id: &str) {
        let Some(body) = lock(&self.deleted).remove(id) else {
            return;
        };
        lock(&self.messages).push(Stored {
            id: id.to_string(),
            body,
            receipt: String::new(),
            visible_at: Instant::now(),
            deliveries: 1,
        });
    }

    /// Messages not deleted, visible or in flight.
    pub fn len(&self) -> usize {
        lock(&self.messages).len()
    }

    /// True when every message was deleted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How often message `id` was delivered (0 once deleted).
    pub fn deliveries(&self, id: &str) -> u32 {
        lock(&self.messages)
            .iter()
            .find(|m| m.id == id)
            .map_or(0, |m| m.deliveries)
    }

    fn take_visible(&self, max: usize) -> Vec<Message> {
        let now = Instant::now();
        let mut taken = Vec::new();
        for m in lock(&self.messages).iter_mut() {
            if taken.len() == max || m.visible_at > now {
                continue;
            }
            m.deliveries += 1;
            m.receipt = format!("{}#{}", m.id, m.deliveries);
            m.visible_at = now + self.visibility;
            self.journal.push(Event::Received(m.id.clone()));
            taken.push(Message {
                id: m.id.clone(),
                body: m.body.clone(),
                receipt: m.receipt.clone(),
                received: now,
                sent: None,
            });
        }
        taken
    }

    /// Applies `change` to the message whose current receipt is `receipt`.
    fn with_receipt(
        &self,
        operation: &'static str,
        receipt: &str,
        change: impl FnOnce(&mut Vec<Stored>, usize),
    ) -> Result<(), CallError> {
        let mut messages = lock(&self.messages);
        let Some(index) = messages.iter().position(|m| m.receipt == receipt) else {
            return Err(CallError {
                operation,
                class: ErrorClass::Permanent,
                message: format!("ReceiptHandleIsInvalid: {receipt}"),
                source: None,
            });
        };
        change(&mut messages, index);
        Ok(())
    }
}

impl Queue for MemoryQueue {
    fn name(&self) -> &str {
        "memory"
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, CallError> {
        self.polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let Some(error) = lock(&self.receive_error).clone() {
            return Err(error);
        }
        let deadline = Instant::now() + wait;
        loop {
            let taken = self.take_visible(max.clamp(1, 10));
            if !taken.is_empty() || Instant::now() >= deadline {
                return Ok(taken);
            }
            sleep(Duration::from_millis(100).min(deadline - Instant::now())).await;
        }
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> Result<(), CallError> {
        self.extends
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let fault = lock(&self.extend_faults).pop_front();
        match fault {
            Some(ExtendFault::Hang) => std::future::pending::<()>().await,
            Some(ExtendFault::Slow(delay)) => sleep(delay).await,
            Some(ExtendFault::Fail(class)) => {
                return Err(CallError {
                    operation: "ChangeMessageVisibility",
                    class,
                    message: format!("{class:?} (injected)"),
                    source: None,
                });
            }
            None => {}
        }
        self.with_receipt("ChangeMessageVisibility", receipt, |all, i| {
            all[i].visible_at = Instant::now() + visibility;
            self.journal.push(Event::Extended(all[i].id.clone()));
        })
    }

    async fn release(&self, receipt: &str) -> Result<(), CallError> {
        self.with_receipt("ChangeMessageVisibility", receipt, |all, i| {
            all[i].visible_at = Instant::now();
            self.journal.push(Event::Released(all[i].id.clone()));
        })
    }

    async fn delete(&self, receipt: &str) -> Result<(), CallError> {
        self.deletes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.with_receipt("DeleteMessage", receipt, |all, i| {
            let gone = all.remove(i);
            self.journal.push(Event::Deleted(gone.id.clone()));
            lock(&self.deleted).insert(gone.id, gone.body);
        })
    }

    async fn lease(&self) -> Option<Duration> {
        self.may_extend.then_some(self.visibility)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
