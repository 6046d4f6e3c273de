//! `stream` events: one poller per mapping reads the table's stream in order (the stream has
//! one shard, so records of any one item arrive in the order their changes committed) and
//! runs the function with batches, as Lambda's event source mapping for DynamoDB does.
//!
//! - The mapping's place in the stream is kept durably (the event store's checkpoint), and
//!   moves only past records the function handled (or that were skipped): a restart goes on
//!   where it stopped, delivering each record at least once. The first start begins at the
//!   newest record (`LATEST`) or the oldest kept (`TRIM_HORIZON`).
//! - A failing batch is retried (back-off from half a second, doubling, at most ten seconds)
//!   until `maximumRetryAttempts` (default: until its records expire) or
//!   `maximumRecordAgeInSeconds`; then it is skipped, and `destinations.onFailure` gets a
//!   record of it. `bisectBatchOnFunctionError` halves the batch on each failure.
//! - `ReportBatchItemFailures`: the function names the sequence number of the first record it
//!   could not handle; the records before it count as handled, the retry starts there.
//! - `filterPatterns`: records no pattern matches are passed over.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sylph_invoker::{InvokeRequest, InvokeResult};
use sylph_model::{Destination, Event, Service, StreamEvent};
use sylph_schedule::pattern::Pattern;
use sylph_tables::Tables;

use crate::mapping::{lock, Counters, PerService, StopSwitch, Stoppable};
use crate::store::EventStore;
use crate::{Functions, Lookup, Target};

/// Counters of one mapping.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Records handled by the function.
    pub delivered: AtomicU64,
    /// Failed invocations (each retried, or its batch skipped).
    pub failed_batches: AtomicU64,
    /// Records passed over after their retries or age ran out.
    pub skipped: AtomicU64,
    /// Records no filter pattern matched.
    pub filtered: AtomicU64,
    /// Milliseconds from a change's commit to the end of the invocation that handled it, of
    /// the last batch (for the benchmark and the metrics page).
    pub last_lag_ms: AtomicU64,
}

struct Mapping {
    key: String,
    target: Target,
    event: StreamEvent,
    patterns: Vec<Pattern>,
    switch: StopSwitch,
    stats: Arc<StreamStats>,
}

impl Stoppable for Mapping {
    fn switch(&self) -> &StopSwitch {
        &self.switch
    }
}

