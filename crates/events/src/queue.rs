//! Lambda's asynchronous invocation. An event is written to the [`EventStore`] before
//! [`AsyncQueue::accept`] returns (so an acknowledged event survives a crash), then run:
//!
//! - a function error is retried `maximumRetryAttempts` times (2 by default), after the retry
//!   delay and then twice that (Lambda's one minute, then two);
//! - a throttle or a failed start is not the function's fault: it is retried with back-off
//!   (one second, doubling, at most five minutes) without counting as an attempt;
//! - an event older than `maximumEventAge` (6 h by default) is given up;
//! - a success goes to `onSuccess`, an event given up to `onFailure` and `onError`, as
//!   Lambda's destination record; a destination function gets it as an event of its own.
//!
//! Bounded: past `max_pending` events waiting, [`AsyncQueue::accept`] refuses new ones (the
//! caller sees Lambda's throttling error) rather than filling memory and disk. Delivery is at
//! least once: an event running when Sylph is killed runs again when it starts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sylph_invoker::{InvokeError, InvokeRequest, InvokeResult};
use sylph_model::{AsyncConfig, Destination};

use crate::payload::{destination_record, Condition, LastRun};
use crate::store::{EventStore, Pending, ScheduleState, Source, StoreError};
use crate::{Functions, Lookup, Target};

/// Longest back-off after a throttle or a failed start.
const MAX_SYSTEM_BACKOFF: Duration = Duration::from_secs(300);
/// How often an event for a service that is deployed but not running looks again.
const LATER_POLL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// Events accepted and not finished, at most; past it new ones are refused.
    pub max_pending: usize,
    /// The wait before the first retry of a function error; the next waits twice as long.
    pub retry_delay: Duration,
    /// Events running at once (the pool's own limits apply on top).
    pub max_in_flight: usize,
    /// For function ARNs in destination records.
    pub region: String,
}

