//! Asynchronous invocation and schedules through `sylph dev` and a real Node.js function:
//! retries then the onFailure record, the metrics that count them, a schedule's tick as
//! EventBridge sends it, and accepted events that outlive a kill -9.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use crate::harness::{metric, repo_root, Dev};

fn service() -> std::path::PathBuf {
    repo_root().join("crates/cli/tests/fixtures/events-service/serverless.yml")
}

fn send_event(dev: &Dev, function: &str, event: &serde_json::Value) {
    let r = dev.send(
        "POST",
        &format!("/2015-03-31/functions/{function}/invocations"),
        &[("X-Amz-Invocation-Type", "Event")],
        event.to_string().as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.text());
}

/// The JSON printed after `prefix` on the first line that has it.
fn printed(output: &str, prefix: &str) -> serde_json::Value {
    let line = output
        .lines()
        .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{output}"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn a_failing_event_is_retried_twice_then_its_record_reaches_on_failure_and_a_schedule_ticks() {
    let dev = Dev::start_with(&service(), &["--async-retry-delay", "1"], &[]);
    // Each schedule is listed with its next tick at start.
    let out = dev.output();
    assert!(out.contains("schedule rate(1 minute)"), "{out}");
    assert!(
        out.contains("+01:00 [Europe/Paris]") || out.contains("+02:00 [Europe/Paris]"),
        "{out}"
    );

    send_event(&dev, "evt-dev-fail", &json!({"n": 7}));
    assert!(
        dev.wait_for_output_within("SINK ", Duration::from_secs(60)),
        "no failure record reached the destination:\n{}",
        dev.output()
    );
    let out = dev.output();
    // One run and two retries, then the record.
    assert_eq!(out.matches("FAIL-RUN 7").count(), 3, "{out}");
    let record = printed(&out, "SINK ");
    assert_eq!(record["requestContext"]["condition"], "RetriesExhausted");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(
        record["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:evt-dev-fail:$LATEST"
    );
    assert_eq!(record["requestPayload"], json!({"n": 7}));
    assert_eq!(record["responseContext"]["functionError"], "Unhandled");
    assert_eq!(record["responsePayload"]["errorMessage"], "broken on purpose 7");

    let metrics = dev.get("/_sylph/metrics").text();
    let counted = |name: &str| {
        metric(
            &metrics,
            &format!("{name}{{function=\"evt-dev-fail\",source=\"invoke\"}}"),
        )
    };
    assert_eq!(counted("sylph_async_retried_total"), 2.0, "{metrics}");
    assert_eq!(counted("sylph_async_failed_total"), 1.0, "{metrics}");
    assert_eq!(counted("sylph_async_dead_lettered_total"), 1.0, "{metrics}");

    // rate(1 minute) ticks a minute after start, with EventBridge's scheduled event.
    assert!(
        dev.wait_for_output_within("TICK ", Duration::from_secs(90)),
        "the schedule did not fire:\n{}",
        dev.output()
    );
    let tick = printed(&dev.output(), "TICK ");
    assert_eq!(tick["detail-type"], "Scheduled Event");
    assert_eq!(tick["source"], "aws.events");
    assert_eq!(
        tick["resources"],
        json!(["arn:aws:events:us-east-1:000000000000:rule/evt-dev-tick-schedule-1"])
    );
    assert!(tick["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{tick}");
}

#[test]
fn events_accepted_before_a_kill_9_all_run_after_the_restart() {
    let data = std::env::temp_dir().join(format!("sylph-e2e-async-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let data_arg = data.to_str().unwrap();
    let mut first = Dev::start_with(&service(), &["--data-dir", data_arg], &[]);
    const N: usize = 20;
    for n in 0..N {
        send_event(&first, "evt-dev-slow", &json!({ "n": n }));
    }
    // Each run takes half a second and a few run at once: most are still waiting now.
    first.kill9();
    let before = delivered(&first.output());
    assert!(
        before.len() < N,
        "every event ran before the kill; the test proves nothing"
    );

    let second = Dev::start_with(&service(), &["--data-dir", data_arg], &[]);
    assert!(
        second
            .output()
            .contains("asynchronous events accepted before the last stop will run now"),
        "{}",
        second.output()
    );
    let start = std::time::Instant::now();
    loop {
        let all: BTreeSet<usize> = before.union(&delivered(&second.output())).copied().collect();
        if all.len() == N {
            assert_eq!(all, (0..N).collect());
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "only {all:?} ran:\n{}",
            second.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(second);
    let _ = std::fs::remove_dir_all(&data);
}

/// The events the slow function finished, by their `n`.
fn delivered(output: &str) -> BTreeSet<usize> {
    output
        .lines()
        .filter_map(|l| l.split_once("DELIVERED ").and_then(|(_, n)| n.trim().parse().ok()))
        .collect()
}
