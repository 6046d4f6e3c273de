//! memorySize is enforced: a function that allocates past it fails alone, with an error that
//! names the limit, while another function keeps answering.

use crate::harness::Dev;

#[test]
fn a_function_over_its_memory_size_fails_alone() {
    let dir = std::env::temp_dir().join(format!("sylph-oom-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: oom\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  hog:\n    handler: h.hog\n    memorySize: 128\n  py:\n    handler: p.hog\n    runtime: python3.12\n    memorySize: 128\n  fine:\n    handler: h.fine\n    memorySize: 128\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("h.js"),
        "exports.hog = async () => { const keep = []; for (let i = 0; i < 64; i++) keep.push(Buffer.alloc(16 * 1024 * 1024, 1)); return keep.length; };\nexports.fine = async () => 'still here';\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("p.py"),
        "def hog(event, context):\n    keep = [bytearray(16 * 1024 * 1024) for _ in range(64)]\n    return len(keep)\n",
    )
    .unwrap();
    let dev = Dev::start(&dir);
    assert!(
        dev.output().contains("memory limits: memorySize enforced"),
        "{}",
        dev.output()
    );

    for function in ["hog", "py"] {
        let r = dev.send(
            "POST",
            &format!("/2015-03-31/functions/{function}/invocations"),
            &[],
            b"{}",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"));
        let body = r.json();
        assert_eq!(body["errorType"], "Runtime.OutOfMemory", "{body}\n{}", dev.output());
        assert!(
            body["errorMessage"].as_str().unwrap().contains("memorySize of 128 MB"),
            "{body}"
        );
    }
    let r = dev.send("POST", "/2015-03-31/functions/fine/invocations", &[], b"{}");
    assert_eq!((r.status, r.text()), (200, "\"still here\"".to_owned()));
    // The next invocation of the greedy function gets a fresh instance (and fails again).
    let r = dev.send("POST", "/2015-03-31/functions/hog/invocations", &[], b"{}");
    assert_eq!(r.json()["errorType"], "Runtime.OutOfMemory");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_function_flooding_stdout_is_capped_and_alone() {
    let dir = std::env::temp_dir().join(format!("sylph-flood-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: flood\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  flood:\n    handler: h.flood\n  fine:\n    handler: h.fine\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("h.js"),
        // Synchronous writes: all 20 MB reach the pipe before the function returns (output
        // still queued in Node.js when it returns waits, frozen, for the next invocation).
        "const fs = require('fs');\nexports.flood = async () => { const line = 'x'.repeat(100) + '\\n'; for (let i = 0; i < 200000; i++) fs.writeSync(1, line); return 'flooded'; };\nexports.fine = async () => 'still here';\n",
    )
    .unwrap();
    let dev = Dev::start(&dir);
    let r = dev.send("POST", "/2015-03-31/functions/flood/invocations", &[], b"{}");
    assert_eq!((r.status, r.text()), (200, "\"flooded\"".to_owned()));
    assert!(dev.wait_for_output("the rest of it is dropped"), "no cap notice");
    let logged = dev.output().matches(&"x".repeat(100)).count();
    assert!(
        logged < 20_000,
        "{logged} lines of 20 MB reached the log; the cap is 1 MB"
    );
    let r = dev.send("POST", "/2015-03-31/functions/fine/invocations", &[], b"{}");
    assert_eq!((r.status, r.text()), (200, "\"still here\"".to_owned()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fork_bomb_stops_at_the_process_limit_and_costs_nobody_else() {
    let dir = std::env::temp_dir().join(format!("sylph-forks-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: forks\nprovider:\n  runtime: python3.12\nfunctions:\n  bomb:\n    handler: p.bomb\n    memorySize: 4096\n    timeout: 120\n  fine:\n    handler: p.fine\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("p.py"),
        "import os, time\n\ndef bomb(event, context):\n    forked, failed = 0, 0\n    for _ in range(3000):\n        try:\n            pid = os.fork()\n        except OSError:\n            failed += 1\n            break\n        if pid == 0:\n            os.execv('/bin/sleep', ['sleep', '60'])\n        forked += 1\n    return {'forked': forked, 'failed': failed}\n\ndef fine(event, context):\n    return 'still here'\n",
    )
    .unwrap();
    let dev = Dev::start(&dir);
    assert!(
        dev.output()
            .contains("process limits: 1024 processes and threads per instance"),
        "{}",
        dev.output()
    );
    let r = dev.send("POST", "/2015-03-31/functions/bomb/invocations", &[], b"{}");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["failed"], 1, "{body}");
    assert!(body["forked"].as_u64().unwrap() < 1024, "{body}");
    let r = dev.send("POST", "/2015-03-31/functions/fine/invocations", &[], b"{}");
    assert_eq!((r.status, r.text()), (200, "\"still here\"".to_owned()));
    let _ = std::fs::remove_dir_all(&dir);
}
