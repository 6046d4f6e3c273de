//! The queues themselves: every queue's messages in memory (the store on disk is written
//! before any change is acknowledged, and read back at start), and the operations SQS has,
//! as typed calls that both wire protocols and the `sqs` event source use.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::SqsError;
use crate::store::{dedup_key, message_key, Store, StoreError, Write};

/// FIFO deduplication window.
const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;
const MAX_MESSAGE_BYTES: usize = 262_144;
const ACCOUNT: &str = "000000000000";

/// A message attribute, as both protocols carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAttribute {
    #[serde(rename = "DataType")]
    pub data_type: String,
    #[serde(rename = "StringValue", default, skip_serializing_if = "Option::is_none")]
    pub string_value: Option<String>,
    /// Base64.
    #[serde(rename = "BinaryValue", default, skip_serializing_if = "Option::is_none")]
    pub binary_value: Option<String>,
}

/// One message to send.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    pub body: String,
    pub delay_seconds: Option<u32>,
    pub attributes: BTreeMap<String, MessageAttribute>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

/// What a send returns for one message.
#[derive(Debug, Clone)]
pub struct Sent {
    pub message_id: String,
    pub md5_body: String,
    pub md5_attributes: Option<String>,
    pub sequence_number: Option<String>,
}

/// A stored message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub seq: u64,
    pub body: String,
    pub md5_body: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, MessageAttribute>,
    pub md5_attributes: Option<String>,
    pub sent_ms: i64,
    /// Not receivable before this (a delay, or the visibility timeout of a receive).
    pub visible_ms: i64,
    pub receive_count: u32,
    pub first_receive_ms: Option<i64>,
    /// The nonce of the latest receive's handle.
    pub receipt: Option<String>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
}

/// A received message, with the handle that deletes it.
#[derive(Debug, Clone)]
pub struct Received {
    pub message: Message,
    pub receipt_handle: String,
}

/// How to receive.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    pub max: usize,
    pub visibility_timeout: Option<u32>,
    pub wait: Duration,
}

