//! `sqs` events: pollers that receive a queue's messages in batches and run the function with
//! them, as Lambda's event source mapping does.
//!
//! - A batch is up to `batchSize` messages, gathered for up to `maximumBatchingWindow`
//!   seconds (without a window, whatever one long poll returns, at most 10).
//! - Success deletes the batch; a function error deletes nothing, so the messages come back
//!   after their visibility timeout (and go to the queue's dead-letter queue after its
//!   `maxReceiveCount`). With `ReportBatchItemFailures`, only the messages the function names
//!   in `batchItemFailures` stay; an answer naming an unknown message fails the whole batch.
//! - `filterPatterns`: a message that matches none is deleted without running the function.
//! - Scaling: one poller per mapping to start; a poller that gets a full batch starts another,
//!   up to `maximumConcurrency` (else the platform's concurrency); one that finds the queue
//!   empty stops, down to one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sylph_invoker::{InvokeRequest, InvokeResult};
use sylph_model::{Event, Service, SqsEvent};
use sylph_queues::{Queues, ReceiveOptions, Received};
use sylph_schedule::pattern::Pattern;

use crate::mapping::{Counters, PerService, StopSwitch, Stoppable};
use crate::{Functions, Lookup, Target};

/// A long poll's wait.
const LONG_POLL: Duration = Duration::from_secs(20);

/// Counters of one mapping.
#[derive(Debug, Default)]
pub struct MappingStats {
    /// Messages handled successfully (and deleted).
    pub delivered: AtomicU64,
    /// Messages left in the queue after a failed invocation (retried after their timeout).
    pub retried: AtomicU64,
    /// Messages deleted because no filter pattern matched them.
    pub filtered: AtomicU64,
}

struct Mapping {
    target: Target,
    event: SqsEvent,
    patterns: Vec<Pattern>,
    region: String,
    max_pollers: usize,
    pollers: AtomicUsize,
    switch: StopSwitch,
    stats: Arc<MappingStats>,
}

impl Stoppable for Mapping {
    fn switch(&self) -> &StopSwitch {
        &self.switch
    }
}

/// Every running `sqs` mapping of every service.
pub struct SqsSources {
    queues: Queues,
    functions: Arc<dyn Functions>,
    default_pollers: usize,
    mappings: PerService<Mapping>,
    /// By (function, queue).
    stats: Counters<MappingStats>,
}

impl SqsSources {
    pub fn new(queues: Queues, functions: Arc<dyn Functions>, default_pollers: usize) -> Arc<SqsSources> {
        Arc::new(SqsSources {
            queues,
            functions,
            default_pollers: default_pollers.max(1),
            mappings: PerService::new(),
            stats: Counters::new(),
        })
    }

    /// Poll `service`'s queues from now on, in place of its earlier mappings. Returns a line
    /// per mapping, for `sylph dev` to print.
    pub fn set_service(self: &Arc<Self>, service: &Service, version: Option<u32>) -> Vec<String> {
        self.remove_service(&service.name, &service.stage);
        let mut started = Vec::new();
        let mut lines = Vec::new();
        for f in &service.functions {
            for event in &f.events {
                let Event::Sqs(e) = event else { continue };
                if !e.enabled {
                    lines.push(format!("sqs {} → {} (disabled)", e.queue, f.key));
                    continue;
                }
                // Lambda refuses a mapping whose queue hides a message for less time than the
                // function may run (the message would come back while it is being handled).
                let visibility = self
                    .queues
                    .attributes(&e.queue, &["VisibilityTimeout".to_owned()])
                    .ok()
                    .and_then(|a| a.get("VisibilityTimeout").and_then(|v| v.parse::<u64>().ok()));
                if let Some(v) = visibility.filter(|v| *v < f.timeout.as_secs()) {
                    lines.push(format!(
                        "warning: queue {}'s VisibilityTimeout ({v} s) is shorter than {}'s timeout ({} s): a message can come back while it is being handled (AWS refuses this mapping)",
                        e.queue,
                        f.key,
                        f.timeout.as_secs()
                    ));
                }
                let patterns = e
                    .filter_patterns
                    .iter()
                    .filter_map(|p| Pattern::parse(p).ok())
                    .collect();
                let stats = self.stats.of(&f.name, &e.queue);
                let mapping = Arc::new(Mapping {
                    target: Target {
                        service: service.name.clone(),
                        stage: service.stage.clone(),
                        function: f.name.clone(),
                        version,
                    },
                    event: e.clone(),
                    patterns,
                    region: service.region.clone(),
                    max_pollers: e
                        .maximum_concurrency
                        .map_or(self.default_pollers, |n| n as usize)
                        .max(1),
                    pollers: AtomicUsize::new(1),
                    switch: StopSwitch::default(),
                    stats,
                });
                lines.push(format!(
                    "sqs {} → {} (batches of up to {}{})",
                    e.queue,
                    f.key,
                    e.batch_size,
                    if e.maximum_batching_window > 0 {
                        format!(", gathered for up to {} s", e.maximum_batching_window)
                    } else {
                        String::new()
                    }
                ));
                tokio::spawn(self.clone().poll(mapping.clone()));
                started.push(mapping);
            }
        }
        self.mappings.set(&service.name, &service.stage, started);
        lines
    }

