//! What the `sqs` and `stream` sources share: a stop switch per mapping, the running mappings
//! of every service (replaced whole on a deploy), and counters kept across redeploys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Set once, when a mapping's service is redeployed or removed; its tasks finish what they
/// are doing and return.
#[derive(Default)]
pub(crate) struct StopSwitch {
    stopped: AtomicBool,
    notify: tokio::sync::Notify,
}

impl StopSwitch {
    pub(crate) fn stop(&self) {
        self.stopped.store(true, Relaxed);
        self.notify.notify_waiters();
    }

    pub(crate) fn stopped(&self) -> bool {
        self.stopped.load(Relaxed)
    }

    /// Completes when [`StopSwitch::stop`] is called (for `select!` beside a wait).
    pub(crate) async fn wait(&self) {
        self.notify.notified().await;
    }
}

/// Something with a [`StopSwitch`].
pub(crate) trait Stoppable {
    fn switch(&self) -> &StopSwitch;
}

/// A (service, stage) pair.
type ServiceStage = (String, String);

/// The running mappings of every service, by (service, stage).
pub(crate) struct PerService<M> {
    running: Mutex<HashMap<ServiceStage, Vec<Arc<M>>>>,
}

impl<M: Stoppable> PerService<M> {
    pub(crate) fn new() -> PerService<M> {
        PerService {
            running: Mutex::new(HashMap::new()),
        }
    }

    /// `mappings` are now the service's (its earlier ones were stopped by [`PerService::stop`]).
    pub(crate) fn set(&self, service: &str, stage: &str, mappings: Vec<Arc<M>>) {
        lock(&self.running).insert((service.to_owned(), stage.to_owned()), mappings);
    }

    /// Stop the service's mappings.
    pub(crate) fn stop(&self, service: &str, stage: &str) {
        if let Some(old) = lock(&self.running).remove(&(service.to_owned(), stage.to_owned())) {
            for m in old {
                m.switch().stop();
            }
        }
    }
}

/// Counters by (function, queue or table), kept across redeploys for the metrics page.
pub(crate) struct Counters<S> {
    by_source: Mutex<HashMap<(String, String), Arc<S>>>,
}

impl<S: Default> Counters<S> {
    pub(crate) fn new() -> Counters<S> {
        Counters {
            by_source: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn of(&self, function: &str, source: &str) -> Arc<S> {
        lock(&self.by_source)
            .entry((function.to_owned(), source.to_owned()))
            .or_default()
            .clone()
    }

    /// (function, source, counters), sorted.
    pub(crate) fn all(&self) -> Vec<(String, String, Arc<S>)> {
        let mut out: Vec<_> = lock(&self.by_source)
            .iter()
            .map(|((f, s), c)| (f.clone(), s.clone(), c.clone()))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A Prometheus counter family: its name, its help text, and how to read it.
pub(crate) type Counter<S> = (&'static str, &'static str, fn(&S) -> u64);

/// One Prometheus counter family per entry of `counters`, with a sample per row labelled
/// `function` and `label` (the queue or table).
pub(crate) fn render_counters<S>(
    out: &mut String,
    counters: &[Counter<S>],
    rows: &[(String, String, Arc<S>)],
    label: &str,
) {
    use std::fmt::Write as _;
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (function, source, s) in rows {
            let _ = writeln!(out, "{name}{{function=\"{function}\",{label}=\"{source}\"}} {}", get(s));
        }
    }
}