/// A queue's settings, read from its attributes.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    visibility_timeout: u32,
    retention: u32,
    delay: u32,
    max_size: usize,
    wait: u32,
    /// Dead-letter queue name and maxReceiveCount.
    redrive: Option<(String, u32)>,
    fifo: bool,
    content_dedup: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueueMeta {
    name: String,
    created_s: u64,
    modified_s: u64,
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

struct QueueState {
    meta: QueueMeta,
    settings: Settings,
    messages: BTreeMap<u64, Message>,
    next_seq: u64,
    /// FIFO deduplication ids → (when they expire, the message id they gave).
    dedup: HashMap<String, (i64, String)>,
    deleted: bool,
}

struct Cell {
    state: Mutex<QueueState>,
    /// Woken when a message may have become receivable.
    notify: tokio::sync::Notify,
}

/// The queue service (cheap to clone).
#[derive(Clone)]
pub struct Queues {
    inner: Arc<Inner>,
}

struct Inner {
    region: String,
    store: Store,
    queues: RwLock<BTreeMap<String, Arc<Cell>>>,
}

/// The attributes CreateQueue and SetQueueAttributes accept.
const SETTABLE: &[&str] = &[
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

impl Queues {
    /// Open (or create) the store in `dir` and load every queue.
    pub fn open(dir: &Path, region: &str) -> Result<Queues, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError(e.to_string()))?;
        let (store, loaded) = Store::open(&dir.join("queues.redb"))?;
        let mut queues = BTreeMap::new();
        for bytes in loaded.queues {
            let meta: QueueMeta = serde_json::from_slice(&bytes).map_err(|e| StoreError(e.to_string()))?;
            let settings = settings(&meta.attributes).map_err(|e| StoreError(e.message))?;
            queues.insert(
                meta.name.clone(),
                QueueState {
                    meta,
                    settings,
                    messages: BTreeMap::new(),
                    next_seq: 1,
                    dedup: HashMap::new(),
                    deleted: false,
                },
            );
        }
        for (queue, bytes) in loaded.messages {
            let Some(q) = queues.get_mut(&queue) else { continue };
            let m: Message = serde_json::from_slice(&bytes).map_err(|e| StoreError(e.to_string()))?;
            q.next_seq = q.next_seq.max(m.seq + 1);
            q.messages.insert(m.seq, m);
        }
        for (queue, id, until) in loaded.dedup {
            if let Some(q) = queues.get_mut(&queue) {
                q.dedup.insert(id, (until as i64, String::new()));
            }
        }
        let queues = queues
            .into_iter()
            .map(|(name, state)| {
                (
                    name,
                    Arc::new(Cell {
                        state: Mutex::new(state),
                        notify: tokio::sync::Notify::new(),
                    }),
                )
            })
            .collect();
        Ok(Queues {
            inner: Arc::new(Inner {
                region: region.to_owned(),
                store,
                queues: RwLock::new(queues),
            }),
        })
    }

    pub fn region(&self) -> &str {
        &self.inner.region
    }

    pub fn arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{ACCOUNT}:{name}", self.inner.region)
    }

    fn cell(&self, name: &str) -> Result<Arc<Cell>, SqsError> {
        read(&self.inner.queues)
            .get(name)
            .cloned()
            .ok_or_else(SqsError::no_queue)
    }

    pub fn exists(&self, name: &str) -> bool {
        read(&self.inner.queues).contains_key(name)
    }

    async fn durable(&self, writes: tokio::sync::oneshot::Receiver<Result<(), StoreError>>) -> Result<(), SqsError> {
        match writes.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SqsError::internal(format!("the change was not saved: {e}"))),
            Err(_) => Err(SqsError::internal("the change was not saved: the store stopped")),
        }
    }

    /// CreateQueue: the queue's name (an existing queue with the same attributes is fine).
    pub async fn create_queue(
        &self,
        name: &str,
        attributes: BTreeMap<String, String>,
        tags: BTreeMap<String, String>,
    ) -> Result<(), SqsError> {
        check_queue_name(name, attributes.get("FifoQueue").map(String::as_str) == Some("true"))?;
        for key in attributes.keys() {
            if !SETTABLE.contains(&key.as_str()) {
                return Err(SqsError::invalid_attribute(key));
            }
        }
        let settings = settings(&attributes)?;
        if let Some((dlq, _)) = &settings.redrive {
            self.check_dead_letter(dlq, settings.fifo)?;
        }
        let now = now_s();
        let receiver = {
            let mut queues = write(&self.inner.queues);
            if let Some(existing) = queues.get(name) {
                let state = lock(&existing.state);
                // Only the attributes given are compared, as SQS does.
                let same = attributes.iter().all(|(k, v)| state.meta.attributes.get(k) == Some(v));
                return if same {
                    Ok(())
                } else {
                    Err(SqsError::queue_exists(name))
                };
            }
            let meta = QueueMeta {
                name: name.to_owned(),
                created_s: now,
                modified_s: now,
                attributes,
                tags,
            };
            let bytes = serde_json::to_vec(&meta).map_err(|e| SqsError::internal(e.to_string()))?;
            queues.insert(
                name.to_owned(),
                Arc::new(Cell {
                    state: Mutex::new(QueueState {
                        meta,
                        settings,
                        messages: BTreeMap::new(),
                        next_seq: 1,
                        dedup: HashMap::new(),
                        deleted: false,
                    }),
                    notify: tokio::sync::Notify::new(),
                }),
            );
            self.inner.store.submit(vec![Write::Queue(name.to_owned(), bytes)])
        };
        self.durable(receiver).await
    }

    fn check_dead_letter(&self, dlq: &str, fifo: bool) -> Result<(), SqsError> {
        let cell = self.cell(dlq).map_err(|_| {
            SqsError::invalid(format!(
                "Value for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist: {}",
                self.arn(dlq)
            ))
        })?;
        if lock(&cell.state).settings.fifo != fifo {
            return Err(SqsError::invalid(
                "Value for parameter RedrivePolicy is invalid. Reason: a FIFO queue's dead-letter queue must be FIFO, and a standard queue's standard",
            ));
        }
        Ok(())
    }

    /// The queues whose name starts with `prefix`, in name order.
    pub fn list(&self, prefix: &str) -> Vec<String> {
        read(&self.inner.queues)
            .keys()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect()
    }

    pub async fn delete_queue(&self, name: &str) -> Result<(), SqsError> {
        let receiver = {
            let mut queues = write(&self.inner.queues);
            let cell = queues.remove(name).ok_or_else(SqsError::no_queue)?;
            let mut state = lock(&cell.state);
            state.deleted = true;
            state.messages.clear();
            cell.notify.notify_waiters();
            self.inner.store.submit(vec![Write::DropQueue(name.to_owned())])
        };
        self.durable(receiver).await
    }

    pub async fn purge(&self, name: &str) -> Result<(), SqsError> {
        let cell = self.cell(name)?;
        let receiver = {
            let mut state = lock(&cell.state);
            state.messages.clear();
            self.inner.store.submit(vec![Write::Purge(name.to_owned())])
        };
        self.durable(receiver).await
    }

    /// GetQueueAttributes: `names` may hold `All`.
    pub fn attributes(&self, name: &str, names: &[String]) -> Result<BTreeMap<String, String>, SqsError> {
        let cell = self.cell(name)?;
        let state = lock(&cell.state);
        let now = now_ms();
        let mut all = state.meta.attributes.clone();
        let s = &state.settings;
        for (k, v) in [
            ("VisibilityTimeout", s.visibility_timeout.to_string()),
            ("MessageRetentionPeriod", s.retention.to_string()),
            ("DelaySeconds", s.delay.to_string()),
            ("MaximumMessageSize", s.max_size.to_string()),
            ("ReceiveMessageWaitTimeSeconds", s.wait.to_string()),
            ("CreatedTimestamp", state.meta.created_s.to_string()),
            ("LastModifiedTimestamp", state.meta.modified_s.to_string()),
            ("QueueArn", self.arn(name)),
            ("SqsManagedSseEnabled", "false".to_owned()),
        ] {
            all.entry(k.to_owned()).or_insert(v);
        }
        let (mut visible, mut in_flight, mut delayed) = (0, 0, 0);
        for m in state.messages.values() {
            if m.visible_ms <= now {
                visible += 1;
            } else if m.receipt.is_some() {
                in_flight += 1;
            } else {
                delayed += 1;
            }
        }
        all.insert("ApproximateNumberOfMessages".into(), visible.to_string());
        all.insert("ApproximateNumberOfMessagesNotVisible".into(), in_flight.to_string());
        all.insert("ApproximateNumberOfMessagesDelayed".into(), delayed.to_string());
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        if names.iter().any(|n| n == "All") {
            return Ok(all);
        }
        let mut out = BTreeMap::new();
        for n in names {
            match all.get(n) {
                Some(v) => {
                    out.insert(n.clone(), v.clone());
                }
                None if KNOWN_ATTRIBUTES.contains(&n.as_str()) => {}
                None => return Err(SqsError::invalid_attribute(n)),
            }
        }
        Ok(out)
    }

    pub async fn set_attributes(&self, name: &str, attributes: BTreeMap<String, String>) -> Result<(), SqsError> {
        let cell = self.cell(name)?;
        for key in attributes.keys() {
            if !SETTABLE.contains(&key.as_str()) || matches!(key.as_str(), "FifoQueue") {
                return Err(SqsError::invalid_attribute(key));
            }
        }
        let mut merged = lock(&cell.state).meta.attributes.clone();
        for (k, v) in attributes {
            if v.is_empty() && k == "RedrivePolicy" {
                merged.remove(&k);
            } else {
                merged.insert(k, v);
            }
        }
        let new_settings = settings(&merged)?;
        if let Some((dlq, _)) = &new_settings.redrive {
            if dlq == name {
                return Err(SqsError::invalid("Value for parameter RedrivePolicy is invalid. Reason: a queue cannot be its own dead-letter queue."));
            }
            self.check_dead_letter(dlq, new_settings.fifo)?;
        }
        let receiver = {
            let mut state = lock(&cell.state);
            state.meta.attributes = merged;
            state.meta.modified_s = now_s();
            state.settings = new_settings;
            let bytes = serde_json::to_vec(&state.meta).map_err(|e| SqsError::internal(e.to_string()))?;
            cell.notify.notify_waiters();
            self.inner.store.submit(vec![Write::Queue(name.to_owned(), bytes)])
        };
        self.durable(receiver).await
    }

    /// SendMessage / SendMessageBatch: each message's own outcome, in order. Every message
    /// accepted is on disk before this returns.
    pub async fn send(&self, name: &str, batch: Vec<Outgoing>) -> Result<Vec<Result<Sent, SqsError>>, SqsError> {
        let cell = self.cell(name)?;
        let now = now_ms();
        let mut out = Vec::with_capacity(batch.len());
        let receiver = {
            let mut state = lock(&cell.state);
            if state.deleted {
                return Err(SqsError::no_queue());
            }
            let mut writes = Vec::with_capacity(batch.len());
            for m in batch {
                out.push(accept(&mut state, name, m, now, &mut writes));
            }
            let receiver = self.inner.store.submit(writes);
            cell.notify.notify_waiters();
            receiver
        };
        self.durable(receiver).await?;
        Ok(out)
    }

    /// ReceiveMessage: up to `max` messages, waiting up to `wait` for the first.
    pub async fn receive(&self, name: &str, options: &ReceiveOptions) -> Result<Vec<Received>, SqsError> {
        let cell = self.cell(name)?;
        let deadline = tokio::time::Instant::now() + options.wait;
        loop {
            let notified = cell.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (received, receiver, moved, next_visible) = self.take(&cell, name, options)?;
            if !moved.is_empty() {
                // In a task of their own: these messages are out of this queue's memory now,
                // and a receive dropped mid-way (a client gone) must not leave them nowhere.
                let (queues, from) = (self.clone(), name.to_owned());
                tokio::spawn(async move {
                    for (dlq, message) in moved {
                        queues.dead_letter(&from, &dlq, message).await;
                    }
                });
            }
            if !received.is_empty() {
                self.durable(receiver).await?;
                return Ok(received);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(received);
            }
            let mut wake = deadline;
            if let Some(ms) = next_visible {
                wake = wake.min(now + Duration::from_millis((ms - now_ms()).max(1) as u64));
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Pick receivable messages and mark them received; also give back those that have been
    /// received `maxReceiveCount` times (for the dead-letter queue) and when the next message
    /// becomes receivable.
    #[allow(clippy::type_complexity)]
    fn take(
        &self,
        cell: &Cell,
        name: &str,
        options: &ReceiveOptions,
    ) -> Result<
        (
            Vec<Received>,
            tokio::sync::oneshot::Receiver<Result<(), StoreError>>,
            Vec<(String, Message)>,
            Option<i64>,
        ),
        SqsError,
    > {
        let now = now_ms();
        let mut state = lock(&cell.state);
        if state.deleted {
            return Err(SqsError::no_queue());
        }
        let settings = state.settings.clone();
        let visibility = i64::from(options.visibility_timeout.unwrap_or(settings.visibility_timeout)) * 1000;
        let retention_ms = i64::from(settings.retention) * 1000;
        let mut writes = Vec::new();
        let mut expired = Vec::new();
        let mut chosen = Vec::new();
        let mut moved = Vec::new();
        let mut blocked: HashSet<String> = HashSet::new();
        let mut next_visible: Option<i64> = None;
        for (seq, m) in state.messages.iter() {
            if m.sent_ms + retention_ms <= now {
                expired.push(*seq);
                continue;
            }
            if chosen.len() >= options.max {
                break;
            }
            let group = m.group_id.clone().unwrap_or_default();
            if settings.fifo && blocked.contains(&group) {
                continue;
            }
            if m.visible_ms > now {
                next_visible = Some(next_visible.map_or(m.visible_ms, |t| t.min(m.visible_ms)));
                if settings.fifo {
                    // Order within a group: nothing after a message that is in flight or delayed.
                    blocked.insert(group);
                }
                continue;
            }
            if let Some((dlq, max)) = &settings.redrive {
                if m.receive_count >= *max {
                    moved.push((*seq, dlq.clone()));
                    continue;
                }
            }
            chosen.push(*seq);
        }
        for seq in expired {
            state.messages.remove(&seq);
            writes.push(Write::DropMessage(message_key(name, seq)));
        }
        let moved: Vec<(String, Message)> = moved
            .into_iter()
            .filter_map(|(seq, dlq)| state.messages.remove(&seq).map(|m| (dlq, m)))
            .collect();
        let mut received = Vec::with_capacity(chosen.len());
        for seq in chosen {
            let Some(m) = state.messages.get_mut(&seq) else {
                continue;
            };
            m.receive_count += 1;
            m.first_receive_ms.get_or_insert(now);
            m.visible_ms = now + visibility;
            let nonce = sylph_telemetry::random_chars(12, b"abcdefghijklmnopqrstuvwxyzABCDEF");
            m.receipt = Some(nonce.clone());
            let handle = receipt_handle(name, seq, &nonce);
            if let Ok(bytes) = serde_json::to_vec(&*m) {
                writes.push(Write::Message(message_key(name, seq), bytes));
            }
            received.push(Received {
                message: m.clone(),
                receipt_handle: handle,
            });
        }
        let receiver = self.inner.store.submit(writes);
        Ok((received, receiver, moved, next_visible))
    }

    /// Move a message that has been received too often to its dead-letter queue.
    async fn dead_letter(&self, from: &str, dlq: &str, mut message: Message) {
        let from_key = message_key(from, message.seq);
        let Ok(cell) = self.cell(dlq) else {
            tracing::error!(
                "dead-letter queue {dlq} of {from} is gone; message {} dropped",
                message.id
            );
            let _ = self
                .durable(self.inner.store.submit(vec![Write::DropMessage(from_key)]))
                .await;
            return;
        };
        let receiver = {
            let mut state = lock(&cell.state);
            let seq = state.next_seq;
            state.next_seq += 1;
            message.seq = seq;
            message.visible_ms = now_ms();
            message.receipt = None;
            let mut writes = vec![Write::DropMessage(from_key)];
            if let Ok(bytes) = serde_json::to_vec(&message) {
                writes.push(Write::Message(message_key(dlq, seq), bytes));
            }
            state.messages.insert(seq, message);
            cell.notify.notify_waiters();
            self.inner.store.submit(writes)
        };
        if let Err(e) = self.durable(receiver).await {
            tracing::error!("moving a message to {dlq}: {}", e.message);
        }
    }

    /// DeleteMessage / DeleteMessageBatch. A handle from an earlier receive of a message that
    /// has been received again deletes nothing, without an error (as SQS).
    pub async fn delete(&self, name: &str, handles: &[String]) -> Result<Vec<Result<(), SqsError>>, SqsError> {
        let cell = self.cell(name)?;
        let mut out = Vec::with_capacity(handles.len());
        let receiver = {
            let mut state = lock(&cell.state);
            let mut writes = Vec::new();
            let mut freed_group = false;
            for handle in handles {
                match parse_receipt(handle, name) {
                    None => out.push(Err(SqsError::receipt_invalid(handle))),
                    Some((seq, nonce)) => {
                        let current = state
                            .messages
                            .get(&seq)
                            .is_some_and(|m| m.receipt.as_deref() == Some(nonce.as_str()));
                        if current {
                            let m = state.messages.remove(&seq);
                            freed_group |= m.is_some_and(|m| m.group_id.is_some());
                            writes.push(Write::DropMessage(message_key(name, seq)));
                        }
                        out.push(Ok(()));
                    }
                }
            }
            if freed_group {
                cell.notify.notify_waiters();
            }
            self.inner.store.submit(writes)
        };
        self.durable(receiver).await?;
        Ok(out)
    }

    /// ChangeMessageVisibility / ChangeMessageVisibilityBatch: (handle, seconds from now).
    pub async fn change_visibility(
        &self,
        name: &str,
        changes: &[(String, u32)],
    ) -> Result<Vec<Result<(), SqsError>>, SqsError> {
        let cell = self.cell(name)?;
        let now = now_ms();
        let mut out = Vec::with_capacity(changes.len());
        let receiver = {
            let mut state = lock(&cell.state);
            let mut writes = Vec::new();
            for (handle, seconds) in changes {
                if *seconds > 43_200 {
                    out.push(Err(SqsError::invalid(format!(
                        "Value {seconds} for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200."
                    ))));
                    continue;
                }
                let Some((seq, nonce)) = parse_receipt(handle, name) else {
                    out.push(Err(SqsError::receipt_invalid(handle)));
                    continue;
                };
                match state.messages.get_mut(&seq) {
                    Some(m) if m.receipt.as_deref() == Some(nonce.as_str()) && m.visible_ms > now => {
                        m.visible_ms = now + i64::from(*seconds) * 1000;
                        if let Ok(bytes) = serde_json::to_vec(&*m) {
                            writes.push(Write::Message(message_key(name, seq), bytes));
                        }
                        out.push(Ok(()));
                    }
                    Some(m) if m.receipt.as_deref() == Some(nonce.as_str()) => out.push(Err(SqsError::not_in_flight())),
                    _ => out.push(Err(SqsError::invalid(format!(
                        "Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
                    )))),
                }
            }
            cell.notify.notify_waiters();
            self.inner.store.submit(writes)
        };
        self.durable(receiver).await?;
        Ok(out)
    }

    /// Messages in the queue (visible, in flight and delayed), for metrics and tests.
    pub fn depth(&self, name: &str) -> Option<usize> {
        let cell = self.cell(name).ok()?;
        let n = lock(&cell.state).messages.len();
        Some(n)
    }

    /// The age of the oldest message, in ms.
    pub fn oldest_age_ms(&self, name: &str) -> Option<i64> {
        let cell = self.cell(name).ok()?;
        let state = lock(&cell.state);
        state
            .messages
            .values()
            .map(|m| m.sent_ms)
            .min()
            .map(|t| (now_ms() - t).max(0))
    }

    /// ListQueueTags.
    pub fn tags(&self, name: &str) -> Result<BTreeMap<String, String>, SqsError> {
        let cell = self.cell(name)?;
        let tags = lock(&cell.state).meta.tags.clone();
        Ok(tags)
    }

    /// TagQueue (`add`) and UntagQueue (`remove`); at most 50 tags, as SQS allows.
    pub async fn retag(&self, name: &str, add: BTreeMap<String, String>, remove: &[String]) -> Result<(), SqsError> {
        let cell = self.cell(name)?;
        let receiver = {
            let mut state = lock(&cell.state);
            let mut tags = state.meta.tags.clone();
            tags.extend(add);
            tags.retain(|k, _| !remove.contains(k));
            if tags.len() > 50 {
                return Err(SqsError::invalid(
                    "Too many tags added for queue: a queue has at most 50 tags.",
                ));
            }
            state.meta.tags = tags;
            let bytes = serde_json::to_vec(&state.meta).map_err(|e| SqsError::internal(e.to_string()))?;
            self.inner.store.submit(vec![Write::Queue(name.to_owned(), bytes)])
        };
        self.durable(receiver).await
    }

    /// Whether a queue is FIFO.
    pub fn is_fifo(&self, name: &str) -> Option<bool> {
        let cell = self.cell(name).ok()?;
        let fifo = lock(&cell.state).settings.fifo;
        Some(fifo)
    }
}

/// Attribute names GetQueueAttributes knows even when a queue has no value for them.
const KNOWN_ATTRIBUTES: &[&str] = &[
    "Policy",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

/// Check and keep one message (under the queue's lock).
fn accept(
    state: &mut QueueState,
    queue: &str,
    m: Outgoing,
    now: i64,
    writes: &mut Vec<Write>,
) -> Result<Sent, SqsError> {
    check_body(&m.body)?;
    let size = m.body.len()
        + m.attributes
            .iter()
            .map(|(k, v)| {
                k.len()
                    + v.data_type.len()
                    + v.string_value.as_ref().map_or(0, String::len)
                    + v.binary_value.as_ref().map_or(0, |b| b.len() * 3 / 4)
            })
            .sum::<usize>();
    if size > state.settings.max_size {
        return Err(SqsError::invalid(format!(
            "One or more parameters are invalid. Reason: Message must be shorter than {} bytes.",
            state.settings.max_size
        )));
    }
    check_attributes(&m.attributes)?;
    let fifo = state.settings.fifo;
    let delay = match (m.delay_seconds, fifo) {
        (Some(d), _) if d > 900 => {
            return Err(SqsError::invalid(format!(
                "Value {d} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
            )))
        }
        (Some(d), true) if d != 0 => {
            return Err(SqsError::invalid(
                "Value for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.",
            ))
        }
        (Some(d), false) => d,
        _ => state.settings.delay,
    };
    let md5_body = hex_md5(m.body.as_bytes());
    let md5_attributes = (!m.attributes.is_empty()).then(|| attributes_md5(&m.attributes));
    let (group_id, dedup_id) = if fifo {
        let group = m.group_id.ok_or_else(|| SqsError::missing("MessageGroupId"))?;
        let dedup = match m.dedup_id {
            Some(d) => d,
            None if state.settings.content_dedup => {
                use sha2::Digest as _;
                sha2::Sha256::digest(m.body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
            }
            None => {
                return Err(SqsError::invalid(
                    "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                ))
            }
        };
        (Some(group), Some(dedup))
    } else {
        // A standard queue keeps MessageGroupId (SQS accepts it there) and ignores deduplication.
        (m.group_id, None)
    };
    if let Some(d) = &dedup_id {
        state.dedup.retain(|id, (until, _)| {
            let live = *until > now;
            if !live {
                writes.push(Write::DropDedup(dedup_key(queue, id)));
            }
            live
        });
        if let Some((_, id)) = state.dedup.get(d) {
            // A duplicate within five minutes: accepted, not enqueued.
            return Ok(Sent {
                message_id: if id.is_empty() {
                    sylph_telemetry::new_request_id()
                } else {
                    id.clone()
                },
                md5_body,
                md5_attributes,
                sequence_number: Some(format!("{:020}", state.next_seq)),
            });
        }
    }
    let seq = state.next_seq;
    state.next_seq += 1;
    let message = Message {
        id: sylph_telemetry::new_request_id(),
        seq,
        body: m.body,
        md5_body: md5_body.clone(),
        attributes: m.attributes,
        md5_attributes: md5_attributes.clone(),
        sent_ms: now,
        visible_ms: now + i64::from(delay) * 1000,
        receive_count: 0,
        first_receive_ms: None,
        receipt: None,
        group_id,
        dedup_id: dedup_id.clone(),
    };
    if let Some(d) = dedup_id {
        let until = now + DEDUP_WINDOW_MS;
        state.dedup.insert(d.clone(), (until, message.id.clone()));
        writes.push(Write::Dedup(dedup_key(queue, &d), until as u64));
    }
    let bytes = serde_json::to_vec(&message).map_err(|e| SqsError::internal(e.to_string()))?;
    writes.push(Write::Message(message_key(queue, seq), bytes));
    let sent = Sent {
        message_id: message.id.clone(),
        md5_body,
        md5_attributes,
        sequence_number: fifo.then(|| format!("{seq:020}")),
    };
    state.messages.insert(seq, message);
    Ok(sent)
}

fn check_body(body: &str) -> Result<(), SqsError> {
    if body.is_empty() {
        return Err(SqsError::missing("MessageBody"));
    }
    // The characters SQS allows: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}');
    if let Some(bad) = body.chars().find(|c| !allowed(*c)) {
        return Err(SqsError::invalid(format!(
            "Invalid binary character '#x{:X}' was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
            bad as u32
        )));
    }
    Ok(())
}

fn check_attributes(attributes: &BTreeMap<String, MessageAttribute>) -> Result<(), SqsError> {
    if attributes.len() > 10 {
        return Err(SqsError::invalid(format!(
            "Number of message attributes [{}] exceeds the allowed maximum [10].",
            attributes.len()
        )));
    }
    for (name, a) in attributes {
        let name_ok = !name.is_empty()
            && name.len() <= 256
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !name.contains("..")
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.to_ascii_lowercase().starts_with("aws.")
            && !name.to_ascii_lowercase().starts_with("amazon.");
        if !name_ok {
            return Err(SqsError::invalid(format!(
                "Message attribute name '{name}' is invalid."
            )));
        }
        let base = a.data_type.split('.').next().unwrap_or_default();
        match (base, &a.string_value, &a.binary_value) {
            ("String", Some(_), None) => {}
            ("Number", Some(v), None) => {
                if v.trim().parse::<f64>().is_err() {
                    return Err(SqsError::invalid(format!(
                        "Value for message attribute {name} with type Number is not a valid number: {v}"
                    )));
                }
            }
            ("Binary", None, Some(b)) => {
                use base64::Engine as _;
                if base64::engine::general_purpose::STANDARD.decode(b).is_err() {
                    return Err(SqsError::invalid(format!("Message attribute {name}'s BinaryValue is not base64.")));
                }
            }
            ("String" | "Number" | "Binary", _, _) => {
                return Err(SqsError::invalid(format!(
                    "Message attribute '{name}' must contain a non-empty value of message attribute type '{}'.",
                    a.data_type
                )))
            }
            _ => {
                return Err(SqsError::invalid(format!(
                    "The type of message attribute '{name}' is invalid. You must use only the following supported type prefixes: Binary, Number, String."
                )))
            }
        }
    }
    Ok(())
}

/// MD5 of the message attributes the way SQS computes it (clients check it): for each
/// attribute by name, the name, the type, a transport byte (1 string, 2 binary) and the value,
/// each length-prefixed (4 bytes, big-endian).
pub fn attributes_md5(attributes: &BTreeMap<String, MessageAttribute>) -> String {
    use base64::Engine as _;
    let mut buf = Vec::new();
    let put = |bytes: &[u8], buf: &mut Vec<u8>| {
        buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        buf.extend_from_slice(bytes);
    };
    for (name, a) in attributes {
        put(name.as_bytes(), &mut buf);
        put(a.data_type.as_bytes(), &mut buf);
        if let Some(s) = &a.string_value {
            buf.push(1);
            put(s.as_bytes(), &mut buf);
        } else if let Some(b) = &a.binary_value {
            buf.push(2);
            let bytes = base64::engine::general_purpose::STANDARD.decode(b).unwrap_or_default();
            put(&bytes, &mut buf);
        }
    }
    hex_md5(&buf)
}

fn hex_md5(bytes: &[u8]) -> String {
    format!("{:x}", md5::compute(bytes))
}

fn receipt_handle(queue: &str, seq: u64, nonce: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{queue}\n{seq}\n{nonce}"))
}

fn parse_receipt(handle: &str, queue: &str) -> Option<(u64, String)> {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(handle.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let mut parts = text.splitn(3, '\n');
    let (q, seq, nonce) = (parts.next()?, parts.next()?, parts.next()?);
    (q == queue).then_some(())?;
    Some((seq.parse().ok()?, nonce.to_owned()))
}

fn check_queue_name(name: &str, fifo: bool) -> Result<(), SqsError> {
    let stem = name.strip_suffix(".fifo");
    let base = stem.unwrap_or(name);
    let ok =
        !base.is_empty() && name.len() <= 80 && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(SqsError::invalid(
            "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
        ));
    }
    match (fifo, stem.is_some()) {
        (true, false) => Err(SqsError::invalid("The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.")),
        (false, true) => Err(SqsError::invalid("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length (a name ending in .fifo needs the attribute FifoQueue=true)")),
        _ => Ok(()),
    }
}

/// A queue's settings from its attributes, each checked against SQS's ranges.
fn settings(attributes: &BTreeMap<String, String>) -> Result<Settings, SqsError> {
    let number = |name: &str, default: u32, max: u32, min: u32| -> Result<u32, SqsError> {
        match attributes.get(name) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(SqsError::invalid(format!(
                    "Invalid value for the parameter {name}: `{v}` (from {min} to {max})."
                ))),
            },
        }
    };
    let flag = |name: &str| -> Result<bool, SqsError> {
        match attributes.get(name).map(String::as_str) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(v) => Err(SqsError::invalid(format!(
                "Invalid value for the parameter {name}: `{v}` (true or false)."
            ))),
        }
    };
    let redrive = match attributes.get("RedrivePolicy").filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => {
            let policy: serde_json::Value = serde_json::from_str(text).map_err(|_| {
                SqsError::invalid(
                    "Value for parameter RedrivePolicy is invalid. Reason: Redrive policy is not a valid JSON map.",
                )
            })?;
            let arn = policy["deadLetterTargetArn"].as_str().ok_or_else(|| {
                SqsError::invalid("Value for parameter RedrivePolicy is invalid. Reason: Redrive policy does not contain mandatory attribute: deadLetterTargetArn.")
            })?;
            let max = match &policy["maxReceiveCount"] {
                serde_json::Value::Number(n) => n.as_u64(),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            }
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                SqsError::invalid("Value for parameter RedrivePolicy is invalid. Reason: Invalid value for maxReceiveCount: must be from 1 to 1000.")
            })?;
            let name = arn.rsplit(':').next().unwrap_or_default().to_owned();
            Some((name, max as u32))
        }
    };
    Ok(Settings {
        visibility_timeout: number("VisibilityTimeout", 30, 43_200, 0)?,
        retention: number("MessageRetentionPeriod", 345_600, 1_209_600, 60)?,
        delay: number("DelaySeconds", 0, 900, 0)?,
        max_size: number(
            "MaximumMessageSize",
            MAX_MESSAGE_BYTES as u32,
            MAX_MESSAGE_BYTES as u32,
            1024,
        )? as usize,
        wait: number("ReceiveMessageWaitTimeSeconds", 0, 20, 0)?,
        redrive,
        fifo: flag("FifoQueue")?,
        content_dedup: flag("ContentBasedDeduplication")?,
    })
}

