//! SIGTERM leaves no function process behind.

use std::time::{Duration, Instant};

use crate::harness::{example, Dev};

/// Processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // The fields after the command name (which may hold spaces) start after the last ')'.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            out.push(child);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[test]
fn sigterm_leaves_no_child_process_behind() {
    let mut dev = Dev::start(&example("hello-node"));
    assert_eq!(dev.get("/dev/hello").status, 200);
    assert_eq!(dev.get("/v2/hello").status, 200);
    let children = children_of(dev.pid());
    assert!(children.len() >= 2, "expected warm instances, found {children:?}");
    let status = dev.stop();
    assert!(status.success(), "{status:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while children.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<u32> = children.into_iter().filter(|p| alive(*p)).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// Processes whose command line mentions `needle` (a folder unique to one test).
fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && alive(pid) {
            out.push((pid, cmdline));
        }
    }
    out
}

/// The control-group folders a Sylph with this pid made (`sylph-<pid>`), in any hierarchy.
fn groups_of(pid: u32) -> Vec<std::path::PathBuf> {
    let name = format!("sylph-{pid}");
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) && !e.file_type().is_ok_and(|t| t.is_symlink()) {
                if e.file_name().to_string_lossy() == name {
                    out.push(e.path());
                } else if !e.file_name().to_string_lossy().starts_with("sylph-") && dir.components().count() < 9 {
                    stack.push(e.path());
                }
            }
        }
    }
    out
}

/// Wait (bounded) until nothing of the run of `pid` in `dir` is left; what is left otherwise.
fn leftovers(pid: u32, dir: &str) -> (Vec<(u32, String)>, Vec<std::path::PathBuf>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (procs, groups) = (processes_mentioning(dir), groups_of(pid));
        if (procs.is_empty() && groups.is_empty()) || Instant::now() > deadline {
            return (procs, groups);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Node.js and a Python function behind a folder name unique to this test.
fn service(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sylph-stop-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: stop\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  node:\n    handler: h.node\n  py:\n    handler: p.py\n    runtime: python3.12\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("h.js"),
        "exports.node = async () => { await new Promise(r => setTimeout(r, 300)); return 'n'; };\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("p.py"),
        "import time\n\ndef py(event, context):\n    time.sleep(0.3)\n    return 'p'\n",
    )
    .unwrap();
    dir
}

#[test]
fn a_stop_at_any_point_of_start_up_or_under_load_leaves_nothing_behind() {
    let dir = service("any-point");
    let needle = dir.to_string_lossy().into_owned();
    // SIGTERM and kill -9, from the first milliseconds (pre-started runtimes being spawned)
    // to invocations in flight (instances starting).
    for signal in [15, 9] {
        for delay_ms in [0u64, 30, 80, 150, 300, 700, 1500] {
            let mut child = crate::harness::sylph()
                .args(["dev", "--port", "0", "--prewarm", "2", "--config"])
                .arg(dir.join("serverless.yml"))
                .arg("--data-dir")
                .arg(dir.join(format!("data-{signal}-{delay_ms}")))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let pid = child.id();
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        let _ = tx.send(url.to_owned());
                    }
                }
            });
            let mut load = Vec::new();
            if delay_ms >= 700 {
                // Under load: cold starts of both languages in flight when the signal comes.
                if let Ok(base) = rx.recv_timeout(Duration::from_secs(30)) {
                    for function in ["node", "py", "node", "py"] {
                        let base = base.clone();
                        load.push(std::thread::spawn(move || {
                            let _ = std::panic::catch_unwind(|| {
                                crate::harness::request(
                                    &base,
                                    "POST",
                                    &format!("/2015-03-31/functions/{function}/invocations"),
                                    &[],
                                    b"{}",
                                )
                            });
                        }));
                    }
                    std::thread::sleep(Duration::from_millis(delay_ms - 600));
                }
            } else {
                std::thread::sleep(Duration::from_millis(delay_ms));
            }
            // SAFETY: signalling the child this test started.
            unsafe {
                kill(pid as i32, signal);
            }
            let _ = child.wait();
            for l in load {
                let _ = l.join();
            }
            let (procs, groups) = leftovers(pid, &needle);
            assert!(
                procs.is_empty() && groups.is_empty(),
                "signal {signal} after {delay_ms} ms left processes {procs:?} and groups {groups:?}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn a_new_start_removes_the_groups_a_killed_run_left() {
    // A Sylph that is gone (its guard gone too) left a group with an instance group inside.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let mut made = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        if controllers.split(',').any(|c| c == "pids" || c == "memory") {
            let name = controllers.split(',').find(|c| *c == "pids" || *c == "memory").unwrap();
            let base = std::path::Path::new("/sys/fs/cgroup")
                .join(name)
                .join(path.trim_start_matches('/'));
            let stale = base.join(format!("sylph-{dead}"));
            if std::fs::create_dir_all(stale.join("i0")).is_ok() {
                made.push(stale);
            }
        }
    }
    assert!(!made.is_empty(), "no writable cgroup hierarchy to test with");
    let dev = Dev::start(&example("hello-node"));
    for stale in &made {
        assert!(!stale.exists(), "{} is still there:\n{}", stale.display(), dev.output());
    }
    assert!(
        dev.output().contains(&format!("cleaned up after sylph {dead}")),
        "a log line says what was cleaned: {}",
        dev.output()
    );
}