/// Every running `stream` mapping of every service.
pub struct StreamSources {
    tables: Tables,
    functions: Arc<dyn Functions>,
    store: Arc<EventStore>,
    queues: Option<sylph_queues::Queues>,
    mappings: PerService<Mapping>,
    /// By (function, table).
    stats: Counters<StreamStats>,
    /// One lock per mapping key, held by the task reading for it: after a redeploy the new
    /// task starts only once the old one has finished its batch, so a batch never runs twice
    /// at once and the checkpoint never moves back.
    lanes: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl StreamSources {
    pub fn new(
        tables: Tables,
        functions: Arc<dyn Functions>,
        store: Arc<EventStore>,
        queues: Option<sylph_queues::Queues>,
    ) -> Arc<StreamSources> {
        Arc::new(StreamSources {
            tables,
            functions,
            store,
            queues,
            mappings: PerService::new(),
            stats: Counters::new(),
            lanes: Mutex::new(HashMap::new()),
        })
    }

    /// Read `service`'s table streams from now on, in place of its earlier mappings. Returns
    /// a line per mapping, for `sylph dev` to print.
    pub fn set_service(self: &Arc<Self>, service: &Service, version: Option<u32>) -> Vec<String> {
        self.remove_service(&service.name, &service.stage);
        let mut started = Vec::new();
        let mut lines = Vec::new();
        for f in &service.functions {
            for (i, event) in f.events.iter().enumerate() {
                let Event::Stream(e) = event else { continue };
                if !e.enabled {
                    lines.push(format!("stream {} → {} (disabled)", e.table, f.key));
                    continue;
                }
                if !self.tables.has_stream(&e.table) {
                    lines.push(format!(
                        "stream {} → {}: the table has no stream (add StreamSpecification to it)",
                        e.table, f.key
                    ));
                }
                let stats = self.stats.of(&f.name, &e.table);
                let mapping = Arc::new(Mapping {
                    key: format!("{}/{}/{}/{i}/{}", service.name, service.stage, f.key, e.table),
                    target: Target {
                        service: service.name.clone(),
                        stage: service.stage.clone(),
                        function: f.name.clone(),
                        version,
                    },
                    event: e.clone(),
                    patterns: e
                        .filter_patterns
                        .iter()
                        .filter_map(|p| Pattern::parse(p).ok())
                        .collect(),
                    switch: StopSwitch::default(),
                    stats,
                });
                lines.push(format!(
                    "stream {} → {} (batches of up to {}, from {})",
                    e.table,
                    f.key,
                    e.batch_size,
                    if e.from_oldest {
                        "the oldest record"
                    } else {
                        "new records"
                    }
                ));
                tokio::spawn(self.clone().run(mapping.clone()));
                started.push(mapping);
            }
        }
        self.mappings.set(&service.name, &service.stage, started);
        lines
    }

    /// Stop `service`'s mappings (a batch being handled finishes first).
    pub fn remove_service(&self, name: &str, stage: &str) {
        self.mappings.stop(name, stage);
    }

    /// (function, table, counters), sorted.
    pub fn stats(&self) -> Vec<(String, String, Arc<StreamStats>)> {
        self.stats.all()
    }

    /// Prometheus text for the functions `show` accepts.
    pub fn render_metrics(&self, show: impl Fn(&str) -> bool) -> String {
        use std::fmt::Write as _;
        let stats: Vec<_> = self.stats().into_iter().filter(|(f, _, _)| show(f)).collect();
        let mut out = String::new();
        let counters: [crate::mapping::Counter<StreamStats>; 4] = [
            (
                "sylph_stream_delivered_total",
                "Table stream records handled by their function.",
                |s| s.delivered.load(Relaxed),
            ),
            (
                "sylph_stream_failed_batches_total",
                "Failed invocations with stream records (retried or skipped).",
                |s| s.failed_batches.load(Relaxed),
            ),
            (
                "sylph_stream_skipped_total",
                "Stream records passed over after their retries or age ran out.",
                |s| s.skipped.load(Relaxed),
            ),
            (
                "sylph_stream_filtered_total",
                "Stream records no filter pattern matched.",
                |s| s.filtered.load(Relaxed),
            ),
        ];
        crate::mapping::render_counters(&mut out, &counters, &stats, "table");
        let _ = writeln!(out, "# HELP sylph_stream_lag_seconds From a change's commit to the end of the invocation that handled it (last batch).\n# TYPE sylph_stream_lag_seconds gauge");
        for (function, table, s) in &stats {
            let _ = writeln!(
                out,
                "sylph_stream_lag_seconds{{function=\"{function}\",table=\"{table}\"}} {:.3}",
                s.last_lag_ms.load(Relaxed) as f64 / 1000.0
            );
        }
        out
    }

    /// Where a mapping starts: its checkpoint, or (first start) the newest record or none.
    fn start_position(&self, m: &Mapping) -> Option<u64> {
        match self.store.checkpoint(&m.key) {
            Ok(Some(p)) => Some(p),
            Ok(None) => {
                let p = if m.event.from_oldest {
                    0
                } else {
                    self.tables
                        .stream_bounds(&m.event.table)
                        .ok()?
                        .map_or(0, |(_, last)| last)
                };
                self.store.set_checkpoint(&m.key, p).ok()?;
                Some(p)
            }
            Err(e) => {
                tracing::error!("cannot read where stream mapping {} stands: {e}", m.key);
                None
            }
        }
    }

    async fn run(self: Arc<Self>, m: Arc<Mapping>) {
        let lane = lock(&self.lanes).entry(m.key.clone()).or_default().clone();
        let _lane = lane.lock().await;
        let table = m.event.table.clone();
        let changes = self.tables.changes();
        let mut position = loop {
            if m.switch.stopped() {
                return;
            }
            if let Some(p) = self.start_position(&m) {
                break p;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        let mut failures = 0u32;
        let mut limit = m.event.batch_size as usize;
        loop {
            if m.switch.stopped() {
                return;
            }
            let notified = changes.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let mut records = match self.tables.stream_records(&table, position, limit) {
                Ok(r) => r,
                Err(_) => {
                    // The table is not there (yet): look again later.
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                        _ = m.switch.wait() => return,
                    }
                }
            };
            if records.is_empty() {
                tokio::select! {
                    _ = &mut notified => {}
                    // The notification covers commits; this covers a missed one.
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = m.switch.wait() => return,
                }
                continue;
            }
            let window = Duration::from_secs(u64::from(m.event.maximum_batching_window));
            if !window.is_zero() && records.len() < limit && failures == 0 {
                tokio::time::sleep(window).await;
                if let Ok(more) = self.tables.stream_records(&table, position, limit) {
                    records = more;
                }
            }
            let last = records.last().map_or(position, |(seq, _)| *seq);
            // Records too old are passed over.
            if let Some(age) = m.event.maximum_record_age {
                let cutoff_us = (sylph_telemetry::unix_ms().saturating_sub(u64::from(age) * 1000)) * 1000;
                let before = records.len();
                records.retain(|(seq, _)| *seq >= cutoff_us);
                m.stats.skipped.fetch_add((before - records.len()) as u64, Relaxed);
            }
            let arn = format!(
                "arn:aws:dynamodb:{}:{}:table/{table}/stream/{}",
                records
                    .first()
                    .and_then(|(_, r)| r["awsRegion"].as_str())
                    .unwrap_or("us-east-1"),
                sylph_model::LOCAL_ACCOUNT_ID,
                sylph_tables::stream::LABEL
            );
            let mut batch: Vec<(u64, Value)> = Vec::with_capacity(records.len());
            for (seq, mut r) in records {
                r["eventSourceARN"] = json!(arn);
                if m.patterns.is_empty() || m.patterns.iter().any(|p| p.matches(&r)) {
                    batch.push((seq, r));
                } else {
                    m.stats.filtered.fetch_add(1, Relaxed);
                }
            }
            if batch.is_empty() {
                position = last;
                self.checkpoint(&m, position);
                continue;
            }
            match self.invoke(&m, &batch).await {
                Outcome::Handled(request_id) => {
                    tracing::info!(function = %m.target.function, table = %table, request_id = %request_id, "stream batch delivered: {} records", batch.len());
                    let first_us = batch[0].0 / 1000;
                    m.stats
                        .last_lag_ms
                        .store(sylph_telemetry::unix_ms().saturating_sub(first_us), Relaxed);
                    m.stats.delivered.fetch_add(batch.len() as u64, Relaxed);
                    position = last;
                    self.checkpoint(&m, position);
                    failures = 0;
                    limit = m.event.batch_size as usize;
                    continue;
                }
                Outcome::FailedFrom(seq) => {
                    // Everything before the first failed record was handled.
                    let handled = batch.iter().filter(|(s, _)| *s < seq).count();
                    m.stats.delivered.fetch_add(handled as u64, Relaxed);
                    if let Some((s, _)) = batch.iter().rev().find(|(s, _)| *s < seq) {
                        position = *s;
                        self.checkpoint(&m, position);
                    }
                }
                Outcome::Failed => {}
                // Not the batch's fault (the function is not running, or was throttled):
                // wait, without spending a retry.
                Outcome::Unavailable => {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                        _ = m.switch.wait() => return,
                    }
                }
            }
            failures += 1;
            m.stats.failed_batches.fetch_add(1, Relaxed);
            let exhausted = m.event.maximum_retry_attempts.is_some_and(|max| failures > max);
            if exhausted {
                let skipped: Vec<&(u64, Value)> = batch.iter().filter(|(s, _)| *s > position).collect();
                tracing::warn!(function = %m.target.function, table = %table, "skipping {} stream records after {failures} failed attempts", skipped.len());
                m.stats.skipped.fetch_add(skipped.len() as u64, Relaxed);
                if let (Some(Destination::Queue(q)), Some(first), Some(end)) =
                    (&m.event.on_failure, skipped.first(), skipped.last())
                {
                    self.send_failure(&m, q, &arn, failures, first, end, skipped.len())
                        .await;
                }
                position = batch.last().map_or(position, |(s, _)| *s);
                self.checkpoint(&m, position);
                failures = 0;
                limit = m.event.batch_size as usize;
                continue;
            }
            if m.event.bisect_batch_on_function_error && batch.len() > 1 {
                limit = (batch.len() / 2).max(1);
            }
            let backoff =
                (Duration::from_millis(500) * 2u32.saturating_pow(failures.min(5) - 1)).min(Duration::from_secs(10));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = m.switch.wait() => return,
            }
        }
    }