impl Queues {
    /// The wait a receive with no WaitTimeSeconds uses (the queue's ReceiveMessageWaitTimeSeconds).
    pub fn default_wait(&self, name: &str) -> Result<Duration, SqsError> {
        let cell = self.cell(name)?;
        let wait = lock(&cell.state).settings.wait;
        Ok(Duration::from_secs(u64::from(wait)))
    }
}

fn now_ms() -> i64 {
    sylph_telemetry::unix_ms() as i64
}

fn now_s() -> u64 {
    sylph_telemetry::unix_ms() / 1000
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sylph-queues-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn send(body: &str) -> Outgoing {
        Outgoing {
            body: body.to_owned(),
            ..Default::default()
        }
    }

    fn receive(max: usize, visibility: u32) -> ReceiveOptions {
        ReceiveOptions {
            max,
            visibility_timeout: Some(visibility),
            wait: Duration::ZERO,
        }
    }

    #[test]
    fn attribute_md5_is_the_one_clients_check() {
        // The value @aws-sdk/client-sqs accepted in the end-to-end tests.
        let attrs = BTreeMap::from([(
            "k".to_owned(),
            MessageAttribute {
                data_type: "String".into(),
                string_value: Some("v".into()),
                binary_value: None,
            },
        )]);
        assert_eq!(attributes_md5(&attrs), "0a77b0642718c3d9dd47090567d11e0d");
        assert_eq!(hex_md5(b"hi there"), "fd33e2e8ad3cb1bdd3ea8f5633fcf5c7");
    }

    #[tokio::test]
    async fn received_messages_hide_until_their_timeout_and_stale_handles_delete_nothing() {
        let dir = temp("visibility");
        let q = Queues::open(&dir, "us-east-1").unwrap();
        q.create_queue("jobs", BTreeMap::new(), BTreeMap::new()).await.unwrap();
        q.send("jobs", vec![send("one")]).await.unwrap();
        let first = q.receive("jobs", &receive(10, 0)).await.unwrap();
        assert_eq!(first.len(), 1);
        // Visibility 0: receivable again at once, with a new handle.
        let second = q.receive("jobs", &receive(10, 60)).await.unwrap();
        assert_eq!(second[0].message.receive_count, 2);
        assert!(
            q.receive("jobs", &receive(10, 60)).await.unwrap().is_empty(),
            "hidden for 60 s"
        );
        // The first handle is stale: nothing is deleted.
        q.delete("jobs", &[first[0].receipt_handle.clone()]).await.unwrap();
        assert_eq!(q.depth("jobs"), Some(1));
        q.delete("jobs", &[second[0].receipt_handle.clone()]).await.unwrap();
        assert_eq!(q.depth("jobs"), Some(0));
        let bad = q.delete("jobs", &["garbage".to_owned()]).await.unwrap();
        assert_eq!(bad[0].as_ref().unwrap_err().code, "ReceiptHandleIsInvalid");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn bad_names_attributes_and_bodies_are_refused_with_what_is_wrong() {
        let dir = temp("checks");
        let q = Queues::open(&dir, "us-east-1").unwrap();
        let attrs = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        let e = q
            .create_queue("bad name", BTreeMap::new(), BTreeMap::new())
            .await
            .unwrap_err();
        assert_eq!(e.code, "InvalidParameterValue");
        let e = q
            .create_queue("x", attrs("VisibilityTimeout", "99999"), BTreeMap::new())
            .await
            .unwrap_err();
        assert!(e.message.contains("VisibilityTimeout"), "{e}");
        let e = q
            .create_queue("x", attrs("Colour", "blue"), BTreeMap::new())
            .await
            .unwrap_err();
        assert_eq!(e.code, "InvalidAttributeName");
        let e = q
            .create_queue("x.fifo", BTreeMap::new(), BTreeMap::new())
            .await
            .unwrap_err();
        assert!(e.message.contains("FifoQueue"), "{e}");
        let e = q
            .create_queue(
                "x",
                attrs(
                    "RedrivePolicy",
                    r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:nope","maxReceiveCount":3}"#,
                ),
                BTreeMap::new(),
            )
            .await
            .unwrap_err();
        assert!(e.message.contains("does not exist"), "{e}");
        q.create_queue("x", BTreeMap::new(), BTreeMap::new()).await.unwrap();
        // The same queue again is fine; other attributes are not.
        q.create_queue("x", BTreeMap::new(), BTreeMap::new()).await.unwrap();
        let e = q
            .create_queue("x", attrs("DelaySeconds", "5"), BTreeMap::new())
            .await
            .unwrap_err();
        assert_eq!(e.code, "QueueNameExists");
        let sent = q
            .send("x", vec![send("ok"), send("bad \u{1} char"), send("")])
            .await
            .unwrap();
        assert!(sent[0].is_ok());
        assert!(sent[1].as_ref().unwrap_err().message.contains("#x1"));
        assert_eq!(sent[2].as_ref().unwrap_err().code, "MissingParameter");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
