//! Invocation metrics in the Prometheus text format: counters, gauges and histograms kept in
//! atomics, so recording on the request path never takes a lock.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Upper bounds (seconds) of the duration histogram buckets.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{le}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum{{{labels}}} {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{{labels}}} {count}");
    }
}

/// Everything recorded about one function.
#[derive(Default)]
pub struct FunctionMetrics {
    pub invocations: AtomicU64,
    pub errors: AtomicU64,
    pub timeouts: AtomicU64,
    pub throttles: AtomicU64,
    pub cold_starts: AtomicU64,
    pub prewarmed_starts: AtomicU64,
    pub warm_starts: AtomicU64,
    pub concurrent: AtomicI64,
    pub duration: Histogram,
    pub init_duration: Histogram,
}

/// A source of metrics the gateway serves at `/_sylph/metrics`.
pub trait MetricsSource: Send + Sync + 'static {
    fn render(&self) -> String;
}

/// Render the metrics of `functions` (name, metrics, idle instances).
pub fn render(functions: &[(&str, &FunctionMetrics, usize)]) -> String {
    let mut out = String::with_capacity(4096 + functions.len() * 2048);
    let counters: [(&str, &str, fn(&FunctionMetrics) -> u64); 4] = [
        ("sylph_invocations_total", "Invocations, by function.", |m| {
            m.invocations.load(Ordering::Relaxed)
        }),
        (
            "sylph_errors_total",
            "Invocations that ended in a function error, timeout or crash.",
            |m| m.errors.load(Ordering::Relaxed),
        ),
        (
            "sylph_timeouts_total",
            "Invocations stopped at the function's timeout.",
            |m| m.timeouts.load(Ordering::Relaxed),
        ),
        (
            "sylph_throttles_total",
            "Invocations refused by a concurrency limit.",
            |m| m.throttles.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (f, m, _) in functions {
            let _ = writeln!(out, "{name}{{function=\"{f}\"}} {}", get(m));
        }
    }
    let _ = writeln!(out, "# HELP sylph_starts_total Instances used, by how they started (cold, prewarmed, warm).\n# TYPE sylph_starts_total counter");
    for (f, m, _) in functions {
        for (kind, v) in [
            ("cold", &m.cold_starts),
            ("prewarmed", &m.prewarmed_starts),
            ("warm", &m.warm_starts),
        ] {
            let _ = writeln!(
                out,
                "sylph_starts_total{{function=\"{f}\",kind=\"{kind}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP sylph_concurrent_executions Invocations in flight.\n# TYPE sylph_concurrent_executions gauge"
    );
    for (f, m, _) in functions {
        let _ = writeln!(
            out,
            "sylph_concurrent_executions{{function=\"{f}\"}} {}",
            m.concurrent.load(Ordering::Relaxed).max(0)
        );
    }
    let _ = writeln!(
        out,
        "# HELP sylph_instances Instances (busy and idle).\n# TYPE sylph_instances gauge"
    );
    for (f, m, idle) in functions {
        let _ = writeln!(
            out,
            "sylph_instances{{function=\"{f}\"}} {}",
            m.concurrent.load(Ordering::Relaxed).max(0) as usize + idle
        );
    }
    let _ = writeln!(
        out,
        "# HELP sylph_duration_seconds Invocation duration.\n# TYPE sylph_duration_seconds histogram"
    );
    for (f, m, _) in functions {
        m.duration
            .render(&mut out, "sylph_duration_seconds", &format!("function=\"{f}\""));
    }
    let _ = writeln!(out, "# HELP sylph_init_duration_seconds Runtime init duration of cold and pre-warmed starts.\n# TYPE sylph_init_duration_seconds histogram");
    for (f, m, _) in functions {
        m.init_duration
            .render(&mut out, "sylph_init_duration_seconds", &format!("function=\"{f}\""));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = FunctionMetrics::default();
        m.invocations.fetch_add(3, Ordering::Relaxed);
        m.duration.observe(0.003);
        m.duration.observe(2.0);
        let text = render(&[("hello", &m, 1)]);
        assert!(text.contains("sylph_invocations_total{function=\"hello\"} 3"));
        assert!(text.contains("sylph_duration_seconds_bucket{function=\"hello\",le=\"0.005\"} 1"));
        assert!(text.contains("sylph_duration_seconds_bucket{function=\"hello\",le=\"+Inf\"} 2"));
        assert!(text.contains("sylph_duration_seconds_count{function=\"hello\"} 2"));
        assert!(text.contains("sylph_instances{function=\"hello\"} 1"));
    }
}

/// One function's counters at one moment (or the change between two moments).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    /// Cold starts, pre-started or not.
    pub cold_starts: u64,
    pub buckets: [u64; BUCKETS.len()],
    pub count: u64,
    /// The concurrency gauge when read.
    pub concurrent: i64,
}

impl FunctionMetrics {
    pub fn read(&self) -> Reading {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut buckets = [0u64; BUCKETS.len()];
        for (b, a) in buckets.iter_mut().zip(self.duration.buckets.iter()) {
            *b = load(a);
        }
        Reading {
            invocations: load(&self.invocations),
            errors: load(&self.errors) + load(&self.timeouts),
            throttles: load(&self.throttles),
            cold_starts: load(&self.cold_starts) + load(&self.prewarmed_starts),
            buckets,
            count: load(&self.duration.count),
            concurrent: self.concurrent.load(Ordering::Relaxed),
        }
    }
}

impl Reading {
    fn since(&self, earlier: &Reading) -> Reading {
        let mut buckets = [0u64; BUCKETS.len()];
        for (i, b) in buckets.iter_mut().enumerate() {
            *b = self.buckets[i].saturating_sub(earlier.buckets[i]);
        }
        Reading {
            invocations: self.invocations.saturating_sub(earlier.invocations),
            errors: self.errors.saturating_sub(earlier.errors),
            throttles: self.throttles.saturating_sub(earlier.throttles),
            cold_starts: self.cold_starts.saturating_sub(earlier.cold_starts),
            buckets,
            count: self.count.saturating_sub(earlier.count),
            concurrent: self.concurrent,
        }
    }

    fn add(&mut self, other: &Reading) {
        self.invocations += other.invocations;
        self.errors += other.errors;
        self.throttles += other.throttles;
        self.cold_starts += other.cold_starts;
        for (b, o) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *b += o;
        }
        self.count += other.count;
        self.concurrent = self.concurrent.max(other.concurrent);
    }

    /// The `q` quantile of durations in milliseconds, interpolated within the histogram
    /// bucket it falls in (`None` without invocations; the last bound past the last bucket).
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = q * self.count as f64;
        let mut lower_bound = 0.0;
        let mut lower_count = 0u64;
        for (i, le) in BUCKETS.iter().enumerate() {
            let c = self.buckets[i];
            if c as f64 >= rank {
                let in_bucket = (c - lower_count) as f64;
                let fraction = if in_bucket > 0.0 {
                    (rank - lower_count as f64) / in_bucket
                } else {
                    1.0
                };
                return Some((lower_bound + (le - lower_bound) * fraction.clamp(0.0, 1.0)) * 1000.0);
            }
            lower_bound = *le;
            lower_count = c;
        }
        Some(BUCKETS[BUCKETS.len() - 1] * 1000.0)
    }
}

