//! Scale per request: N concurrent requests start N instances (one in-flight request per
//! instance, as Lambda), and a CPU-bound endless loop costs only its own request.

use crate::harness::{metric, request, Dev};

fn service(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sylph-scaling-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: scaling\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  slow:\n    handler: h.slow\n  spin:\n    handler: h.spin\n    timeout: 1\n  fine:\n    handler: h.fine\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("h.js"),
        "const instance = Math.random().toString(36);\nexports.slow = async () => { await new Promise((r) => setTimeout(r, 1000)); return instance; };\nexports.spin = async () => { for (;;) {} };\nexports.fine = async () => 'still here';\n",
    )
    .unwrap();
    dir
}

#[test]
fn n_concurrent_requests_start_n_instances() {
    let dir = service("n");
    let dev = Dev::start_with(&dir, &["--prewarm", "0", "--concurrency", "16"], &[]);
    let n = 4;
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let base = dev.base.clone();
            std::thread::spawn(move || {
                request(&base, "POST", "/2015-03-31/functions/slow/invocations", &[], b"{}").text()
            })
        })
        .collect();
    let instances: std::collections::HashSet<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(
        instances.len(),
        n,
        "each concurrent request ran in its own instance: {instances:?}"
    );
    let text = dev.get("/_sylph/metrics").text();
    assert_eq!(
        metric(&text, "sylph_starts_total{function=\"slow\",kind=\"cold\"}"),
        n as f64
    );
    assert_eq!(
        metric(&text, "sylph_instances{function=\"slow\"}"),
        n as f64,
        "all {n} stay warm for reuse"
    );
    // Sequential requests now reuse them: no new instance.
    assert_eq!(
        dev.send("POST", "/2015-03-31/functions/slow/invocations", &[], b"{}")
            .status,
        200
    );
    let text = dev.get("/_sylph/metrics").text();
    assert_eq!(
        metric(&text, "sylph_starts_total{function=\"slow\",kind=\"cold\"}"),
        n as f64
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_endless_loop_costs_only_its_own_request() {
    let dir = service("loop");
    let dev = Dev::start(&dir);
    let base = dev.base.clone();
    let spinning =
        std::thread::spawn(move || request(&base, "POST", "/2015-03-31/functions/spin/invocations", &[], b"{}"));
    dev.wait_in_flight("spin");
    // While it spins, other functions answer.
    let r = dev.send("POST", "/2015-03-31/functions/fine/invocations", &[], b"{}");
    assert_eq!((r.status, r.text()), (200, "\"still here\"".to_owned()));
    let r = spinning.join().unwrap();
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
    assert!(
        r.json()["errorMessage"]
            .as_str()
            .unwrap()
            .contains("Task timed out after 1.00 seconds"),
        "{}",
        r.text()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
