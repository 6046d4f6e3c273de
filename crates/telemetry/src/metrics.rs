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
