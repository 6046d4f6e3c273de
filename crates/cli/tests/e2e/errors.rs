//! A function that throws, exits or runs past its timeout costs that one request.

use serde_json::json;

use crate::harness::{example, Dev};

#[test]
fn thrown_errors_crashes_and_timeouts_cost_one_request() {
    let dev = Dev::start(&example("hello-node"));

    let r = dev.get("/dev/fail");
    assert_eq!((r.status, r.json()), (502, json!({"message": "Internal server error"})));
    assert!(dev.wait_for_output("this function always fails"), "{}", dev.output());

    // The process exits mid-invocation; that request fails, the next one gets a new instance.
    let r = dev.get("/dev/crash");
    assert_eq!((r.status, r.json()), (502, json!({"message": "Internal server error"})));
    assert!(
        dev.wait_for_output("Runtime exited with error: exit status 3"),
        "{}",
        dev.output()
    );
    let r = dev.get("/dev/crash");
    assert_eq!(r.status, 502);
    assert_eq!(
        dev.wait_for_count("about to crash", 2),
        2,
        "each crash ran in a fresh instance"
    );

    // Past its 1 s timeout, the function is stopped: 504 through API Gateway.
    let r = dev.get("/dev/slow");
    assert_eq!(
        (r.status, r.json()),
        (504, json!({"message": "Endpoint request timed out"}))
    );
    assert!(
        dev.wait_for_output("Task timed out after 1.00 seconds"),
        "{}",
        dev.output()
    );
    let r = dev.get("/v2/slow");
    assert_eq!(r.status, 504);

    // Other functions never noticed.
    let r = dev.get("/dev/hello");
    assert_eq!(r.status, 200);
}

#[test]
fn report_lines_carry_init_duration_on_cold_starts_only() {
    let dev = Dev::start(&example("hello-node"));
    assert_eq!(dev.get("/dev/hello").status, 200);
    assert_eq!(dev.get("/dev/hello").status, 200);
    // The output is read by another thread: wait (bounded) until both records are in.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while dev.output().matches("[hello] REPORT").count() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = dev.output();
    let reports: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("[hello] REPORT RequestId: "))
        .collect();
    assert_eq!(reports.len(), 2, "{out}");
    for field in [
        "Duration: ",
        "Billed Duration: ",
        "Memory Size: 1024 MB",
        "Max Memory Used: ",
    ] {
        assert!(reports[0].contains(field), "{}", reports[0]);
    }
    assert!(reports[0].contains("Init Duration: "), "cold start: {}", reports[0]);
    assert!(!reports[1].contains("Init Duration"), "warm start: {}", reports[1]);
    assert!(out
        .lines()
        .any(|l| l.starts_with("[hello] START RequestId: ") && l.ends_with("Version: $LATEST")));
    assert!(out.lines().any(|l| l.starts_with("[hello] END RequestId: ")));
}