/// What happened to one function over a window, for `sylph metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub invocations: u64,
    pub errors: u64,
    pub throttles: u64,
    pub cold_starts: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The highest concurrency seen at a sample (samples are taken every few seconds).
    pub max_concurrency: i64,
}

/// Recent history per function: the change in its counters per sampling interval, kept for a
/// bounded number of intervals (in memory). Readings come from whichever pool serves the
/// function now; a new pool (a deploy, a restart) starts again from zero, which is noticed by
/// the pool's identity.
pub struct History {
    keep: usize,
    series: std::sync::Mutex<std::collections::HashMap<String, Series>>,
}

#[derive(Default)]
struct Series {
    /// (unix ms, change since the previous sample)
    samples: std::collections::VecDeque<(u64, Reading)>,
    last: Option<(usize, Reading)>,
}

impl History {
    /// Keep `keep` samples per function.
    pub fn new(keep: usize) -> History {
        History {
            keep: keep.max(1),
            series: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Record `reading` of `function` from the pool identified by `pool`, at `now_ms`.
    pub fn record(&self, function: &str, pool: usize, reading: Reading, now_ms: u64) {
        let mut all = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let s = all.entry(function.to_owned()).or_default();
        let delta = match &s.last {
            Some((p, last)) if *p == pool => reading.since(last),
            _ => reading.since(&Reading::default()),
        };
        s.samples.push_back((now_ms, delta));
        while s.samples.len() > self.keep {
            s.samples.pop_front();
        }
        s.last = Some((pool, reading));
    }

    /// What `function` did from `since_ms` on.
    pub fn summary(&self, function: &str, since_ms: u64) -> Summary {
        let all = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = Reading::default();
        if let Some(s) = all.get(function) {
            for (t, r) in &s.samples {
                if *t >= since_ms {
                    total.add(r);
                }
            }
        }
        Summary {
            invocations: total.invocations,
            errors: total.errors,
            throttles: total.throttles,
            cold_starts: total.cold_starts,
            p50_ms: total.quantile_ms(0.5),
            p99_ms: total.quantile_ms(0.99),
            max_concurrency: total.concurrent,
        }
    }

    pub fn forget(&self, function: &str) {
        self.series.lock().unwrap_or_else(|e| e.into_inner()).remove(function);
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    #[test]
    fn windows_sum_changes_across_pools_and_quantiles_come_from_buckets() {
        let m = FunctionMetrics::default();
        let h = History::new(100);
        for ms in [3.0, 3.0, 3.0, 40.0] {
            m.invocations.fetch_add(1, Ordering::Relaxed);
            m.duration.observe(ms / 1000.0);
        }
        h.record("f", 1, m.read(), 1_000);
        m.invocations.fetch_add(1, Ordering::Relaxed);
        m.errors.fetch_add(1, Ordering::Relaxed);
        m.duration.observe(0.003);
        h.record("f", 1, m.read(), 2_000);
        // A new pool (a deploy) starts from zero.
        let fresh = FunctionMetrics::default();
        fresh.invocations.fetch_add(2, Ordering::Relaxed);
        fresh.cold_starts.fetch_add(1, Ordering::Relaxed);
        h.record("f", 2, fresh.read(), 3_000);
        let all = h.summary("f", 0);
        assert_eq!((all.invocations, all.errors, all.cold_starts), (7, 1, 1));
        let p50 = all.p50_ms.unwrap();
        assert!((2.5..=5.0).contains(&p50), "{p50}");
        let p99 = all.p99_ms.unwrap();
        assert!((25.0..=50.0).contains(&p99), "{p99}");
        let recent = h.summary("f", 2_000);
        assert_eq!(recent.invocations, 3);
        assert_eq!(h.summary("g", 0), Summary::default());
    }
}
