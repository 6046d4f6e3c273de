//! The sandbox: a function cannot read another service's code or /etc/shadow, cannot write
//! outside its private /tmp, runs as nobody, and cannot make the system calls the seccomp
//! filter refuses.

use crate::harness::{repo_root, Dev};

#[test]
fn functions_are_isolated_from_the_host_and_each_other() {
    let dir = std::env::temp_dir().join(format!("sylph-sandbox-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: box\nprovider:\n  runtime: python3.12\nfunctions:\n  probe:\n    handler: p.probe\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("p.py"),
        r#"import ctypes, os

def attempt(f):
    try:
        f()
        return "allowed"
    except OSError as e:
        return type(e).__name__

def probe(event, context):
    out = {}
    out["uid"] = os.getuid()
    out["shadow"] = attempt(lambda: open("/etc/shadow").read())
    out["other_code"] = attempt(lambda: open(event["other"]).read())
    out["write_code"] = attempt(lambda: open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "x.txt"), "w").write("x"))
    out["write_etc"] = attempt(lambda: open("/etc/sylph-was-here", "w").write("x"))
    def tmp():
        with open("/tmp/sylph-sandbox-probe", "w") as f:
            f.write("private")
    out["write_tmp"] = attempt(tmp)
    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.unshare(0x10000000)  # CLONE_NEWUSER
    out["unshare"] = "allowed" if rc == 0 else os.strerror(ctypes.get_errno())
    out["pid"] = os.getpid()
    return out
"#,
    )
    .unwrap();
    let other = repo_root().join("examples/todo/todos/create.js");
    assert!(other.is_file());
    let dev = Dev::start(&dir);
    assert!(dev.output().contains("sandbox: bubblewrap"), "{}", dev.output());
    let event = serde_json::json!({"other": other}).to_string();
    let r = dev.send("POST", "/2015-03-31/functions/probe/invocations", &[], event.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let out = r.json();
    assert_eq!(out["uid"], 65534, "{out}");
    assert_ne!(out["shadow"], "allowed", "{out}");
    assert_eq!(
        out["other_code"], "FileNotFoundError",
        "another service's code is not there: {out}"
    );
    assert_ne!(out["write_code"], "allowed", "{out}");
    assert_ne!(out["write_etc"], "allowed", "{out}");
    assert_eq!(out["write_tmp"], "allowed", "{out}");
    assert_eq!(out["unshare"], "Operation not permitted", "{out}");
    assert!(out["pid"].as_u64().unwrap() < 10, "its own PID namespace: {out}");
    assert!(
        !std::path::Path::new("/tmp/sylph-sandbox-probe").exists(),
        "/tmp is private to the instance"
    );
    assert!(!dir.join("x.txt").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