    fn checkpoint(&self, m: &Mapping, position: u64) {
        if let Err(e) = self.store.set_checkpoint(&m.key, position) {
            // The records since the last checkpoint come again after a restart.
            tracing::error!("cannot record where stream mapping {} stands: {e}", m.key);
        }
    }

    async fn invoke(&self, m: &Mapping, batch: &[(u64, Value)]) -> Outcome {
        let invoker = match self.functions.find(&m.target) {
            Lookup::Found(invoker) => invoker,
            Lookup::Later | Lookup::Gone => return Outcome::Unavailable,
        };
        let payload = json!({"Records": batch.iter().map(|(_, r)| r).collect::<Vec<_>>()}).to_string();
        let request = InvokeRequest {
            payload: bytes::Bytes::from(payload),
            ..Default::default()
        };
        match invoker.invoke(&m.target.function, request).await {
            Ok(r) => match r.result {
                InvokeResult::Success(body) if m.event.report_batch_item_failures => {
                    first_failure(&body, batch, r.request_id)
                }
                InvokeResult::Success(_) => Outcome::Handled(r.request_id),
                InvokeResult::Error { error_type, .. } => {
                    tracing::warn!(function = %m.target.function, request_id = %r.request_id, table = %m.event.table, "stream batch of {} failed ({error_type})", batch.len());
                    Outcome::Failed
                }
            },
            Err(e) => {
                tracing::warn!(function = %m.target.function, table = %m.event.table, "stream batch could not run: {e}");
                Outcome::Unavailable
            }
        }
    }

