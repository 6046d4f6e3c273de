//! Cold starts from pre-started runtimes, and scale to zero: a quiet service ends with no
//! function or runtime process.

use std::time::{Duration, Instant};

use crate::harness::{example, metric, Dev};

/// Function processes (instances, pre-started runtimes) whose parent is `pid`: every child
/// but Sylph's own clean-up guard, which lives as long as Sylph.
fn children_of(pid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|stat| {
                let after = &stat[stat.rfind(')').unwrap() + 2..];
                !after.starts_with('Z') && after.split(' ').nth(1).and_then(|x| x.parse::<u32>().ok()) == Some(pid)
            })
        })
        .filter(|p| !std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.windows(7).any(|w| w == b"__guard")))
        .count()
}

#[test]
fn cold_starts_use_pre_started_runtimes_with_the_aws_sdk_loaded() {
    let dev = Dev::start(&example("todo"));
    // Pre-started runtimes take a moment to load the SDK; a cold start that comes earlier starts
    // its own process. Cold-start functions one after another until one gets a pre-started one.
    let paths = ["/dev/todos", "/dev/todos/x", "/dev/"];
    for path in paths {
        std::thread::sleep(Duration::from_millis(700));
        let r = dev.get(path);
        assert!(r.status == 200 || r.status == 404, "{}\n{}", r.text(), dev.output());
        if dev.wait_for_count("cold start served by a pre-started runtime", 1) > 0 {
            break;
        }
    }
    let r = dev.send("POST", "/dev/todos", &[], br#"{"text": "from a pre-started runtime"}"#);
    assert_eq!(r.status, 200, "{}\n{}", r.text(), dev.output());
    assert!(
        dev.wait_for_output("cold start served by a pre-started runtime"),
        "{}",
        dev.output()
    );
    assert!(dev.output().contains("Init Duration"), "{}", dev.output());
    assert_eq!(dev.get("/dev/todos").status, 200);
}

#[test]
fn prewarm_zero_starts_processes_only_on_demand() {
    let dev = Dev::start_with(&example("hello-node"), &["--prewarm", "0"], &[]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(children_of(dev.pid()), 0, "no process before the first request");
    assert_eq!(dev.get("/dev/hello").status, 200);
    assert!(!dev.output().contains("pre-started runtime"), "{}", dev.output());
}

#[test]
fn a_quiet_service_ends_with_no_process() {
    let dev = Dev::start_with(&example("hello-node"), &["--keep-warm", "1"], &[]);
    assert_eq!(dev.get("/dev/hello").status, 200);
    assert_eq!(dev.get("/v2/hello").status, 200);
    assert!(children_of(dev.pid()) >= 2, "instances are running");
    let deadline = Instant::now() + Duration::from_secs(15);
    while children_of(dev.pid()) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        children_of(dev.pid()),
        0,
        "idle instances and pre-started runtimes were stopped"
    );
    // And it still answers: the next request is a cold start again.
    assert_eq!(dev.get("/dev/hello").status, 200);
}

/// How many cold starts of `function` (its key) a pre-started runtime served, from the metrics.
fn prewarmed_starts(dev: &Dev, function: &str) -> f64 {
    let line = format!("sylph_starts_total{{function=\"{function}\",kind=\"prewarmed\"}}");
    metric(&dev.get("/_sylph/metrics").text(), &line)
}

#[test]
fn regression_pre_started_runtimes_vanished_five_seconds_after_start() {
    let dev = Dev::start(&example("hello-node"));
    // Quiet for longer than the first check of the pool (5 s), far less than keep-warm (300 s).
    std::thread::sleep(Duration::from_secs(10));
    assert_eq!(dev.get("/dev/hello").status, 200);
    assert_eq!(prewarmed_starts(&dev, "hello"), 1.0, "{}", dev.output());
    // A second function right after: the pool held two.
    assert_eq!(dev.get("/v2/hello").status, 200);
    assert_eq!(prewarmed_starts(&dev, "v2hello"), 1.0, "{}", dev.output());
    // The pool refills: a later function gets a pre-started runtime too.
    let later = ["callback", "context", "binary", "echo"];
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut served = false;
    for function in later.iter().cycle() {
        if served || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(1500));
        let r = dev.send(
            "POST",
            &format!("/2015-03-31/functions/{function}/invocations"),
            &[],
            b"{}",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        served = prewarmed_starts(&dev, function) >= 1.0;
    }
    assert!(
        served,
        "no later cold start was served by a pre-started runtime:\n{}",
        dev.output()
    );
}

/// The `sylph_prestarted_runtimes` gauge for `language`.
fn prestarted(dev: &Dev, language: &str) -> f64 {
    let line = format!("sylph_prestarted_runtimes{{language=\"{language}\"}}");
    metric(&dev.get("/_sylph/metrics").text(), &line)
}

#[test]
fn a_cold_start_after_a_code_reload_is_served_by_a_pre_started_runtime() {
    let dir = std::env::temp_dir().join(format!("sylph-prewarm-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: reloadwarm\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  f:\n    handler: h.f\n",
    )
    .unwrap();
    std::fs::write(dir.join("h.js"), "exports.f = async () => 'v1';\n").unwrap();
    let dev = Dev::start(&dir);
    let invoke = || {
        dev.send("POST", "/2015-03-31/functions/f/invocations", &[], b"{}")
            .text()
    };
    assert_eq!(invoke(), "\"v1\"");
    let before = prewarmed_starts(&dev, "f");
    std::fs::write(dir.join("h.js"), "exports.f = async () => 'v2';\n").unwrap();
    assert!(dev.wait_for_output("code changed"), "{}", dev.output());
    // The metrics say when a pre-started runtime is ready (bounded wait, no timing assumed).
    let deadline = Instant::now() + Duration::from_secs(30);
    while prestarted(&dev, "nodejs") < 1.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        prestarted(&dev, "nodejs") >= 1.0,
        "no pre-started runtime became ready:\n{}",
        dev.output()
    );
    assert_eq!(invoke(), "\"v2\"", "the new code");
    assert_eq!(prewarmed_starts(&dev, "f"), before + 1.0, "{}", dev.output());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn after_a_burst_of_cold_starts_the_next_burst_finds_pre_started_runtimes() {
    let dir = std::env::temp_dir().join(format!("sylph-prewarm-burst-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut yml = String::from("service: burst\nprovider:\n  runtime: nodejs20.x\n  memorySize: 256\nfunctions:\n");
    for i in 0..16 {
        yml.push_str(&format!("  f{i}:\n    handler: h.f\n"));
    }
    std::fs::write(dir.join("serverless.yml"), yml).unwrap();
    std::fs::write(dir.join("h.js"), "exports.f = async () => 'ok';\n").unwrap();
    let dev = Dev::start_with(&dir, &["--concurrency", "16"], &[]);
    let burst = |functions: std::ops::Range<usize>| {
        let handles: Vec<_> = functions
            .map(|i| {
                let base = dev.base.clone();
                std::thread::spawn(move || {
                    crate::harness::request(
                        &base,
                        "POST",
                        &format!("/2015-03-31/functions/f{i}/invocations"),
                        &[],
                        b"{}",
                    )
                    .status
                })
            })
            .collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), 200);
        }
    };
    // Eight at once: the pool of two cannot serve them all, and learns.
    burst(0..8);
    let deadline = Instant::now() + Duration::from_secs(60);
    while prestarted(&dev, "nodejs") < 8.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        prestarted(&dev, "nodejs"),
        8.0,
        "the pool grew to the burst:\n{}",
        dev.output()
    );
    // The next eight at once are all served by pre-started runtimes.
    burst(8..16);
    let served: f64 = (8..16).map(|i| prewarmed_starts(&dev, &format!("f{i}"))).sum();
    assert_eq!(served, 8.0, "{}", dev.output());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_minute_after_start_node_and_python_cold_starts_are_served_by_pre_started_runtimes() {
    let dir = std::env::temp_dir().join(format!("sylph-prewarm-minute-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: minute\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  node:\n    handler: h.f\n  python:\n    handler: h.f\n    runtime: python3.12\n",
    )
    .unwrap();
    // What such functions load in their first lines: the SDK the runtime provides.
    std::fs::write(
        dir.join("h.js"),
        "const AWS = require('aws-sdk');\nexports.f = async () => typeof AWS.DynamoDB;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("h.py"),
        "import boto3\n\ndef f(event, context):\n    return boto3.__name__\n",
    )
    .unwrap();
    let dev = Dev::start(&dir);
    // Quiet for a minute: past every periodic check of the pool, well within keep-warm.
    std::thread::sleep(Duration::from_secs(60));
    let invoke = |function: &str| {
        dev.send(
            "POST",
            &format!("/2015-03-31/functions/{function}/invocations"),
            &[],
            b"{}",
        )
        .text()
    };
    assert_eq!(invoke("node"), "\"function\"", "{}", dev.output());
    assert_eq!(prewarmed_starts(&dev, "node"), 1.0, "{}", dev.output());
    assert_eq!(invoke("python"), "\"boto3\"", "{}", dev.output());
    assert_eq!(prewarmed_starts(&dev, "python"), 1.0, "{}", dev.output());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The nice value of every process below `pid` whose command line mentions `needle`.
fn nice_of_descendants(pid: u32, needle: &str) -> Vec<i64> {
    let stats: Vec<(u32, u32, i64)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let f: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
            // After the name: state(0) ppid(1) … priority(15) nice(16).
            Some((p, f[1].parse().ok()?, f[16].parse().ok()?))
        })
        .collect();
    let mut family = vec![pid];
    let mut i = 0;
    while i < family.len() {
        let parent = family[i];
        family.extend(stats.iter().filter(|s| s.1 == parent).map(|s| s.0));
        i += 1;
    }
    stats
        .iter()
        .filter(|(p, _, _)| family[1..].contains(p))
        .filter(|(p, _, _)| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .map(|(_, _, nice)| *nice)
        .collect()
}

#[test]
fn pre_started_runtimes_load_at_the_lowest_priority_and_functions_run_at_normal_priority() {
    // Needs CAP_SYS_NICE (as root has outside a container) and cgroups, as CI has.
    let dir = std::env::temp_dir().join(format!("sylph-prewarm-nice-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: nice\nprovider:\n  runtime: python3.12\nfunctions:\n  f:\n    handler: h.f\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("h.py"),
        "import os\n\ndef f(event, context):\n    return os.getpriority(os.PRIO_PROCESS, 0)\n",
    )
    .unwrap();
    let dev = Dev::start(&dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    while prestarted(&dev, "python") < 2.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Filling the pool is background work: it must not take CPU from invocations.
    let waiting = nice_of_descendants(dev.pid(), "python.py");
    assert!(!waiting.is_empty(), "no pre-started runtime found");
    assert!(
        waiting.iter().all(|n| *n == 19),
        "pre-started runtimes at nice {waiting:?}"
    );
    // The one that becomes the function serves it at Sylph's own priority (this test's).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let own: i64 = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(16)
        .unwrap()
        .parse()
        .unwrap();
    let r = dev.send("POST", "/2015-03-31/functions/f/invocations", &[], b"{}");
    assert_eq!((r.status, r.text()), (200, own.to_string()), "{}", dev.output());
    assert_eq!(prewarmed_starts(&dev, "f"), 1.0, "{}", dev.output());
    let _ = std::fs::remove_dir_all(&dir);
}
