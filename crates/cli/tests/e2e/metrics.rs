//! Prometheus metrics at /_sylph/metrics count invocations, errors, timeouts and starts.

use crate::harness::{example, metric, Dev};

#[test]
fn metrics_count_invocations_errors_and_starts() {
    let dev = Dev::start_with(&example("hello-node"), &["--prewarm", "0"], &[]);
    for _ in 0..3 {
        assert_eq!(dev.get("/dev/hello").status, 200);
    }
    assert_eq!(dev.get("/dev/fail").status, 502);
    assert_eq!(dev.get("/dev/slow").status, 504);
    let r = dev.get("/_sylph/metrics");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.text();
    assert_eq!(metric(&text, "sylph_invocations_total{function=\"hello\"}"), 3.0);
    assert_eq!(
        metric(&text, "sylph_starts_total{function=\"hello\",kind=\"cold\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "sylph_starts_total{function=\"hello\",kind=\"warm\"}"),
        2.0
    );
    assert_eq!(metric(&text, "sylph_errors_total{function=\"fail\"}"), 1.0);
    assert_eq!(metric(&text, "sylph_errors_total{function=\"hello\"}"), 0.0);
    assert_eq!(metric(&text, "sylph_timeouts_total{function=\"slow\"}"), 1.0);
    assert_eq!(metric(&text, "sylph_duration_seconds_count{function=\"hello\"}"), 3.0);
    assert_eq!(
        metric(&text, "sylph_init_duration_seconds_count{function=\"hello\"}"),
        1.0
    );
    assert_eq!(metric(&text, "sylph_instances{function=\"hello\"}"), 1.0);
    assert_eq!(metric(&text, "sylph_concurrent_executions{function=\"hello\"}"), 0.0);
}