    /// Stop `service`'s pollers (a batch being handled finishes first).
    pub fn remove_service(&self, name: &str, stage: &str) {
        self.mappings.stop(name, stage);
    }

    /// (function, queue, counters), sorted.
    pub fn stats(&self) -> Vec<(String, String, Arc<MappingStats>)> {
        self.stats.all()
    }

    /// Prometheus text for the functions `show` accepts.
    pub fn render_metrics(&self, show: impl Fn(&str) -> bool) -> String {
        use std::fmt::Write as _;
        let stats: Vec<_> = self.stats().into_iter().filter(|(f, _, _)| show(f)).collect();
        let mut out = String::new();
        let counters: [crate::mapping::Counter<MappingStats>; 3] = [
            (
                "sylph_sqs_delivered_total",
                "Queue messages handled by their function and deleted.",
                |s| s.delivered.load(Relaxed),
            ),
            (
                "sylph_sqs_retried_total",
                "Queue messages left for another try after a failed invocation.",
                |s| s.retried.load(Relaxed),
            ),
            (
                "sylph_sqs_filtered_total",
                "Queue messages deleted because no filter pattern matched.",
                |s| s.filtered.load(Relaxed),
            ),
        ];
        crate::mapping::render_counters(&mut out, &counters, &stats, "queue");
        let _ = writeln!(out, "# HELP sylph_sqs_oldest_message_age_seconds Age of the oldest message in each polled queue.\n# TYPE sylph_sqs_oldest_message_age_seconds gauge");
        let mut seen = std::collections::HashSet::new();
        for (_, queue, _) in &stats {
            if seen.insert(queue.clone()) {
                let age = self.queues.oldest_age_ms(queue).unwrap_or(0);
                let _ = writeln!(
                    out,
                    "sylph_sqs_oldest_message_age_seconds{{queue=\"{queue}\"}} {:.3}",
                    age as f64 / 1000.0
                );
            }
        }
        out
    }

    /// One poller: receive, invoke, delete, until stopped (or idle while others poll). Boxed:
    /// a poller may start another, and a recursive `async fn` has no nameable type.
    fn poll(self: Arc<Self>, m: Arc<Mapping>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(self.poll_loop(m))
    }

