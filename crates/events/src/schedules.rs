//! `schedule` events: each enabled schedule of each running service fires at its times, and
//! each tick becomes an asynchronous invocation (kept durably, retried like any other).
//!
//! Where each schedule stands (when it began, its last tick) is kept in the [`EventStore`]
//! with the tick's event, so a restart neither repeats a tick nor forgets one. Ticks missed
//! while Sylph was down fire once, as soon as it is back (not once per missed tick: a nightly
//! job after three nights down should run once, not three times in a row; and not never: a
//! cleanup that misses its one tick because of a restart at the wrong minute would otherwise
//! wait a whole day).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sylph_model::{Event, ScheduleEvent, Service};
use sylph_schedule::Schedule;

use crate::payload::scheduled_event;
use crate::queue::{AcceptError, AsyncQueue};
use crate::store::{ScheduleState, StoreError};
use crate::Target;

/// The longest single sleep: the wall clock is looked at again at least this often.
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// The store's key for a schedule: its service, stage and name.
pub fn schedule_key(service: &str, stage: &str, name: &str) -> String {
    format!("{service}/{stage}/{name}")
}

struct Entry {
    key: String,
    target: Target,
    event: ScheduleEvent,
    schedule: Schedule,
    region: String,
    began_ms: i64,
    /// The next tick (Unix milliseconds); `None` once it never fires again.
    next_ms: Option<i64>,
}

/// One schedule of a service, as `sylph dev` lists them.
#[derive(Debug, Clone)]
pub struct Upcoming {
    /// The function's key in `serverless.yml`.
    pub function: String,
    pub name: String,
    pub expression: String,
    /// The next tick in the schedule's time zone, or why there is none.
    pub next: String,
}

pub struct Scheduler {
    queue: Arc<AsyncQueue>,
    entries: Mutex<Vec<Entry>>,
    wake: tokio::sync::Notify,
}

impl Scheduler {
    pub fn new(queue: Arc<AsyncQueue>) -> Arc<Scheduler> {
        Arc::new(Scheduler {
            queue,
            entries: Mutex::new(Vec::new()),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// Run `service`'s schedules from now on, in place of any it had (a deploy, a rollback).
    /// `version` is where their events go (`None`: wherever its traffic goes).
    pub fn set_service(&self, service: &Service, version: Option<u32>) -> Result<Vec<Upcoming>, StoreError> {
        let now = now_ms();
        let mut fresh = Vec::new();
        let mut upcoming = Vec::new();
        for f in &service.functions {
            for event in &f.events {
                let Event::Schedule(s) = event else { continue };
                let mut shown = Upcoming {
                    function: f.key.clone(),
                    name: s.name.clone(),
                    expression: s.expression.clone(),
                    next: "disabled".to_owned(),
                };
                if !s.enabled {
                    upcoming.push(shown);
                    continue;
                }
                let schedule = match Schedule::parse(&s.expression, s.timezone.as_deref(), s.scheduler) {
                    Ok(schedule) => schedule,
                    Err(e) => {
                        // The manifest checked it; a version deployed by an older Sylph may not have been.
                        shown.next = format!("not run: {e}");
                        upcoming.push(shown);
                        continue;
                    }
                };
                let key = schedule_key(&service.name, &service.stage, &s.name);
                let store = self.queue.store();
                let state = match store.schedule_state(&key)? {
                    Some(state) => state,
                    None => {
                        let state = ScheduleState {
                            began_ms: now,
                            last_tick_ms: None,
                        };
                        store.tick(&key, state, None)?;
                        state
                    }
                };
                let from = state.last_tick_ms.unwrap_or(state.began_ms);
                let next_ms = schedule.next_after(from, state.began_ms);
                shown.next = match next_ms {
                    Some(t) if t <= now => format!("now (a tick was missed at {})", schedule.show(t)),
                    Some(t) => schedule.show(t),
                    None => "never again".to_owned(),
                };
                upcoming.push(shown);
                fresh.push(Entry {
                    key,
                    target: Target {
                        service: service.name.clone(),
                        stage: service.stage.clone(),
                        function: f.name.clone(),
                        version,
                    },
                    event: s.clone(),
                    schedule,
                    region: service.region.clone(),
                    began_ms: state.began_ms,
                    next_ms,
                });
            }
        }
        {
            let mut entries = lock(&self.entries);
            entries.retain(|e| !(e.target.service == service.name && e.target.stage == service.stage));
            entries.extend(fresh);
        }
        self.wake.notify_one();
        Ok(upcoming)
    }

    /// Stop `service`'s schedules (it was removed).
    pub fn remove_service(&self, name: &str, stage: &str) {
        lock(&self.entries).retain(|e| !(e.target.service == name && e.target.stage == stage));
        self.wake.notify_one();
    }

    /// Fire ticks as they come due, forever.
    pub async fn run(self: Arc<Self>) {
        loop {
            let now = now_ms();
            let mut due = Vec::new();
            let mut earliest: Option<i64> = None;
            {
                let mut entries = lock(&self.entries);
                for e in entries.iter_mut() {
                    let Some(tick) = e.next_ms else { continue };
                    if tick <= now {
                        due.push(Tick {
                            key: e.key.clone(),
                            target: e.target.clone(),
                            event: e.event.clone(),
                            region: e.region.clone(),
                            tick,
                            state: ScheduleState {
                                began_ms: e.began_ms,
                                last_tick_ms: Some(tick),
                            },
                        });
                        // Any further ticks already past were missed: the one fired stands for them.
                        e.next_ms = e.schedule.next_after(tick.max(now), e.began_ms);
                    }
                    if let Some(next) = e.next_ms {
                        earliest = Some(earliest.map_or(next, |t| t.min(next)));
                    }
                }
            }
            for tick in due {
                let function = tick.target.function.clone();
                let name = tick.event.name.clone();
                // Built here, not under the lock every schedule shares.
                let payload = scheduled_event(&tick.event, &tick.region, tick.tick);
                match self
                    .queue
                    .accept_tick(tick.key, tick.state, tick.target, payload, name.clone())
                    .await
                {
                    Ok(()) => tracing::info!(function = %function, schedule = %name, "schedule fired"),
                    Err(AcceptError::Full(n)) => {
                        tracing::error!(function = %function, schedule = %name, "schedule tick skipped: {n} asynchronous events are waiting already")
                    }
                    Err(e) => tracing::error!(function = %function, schedule = %name, "schedule tick lost: {e}"),
                }
            }
            let wait = earliest.map_or(MAX_SLEEP, |t| Duration::from_millis((t - now_ms()).max(0) as u64));
            tokio::select! {
                _ = tokio::time::sleep(wait.min(MAX_SLEEP)) => {}
                _ = self.wake.notified() => {}
            }
        }
    }
}

struct Tick {
    key: String,
    target: Target,
    event: ScheduleEvent,
    region: String,
    tick: i64,
    state: ScheduleState,
}

fn now_ms() -> i64 {
    sylph_telemetry::unix_ms() as i64
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