    /// Lambda's record of a skipped stream batch, sent to an `onFailure` queue.
    #[allow(clippy::too_many_arguments)]
    async fn send_failure(
        &self,
        m: &Mapping,
        queue: &str,
        arn: &str,
        attempts: u32,
        first: &(u64, Value),
        last: &(u64, Value),
        size: usize,
    ) {
        let Some(queues) = &self.queues else { return };
        let record = json!({
            "requestContext": {
                "requestId": sylph_telemetry::new_request_id(),
                "functionArn": format!("arn:aws:lambda:us-east-1:{}:function:{}", sylph_model::LOCAL_ACCOUNT_ID, m.target.function),
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": sylph_telemetry::UtcTime::now().iso8601(),
            "DDBStreamBatchInfo": {
                "shardId": sylph_tables::stream::api::SHARD_ID,
                "startSequenceNumber": format!("{:021}", first.0),
                "endSequenceNumber": format!("{:021}", last.0),
                "approximateArrivalOfFirstRecord": first.1["dynamodb"]["ApproximateCreationDateTime"],
                "approximateArrivalOfLastRecord": last.1["dynamodb"]["ApproximateCreationDateTime"],
                "batchSize": size,
                "streamArn": arn,
            },
        });
        let outgoing = sylph_queues::Outgoing {
            body: record.to_string(),
            ..Default::default()
        };
        if let Err(e) = queues.send(queue, vec![outgoing]).await {
            tracing::error!(queue = %queue, "cannot send the record of a skipped stream batch: {}", e.message);
        }
    }
}

enum Outcome {
    /// Handled, by the invocation with this request id.
    Handled(Arc<str>),
    /// Handled up to (not including) the record with this sequence number.
    FailedFrom(u64),
    Failed,
    /// Not run: the function is not there now, or was throttled.
    Unavailable,
}

/// A `ReportBatchItemFailures` answer: the first failed record, by its sequence number. No
/// answer, an empty one or an empty list: all handled. A failure naming no record of the
/// batch: the whole batch failed.
fn first_failure(body: &[u8], batch: &[(u64, Value)], request_id: Arc<str>) -> Outcome {
    let Ok(answer) = serde_json::from_slice::<Value>(body) else {
        return Outcome::Handled(request_id);
    };
    let Some(list) = answer.get("batchItemFailures").and_then(Value::as_array) else {
        return Outcome::Handled(request_id);
    };
    if list.is_empty() {
        return Outcome::Handled(request_id);
    }
    let mut first = None;
    for f in list {
        let seq = f
            .get("itemIdentifier")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|s| batch.iter().any(|(b, _)| b == s));
        match seq {
            Some(s) => first = Some(first.map_or(s, |f: u64| f.min(s))),
            None => return Outcome::Failed,
        }
    }
    first.map_or(Outcome::Handled(request_id), Outcome::FailedFrom)
}