    async fn poll_loop(self: Arc<Self>, m: Arc<Mapping>) {
        let queue = m.event.queue.clone();
        let first_max = (m.event.batch_size as usize).min(10);
        loop {
            if m.switch.stopped() {
                return;
            }
            let options = ReceiveOptions {
                max: first_max,
                visibility_timeout: None,
                wait: LONG_POLL,
            };
            let received = tokio::select! {
                r = self.queues.receive(&queue, &options) => r,
                _ = m.switch.wait() => return,
            };
            let mut batch = match received {
                Ok(b) => b,
                Err(e) => {
                    // The queue may not exist yet (created later through the API).
                    tracing::debug!(queue = %queue, "cannot poll: {}", e.message);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                        _ = m.switch.wait() => return,
                    }
                }
            };
            if batch.is_empty() {
                // Idle: the extra pollers stop; one stays.
                let shrunk = m
                    .pollers
                    .fetch_update(Relaxed, Relaxed, |n| (n > 1).then(|| n - 1))
                    .is_ok();
                if shrunk {
                    return;
                }
                continue;
            }
            self.fill(&m, &mut batch).await;
            let full = batch.len() >= first_max;
            if full {
                let grown = m
                    .pollers
                    .fetch_update(Relaxed, Relaxed, |n| (n < m.max_pollers).then_some(n + 1))
                    .is_ok();
                if grown {
                    tokio::spawn(self.clone().poll(m.clone()));
                }
            }
            self.handle(&m, batch).await;
        }
    }

    /// Gather more messages while the batching window lasts.
    async fn fill(&self, m: &Mapping, batch: &mut Vec<Received>) {
        let window = Duration::from_secs(u64::from(m.event.maximum_batching_window));
        if window.is_zero() {
            return;
        }
        let deadline = tokio::time::Instant::now() + window;
        let wanted = m.event.batch_size as usize;
        while batch.len() < wanted {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || m.switch.stopped() {
                return;
            }
            let options = ReceiveOptions {
                max: (wanted - batch.len()).min(10),
                visibility_timeout: None,
                wait: left.min(LONG_POLL),
            };
            match self.queues.receive(&m.event.queue, &options).await {
                Ok(more) => batch.extend(more),
                Err(_) => return,
            }
        }
    }

    async fn handle(&self, m: &Mapping, batch: Vec<Received>) {
        let queue = &m.event.queue;
        let arn = self.queues.arn(queue);
        let records: Vec<Value> = batch.iter().map(|r| record(r, &arn, &m.region)).collect();
        // Filtering: messages no pattern matches are deleted unseen.
        let (keep, dropped): (Vec<usize>, Vec<usize>) = (0..batch.len()).partition(|&i| {
            m.patterns.is_empty() || {
                let mut shown = records[i].clone();
                if let Some(parsed) = shown["body"]
                    .as_str()
                    .and_then(|b| serde_json::from_str::<Value>(b).ok())
                {
                    shown["body"] = parsed;
                }
                m.patterns.iter().any(|p| p.matches(&shown))
            }
        });
        if !dropped.is_empty() {
            let handles: Vec<String> = dropped.iter().map(|&i| batch[i].receipt_handle.clone()).collect();
            if self.queues.delete(queue, &handles).await.is_ok() {
                m.stats.filtered.fetch_add(handles.len() as u64, Relaxed);
            }
        }
        if keep.is_empty() {
            return;
        }
        let payload = json!({"Records": keep.iter().map(|&i| &records[i]).collect::<Vec<_>>()}).to_string();
        let invoker = match self.functions.find(&m.target) {
            Lookup::Found(invoker) => invoker,
            // Not deleted: the messages come back after their visibility timeout.
            Lookup::Later | Lookup::Gone => return,
        };
        let request = InvokeRequest {
            payload: bytes::Bytes::from(payload),
            ..Default::default()
        };
        let answer = invoker.invoke(&m.target.function, request).await;
        let request_id = answer.as_ref().map_or_else(|_| Arc::from(""), |r| r.request_id.clone());
        let failed_ids: Option<Vec<String>> = match answer {
            Ok(r) => match r.result {
                InvokeResult::Success(body) if m.event.report_batch_item_failures => {
                    let ids: Vec<&str> = keep.iter().map(|&i| batch[i].message.id.as_str()).collect();
                    match batch_item_failures(&body, &ids) {
                        Some(failed) => Some(failed),
                        None => {
                            tracing::warn!(function = %m.target.function, request_id = %r.request_id, "batchItemFailures names a message not in the batch: the whole batch failed");
                            None
                        }
                    }
                }
                InvokeResult::Success(_) => Some(Vec::new()),
                InvokeResult::Error { error_type, .. } => {
                    tracing::warn!(function = %m.target.function, request_id = %r.request_id, queue = %queue, "batch of {} failed ({error_type}); its messages stay in the queue", keep.len());
                    None
                }
            },
            Err(e) => {
                tracing::warn!(function = %m.target.function, queue = %queue, "batch could not run ({e}); its messages stay in the queue");
                None
            }
        };
        let Some(failed_ids) = failed_ids else {
            m.stats.retried.fetch_add(keep.len() as u64, Relaxed);
            return;
        };
        let done: Vec<String> = keep
            .iter()
            .filter(|&&i| !failed_ids.contains(&batch[i].message.id))
            .map(|&i| batch[i].receipt_handle.clone())
            .collect();
        m.stats.retried.fetch_add(failed_ids.len() as u64, Relaxed);
        if let Err(e) = self.queues.delete(queue, &done).await {
            tracing::error!(queue = %queue, "cannot delete a handled batch: {}", e.message);
            return;
        }
        m.stats.delivered.fetch_add(done.len() as u64, Relaxed);
        tracing::info!(function = %m.target.function, queue = %queue, request_id = %request_id, "sqs batch delivered: {} handled, {} left for another try", done.len(), failed_ids.len());
    }
}