/// Why an event was not accepted; nothing was kept.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("{0} asynchronous events are waiting to run; try again later")]
    Full(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Counters per (function, source), for the metrics page.
#[derive(Debug, Default, Clone, Copy)]
pub struct SourceStats {
    /// Runs that succeeded.
    pub delivered: u64,
    /// Retries scheduled after a function error.
    pub retried: u64,
    /// Events given up (retries exhausted, too old, or their function gone).
    pub failed: u64,
    /// Events given up whose record went to an `onFailure` / `onError` target.
    pub dead_lettered: u64,
}

pub struct AsyncQueue {
    store: Arc<EventStore>,
    functions: Arc<dyn Functions>,
    settings: QueueSettings,
    /// Events kept and not finished (reserved before they are written, for the bound).
    pending: AtomicUsize,
    /// When each unfinished event was accepted, by id (the age of the oldest is a metric).
    accepted: Mutex<HashMap<String, i64>>,
    in_flight: tokio::sync::Semaphore,
    stats: Mutex<HashMap<(String, &'static str), SourceStats>>,
    next_id: AtomicU64,
    /// Where queue destinations (`onSuccess`/`onFailure`/`onError` to SQS) are delivered.
    queues: std::sync::OnceLock<sylph_queues::Queues>,
}

impl AsyncQueue {
    pub fn new(store: Arc<EventStore>, functions: Arc<dyn Functions>, settings: QueueSettings) -> Arc<AsyncQueue> {
        Arc::new(AsyncQueue {
            store,
            functions,
            in_flight: tokio::sync::Semaphore::new(settings.max_in_flight.max(1)),
            settings,
            pending: AtomicUsize::new(0),
            accepted: Mutex::new(HashMap::new()),
            stats: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            queues: std::sync::OnceLock::new(),
        })
    }

    /// Deliver queue destinations to `queues`.
    pub fn set_queues(&self, queues: sylph_queues::Queues) {
        let _ = self.queues.set(queues);
    }

    pub fn store(&self) -> &Arc<EventStore> {
        &self.store
    }

    /// Run every event kept before the last stop; returns how many there were.
    pub fn resume(self: &Arc<Self>) -> Result<usize, StoreError> {
        let pending = self.store.pending()?;
        let n = pending.len();
        self.pending.fetch_add(n, Relaxed);
        for event in pending {
            self.track(&event);
            tokio::spawn(self.clone().run(event));
        }
        Ok(n)
    }

    /// Keep an event for `target` durably, then run it in the background; `Ok` once kept.
    pub async fn accept(self: &Arc<Self>, target: Target, payload: String, source: Source) -> Result<(), AcceptError> {
        self.admit(target, payload, source, None).await
    }

    /// A schedule's tick: its event and the schedule's new state are kept together. With the
    /// queue full the tick is still recorded (so it is not fired again), and the error says
    /// the event was not kept.
    pub async fn accept_tick(
        self: &Arc<Self>,
        schedule_key: String,
        state: ScheduleState,
        target: Target,
        payload: String,
        schedule_name: String,
    ) -> Result<(), AcceptError> {
        let source = Source::Schedule(schedule_name);
        let result = self
            .admit(target, payload, source, Some((schedule_key.clone(), state)))
            .await;
        if let Err(AcceptError::Full(_)) = &result {
            let store = self.store.clone();
            blocking(move || store.tick(&schedule_key, state, None)).await?;
        }
        result
    }

    async fn admit(
        self: &Arc<Self>,
        target: Target,
        payload: String,
        source: Source,
        tick: Option<(String, ScheduleState)>,
    ) -> Result<(), AcceptError> {
        let max = self.settings.max_pending;
        if self.pending.fetch_add(1, Relaxed) >= max {
            self.pending.fetch_sub(1, Relaxed);
            return Err(AcceptError::Full(max));
        }
        let event = self.new_event(target, payload, source);
        let store = self.store.clone();
        let kept = event.clone();
        let written = blocking(move || match &tick {
            Some((key, state)) => store.tick(key, *state, Some(&kept)),
            None => store.put(&kept),
        })
        .await;
        if let Err(e) = written {
            self.pending.fetch_sub(1, Relaxed);
            return Err(e.into());
        }
        self.track(&event);
        tokio::spawn(self.clone().run(event));
        Ok(())
    }

    fn new_event(&self, target: Target, payload: String, source: Source) -> Pending {
        let now = now_ms();
        let n = self.next_id.fetch_add(1, Relaxed);
        Pending {
            // Sorts by acceptance; the random part keeps ids unique across restarts.
            id: format!(
                "{now:015}-{n:08}-{}",
                sylph_telemetry::random_chars(6, b"abcdefghijklmnopqrstuvwxyz012345")
            ),
            target,
            payload,
            source,
            accepted_ms: now,
            attempts: 0,
            not_before_ms: now,
        }
    }

    fn track(&self, event: &Pending) {
        lock(&self.accepted).insert(event.id.clone(), event.accepted_ms);
    }

    /// Run one event until it succeeds or is given up, then the destination event it made,
    /// if any (in this task: an event's end never spawns, so that these futures stay `Send`).
    async fn run(self: Arc<Self>, event: Pending) {
        let mut next = Some(event);
        while let Some(event) = next {
            next = self.run_one(event).await;
        }
    }

    async fn run_one(self: &Arc<Self>, mut event: Pending) -> Option<Pending> {
        let mut system_retries = 0u32;
        loop {
            let wait = event.not_before_ms - now_ms();
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
            let invoker = match self.functions.find(&event.target) {
                Lookup::Found(invoker) => invoker,
                Lookup::Later => {
                    if now_ms() - event.accepted_ms > AsyncConfig::default().maximum_event_age.as_millis() as i64 {
                        tracing::error!(function = %event.target.function, "giving up an event: its service has not run for {:?}", AsyncConfig::default().maximum_event_age);
                        return self.end(&event, None, Outcome::Failed { dead_lettered: false }).await;
                    }
                    event.not_before_ms = now_ms() + LATER_POLL.as_millis() as i64;
                    continue;
                }
                Lookup::Gone => {
                    tracing::warn!(function = %event.target.function, "dropping an event: its function is no longer deployed");
                    return self.end(&event, None, Outcome::Failed { dead_lettered: false }).await;
                }
            };
            let Some(function) = invoker.function(&event.target.function) else {
                tracing::warn!(function = %event.target.function, "dropping an event: its function is no longer deployed");
                return self.end(&event, None, Outcome::Failed { dead_lettered: false }).await;
            };
            let config = function.on_async.clone();
            let arn = function.arn(&self.settings.region);
            if now_ms() - event.accepted_ms > config.maximum_event_age.as_millis() as i64 {
                return self
                    .give_up(&event, &arn, &config, Condition::EventAgeExceeded, None)
                    .await;
            }
            let request = InvokeRequest {
                payload: bytes::Bytes::from(event.payload.clone()),
                ..Default::default()
            };
            let result = {
                let _permit = self.in_flight.acquire().await;
                invoker.invoke(&event.target.function, request).await
            };
            match result {
                Ok(response) => {
                    let request_id = response.request_id;
                    match response.result {
                        InvokeResult::Success(body) => {
                            let last = LastRun {
                                request_id: &request_id,
                                response: &body,
                                failed: false,
                            };
                            tracing::info!(function = %event.target.function, request_id = %request_id, source = event.source.label(), "asynchronous invocation delivered");
                            let then = match &config.on_success {
                                Some(to) => {
                                    let record = destination_record(
                                        &arn,
                                        event.target.version,
                                        Condition::Success,
                                        event.attempts + 1,
                                        &event.payload,
                                        Some(last),
                                    );
                                    self.destination(&event, to, record).await
                                }
                                None => None,
                            };
                            return self.end(&event, then, Outcome::Delivered).await;
                        }
                        InvokeResult::Error { error_type, body, .. } => {
                            event.attempts += 1;
                            if event.attempts > config.maximum_retry_attempts {
                                tracing::warn!(function = %event.target.function, request_id = %request_id, "asynchronous invocation failed ({error_type}) after {} attempts; giving it up", event.attempts);
                                let last = LastRun {
                                    request_id: &request_id,
                                    response: &body,
                                    failed: true,
                                };
                                return self
                                    .give_up(&event, &arn, &config, Condition::RetriesExhausted, Some(last))
                                    .await;
                            }
                            let delay = self.settings.retry_delay * 2u32.pow(event.attempts - 1);
                            tracing::warn!(function = %event.target.function, request_id = %request_id, "asynchronous invocation failed ({error_type}); retrying in {delay:?}");
                            event.not_before_ms = now_ms() + delay.as_millis() as i64;
                            self.count(&event, |s| s.retried += 1);
                            // Kept, so that a restart does not give it more attempts than it has.
                            let store = self.store.clone();
                            let kept = event.clone();
                            if let Err(e) = blocking(move || store.put(&kept)).await {
                                tracing::error!("cannot record a retry of event {}: {e}", event.id);
                            }
                        }
                    }
                }
                Err(InvokeError::FunctionNotFound(_)) => {
                    tracing::warn!(function = %event.target.function, "dropping an event: its function is no longer deployed");
                    return self.end(&event, None, Outcome::Failed { dead_lettered: false }).await;
                }
                Err(e) => {
                    let backoff =
                        (Duration::from_secs(1) * 2u32.saturating_pow(system_retries.min(16))).min(MAX_SYSTEM_BACKOFF);
                    system_retries += 1;
                    tracing::warn!(function = %event.target.function, "asynchronous invocation could not run ({e}); trying again in {backoff:?}");
                    event.not_before_ms = now_ms() + backoff.as_millis() as i64;
                }
            }
        }
    }

    /// An event is given up: its record goes to `onFailure` (a function gets it as an event of
    /// its own; any other target gets it in the log) and its original to `onError`.
    async fn give_up(
        &self,
        event: &Pending,
        arn: &str,
        config: &AsyncConfig,
        condition: Condition,
        last: Option<LastRun<'_>>,
    ) -> Option<Pending> {
        let request_id = last.as_ref().map(|l| l.request_id.to_owned()).unwrap_or_default();
        let error_message = last
            .as_ref()
            .map(|l| {
                serde_json::from_slice::<serde_json::Value>(l.response)
                    .ok()
                    .and_then(|v| v["errorMessage"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| String::from_utf8_lossy(l.response).into_owned())
            })
            .unwrap_or_else(|| condition.as_str().to_owned());
        let record = destination_record(
            arn,
            event.target.version,
            condition,
            event.attempts,
            &event.payload,
            last,
        );
        let mut dead_lettered = false;
        let then = match &config.on_failure {
            Some(to) => {
                dead_lettered = true;
                self.destination(event, to, record).await
            }
            None => None,
        };
        if let Some(to) = &config.dead_letter {
            dead_lettered = true;
            // A dead-letter queue gets the original event, with the error in message
            // attributes, as Lambda sends it.
            let attributes = [
                ("RequestID", request_id),
                ("ErrorCode", "200".to_owned()),
                ("ErrorMessage", error_message.chars().take(1024).collect()),
            ];
            match to {
                Destination::Queue(name) => {
                    self.send_to_queue(event, name, event.payload.clone(), &attributes)
                        .await
                }
                other => tracing::error!(
                    function = %event.target.function,
                    "dead letter for {other:?} (not delivered: sylph does not serve that target): event {} error {error_message}",
                    event.payload
                ),
            }
        }
        if !dead_lettered {
            tracing::error!(function = %event.target.function, "asynchronous event given up ({}) with no onFailure destination: {}", condition.as_str(), event.payload);
        }
        self.end(event, then, Outcome::Failed { dead_lettered }).await
    }

    /// Deliver a destination record: a queue gets it now; a function gets it as an event of
    /// its own (returned, to take this event's place); other targets get it in the log.
    async fn destination(&self, event: &Pending, to: &Destination, record: String) -> Option<Pending> {
        match to {
            Destination::Function(name) => {
                let target = Target {
                    function: name.clone(),
                    ..event.target.clone()
                };
                Some(self.new_event(target, record, Source::Destination(event.target.function.clone())))
            }
            Destination::Queue(name) => {
                self.send_to_queue(event, name, record, &[]).await;
                None
            }
            Destination::Unsupported(arn) => {
                tracing::error!(function = %event.target.function, "destination {arn} is not served by sylph; its record: {record}");
                None
            }
        }
    }

    async fn send_to_queue(&self, event: &Pending, queue: &str, body: String, attributes: &[(&str, String)]) {
        let Some(queues) = self.queues.get() else {
            tracing::error!(function = %event.target.function, "no queue service for destination {queue}; record: {body}");
            return;
        };
        let outgoing = sylph_queues::Outgoing {
            body,
            attributes: attributes
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_owned(),
                        sylph_queues::MessageAttribute {
                            data_type: "String".to_owned(),
                            string_value: Some(if v.is_empty() { "-".to_owned() } else { v.clone() }),
                            binary_value: None,
                        },
                    )
                })
                .collect(),
            // A FIFO destination needs a group; the function's name keeps its outcomes in order.
            group_id: queues
                .is_fifo(queue)
                .unwrap_or(false)
                .then(|| event.target.function.clone()),
            dedup_id: queues.is_fifo(queue).unwrap_or(false).then(|| event.id.clone()),
            ..Default::default()
        };
        match queues.send(queue, vec![outgoing]).await {
            Ok(results) => {
                if let Some(Err(e)) = results.first() {
                    tracing::error!(function = %event.target.function, "cannot send to {queue}: {}", e.message);
                }
            }
            Err(e) => tracing::error!(function = %event.target.function, "cannot send to {queue}: {}", e.message),
        }
    }

    /// Forget `event` (and keep `then` in its place, in the same transaction); `then` is
    /// returned to be run next.
    async fn end(&self, event: &Pending, then: Option<Pending>, outcome: Outcome) -> Option<Pending> {
        self.count(event, |s| match outcome {
            Outcome::Delivered => s.delivered += 1,
            Outcome::Failed { dead_lettered } => {
                s.failed += 1;
                s.dead_lettered += u64::from(dead_lettered);
            }
        });
        let store = self.store.clone();
        let id = event.id.clone();
        let kept = then.clone();
        if let Err(e) = blocking(move || store.finish(&id, kept.as_ref())).await {
            // It will run again after a restart: at least once, never lost.
            tracing::error!("cannot mark event {} finished: {e}", event.id);
        }
        lock(&self.accepted).remove(&event.id);
        match &then {
            // It takes the finished event's place in the bound.
            Some(next) => self.track(next),
            None => {
                self.pending.fetch_sub(1, Relaxed);
            }
        }
        then
    }

    fn count(&self, event: &Pending, f: impl FnOnce(&mut SourceStats)) {
        let label: &'static str = match event.source {
            Source::Invoke => "invoke",
            Source::Schedule(_) => "schedule",
            Source::Destination(_) => "destination",
        };
        f(lock(&self.stats)
            .entry((event.target.function.clone(), label))
            .or_default());
    }

    /// Events waiting or running.
    pub fn pending(&self) -> usize {
        self.pending.load(Relaxed)
    }

    /// The counters per (function, source), sorted.
    pub fn stats(&self) -> Vec<((String, &'static str), SourceStats)> {
        let mut out: Vec<_> = lock(&self.stats).iter().map(|(k, v)| (k.clone(), *v)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Prometheus text for the queue: the counters of the functions `show` accepts, how many
    /// events wait, and the oldest one's age.
    pub fn render_metrics(&self, show: impl Fn(&str) -> bool) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut stats = self.stats();
        stats.retain(|((function, _), _)| show(function));
        let counters: [crate::mapping::Counter<SourceStats>; 4] = [
            (
                "sylph_async_delivered_total",
                "Asynchronous events run successfully.",
                |s| s.delivered,
            ),
            ("sylph_async_retried_total", "Retries after a function error.", |s| {
                s.retried
            }),
            ("sylph_async_failed_total", "Asynchronous events given up.", |s| {
                s.failed
            }),
            (
                "sylph_async_dead_lettered_total",
                "Events given up that went to onFailure or onError.",
                |s| s.dead_lettered,
            ),
        ];
        for (name, help, get) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((function, source), s) in &stats {
                let _ = writeln!(out, "{name}{{function=\"{function}\",source=\"{source}\"}} {}", get(s));
            }
        }
        let oldest = lock(&self.accepted).values().min().map_or(0, |t| (now_ms() - t).max(0));
        let _ = writeln!(
            out,
            "# HELP sylph_async_pending Asynchronous events accepted and not finished.\n# TYPE sylph_async_pending gauge\nsylph_async_pending {}",
            self.pending()
        );
        let _ = writeln!(
            out,
            "# HELP sylph_async_oldest_age_seconds Age of the oldest unfinished asynchronous event.\n# TYPE sylph_async_oldest_age_seconds gauge\nsylph_async_oldest_age_seconds {:.3}",
            oldest as f64 / 1000.0
        );
        out
    }
}

#[derive(Clone, Copy)]
enum Outcome {
    Delivered,
    Failed { dead_lettered: bool },
}

fn now_ms() -> i64 {
    sylph_telemetry::unix_ms() as i64
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Store calls fsync: off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(StoreError(format!("the store task failed: {e}"))))
}