/// The message ids a `ReportBatchItemFailures` answer names; `None` when it names one that is
/// not in the batch or one without an id (Lambda then fails the whole batch). No answer, an
/// empty one or an empty list means every message succeeded.
fn batch_item_failures(body: &[u8], ids: &[&str]) -> Option<Vec<String>> {
    let answer: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => return Some(Vec::new()),
    };
    let Some(list) = answer.get("batchItemFailures").and_then(Value::as_array) else {
        return Some(Vec::new());
    };
    list.iter()
        .map(|f| {
            f.get("itemIdentifier")
                .and_then(Value::as_str)
                .filter(|id| ids.contains(id))
                .map(str::to_owned)
        })
        .collect()
}

/// One message as Lambda's SQS event record.
fn record(r: &Received, arn: &str, region: &str) -> Value {
    let m = &r.message;
    let mut attributes = json!({
        "ApproximateReceiveCount": m.receive_count.to_string(),
        "SentTimestamp": m.sent_ms.to_string(),
        "SenderId": "000000000000",
        "ApproximateFirstReceiveTimestamp": m.first_receive_ms.unwrap_or(m.sent_ms).to_string(),
    });
    if let Some(group) = &m.group_id {
        attributes["MessageGroupId"] = json!(group);
    }
    if let Some(dedup) = &m.dedup_id {
        attributes["MessageDeduplicationId"] = json!(dedup);
        attributes["SequenceNumber"] = json!(format!("{:020}", m.seq));
    }
    let message_attributes: serde_json::Map<String, Value> = m
        .attributes
        .iter()
        .map(|(name, a)| {
            let mut v = json!({"stringListValues": [], "binaryListValues": [], "dataType": a.data_type});
            if let Some(s) = &a.string_value {
                v["stringValue"] = json!(s);
            }
            if let Some(b) = &a.binary_value {
                v["binaryValue"] = json!(b);
            }
            (name.clone(), v)
        })
        .collect();
    json!({
        "messageId": m.id,
        "receiptHandle": r.receipt_handle,
        "body": m.body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": m.md5_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_item_failures_follow_lambdas_rules() {
        let ids = ["a", "b", "c"];
        assert_eq!(
            batch_item_failures(br#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#, &ids),
            Some(vec!["b".to_owned()])
        );
        assert_eq!(batch_item_failures(br#"{"batchItemFailures":[]}"#, &ids), Some(vec![]));
        assert_eq!(batch_item_failures(b"null", &ids), Some(vec![]));
        assert_eq!(batch_item_failures(br#""done""#, &ids), Some(vec![]));
        // An id not in the batch, or none at all: the whole batch failed.
        assert_eq!(
            batch_item_failures(br#"{"batchItemFailures":[{"itemIdentifier":"z"}]}"#, &ids),
            None
        );
        assert_eq!(
            batch_item_failures(br#"{"batchItemFailures":[{"itemIdentifier":""}]}"#, &ids),
            None
        );
        assert_eq!(batch_item_failures(br#"{"batchItemFailures":[{}]}"#, &ids), None);
    }
}
