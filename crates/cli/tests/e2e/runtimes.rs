//! Python under Sylph's bootstrap, Python under the official `awslambdaric`, and a Rust
//! function built with the official `lambda_runtime` crate.

use serde_json::json;

use crate::harness::{example, target_dir, Dev};

#[test]
fn python_functions_and_the_official_python_runtime_client() {
    let dev = Dev::start_with(&example("hello-python"), &[], &[("GREETING", "Hi")]);

    let r = dev.get("/dev/hello?name=py");
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["message"], "Hi, py!");
    assert_eq!(body["function"], "hello-python-dev-hello");
    assert_eq!(body["runtime"], "AWS_Lambda_python3.12");
    assert_eq!(body["version"], "1.0");

    let r = dev.get("/dev/items/x1");
    assert_eq!(r.json(), json!({"id": "x1", "path": "/items/x1"}));

    let r = dev.get("/dev/fail");
    assert_eq!(r.status, 502);
    assert!(dev.wait_for_output("ValueError: python says no"), "{}", dev.output());

    // The same handler under PyPI awslambdaric, unchanged, as a provided.al2023 function.
    let r = dev.get("/ric?name=ric");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), dev.output());
    let body = r.json();
    assert_eq!(body["message"], "Hi, ric!");
    assert_eq!(body["function"], "hello-python-dev-ric");
    assert_eq!(body["version"], "2.0");
}

#[test]
fn rust_function_built_with_lambda_runtime() {
    let bootstrap = target_dir().join("bootstrap");
    assert!(
        bootstrap.is_file(),
        "{} is missing: build it with `cargo build -p hello-rust` (scripts/test does)",
        bootstrap.display()
    );
    let dev = Dev::start_with(
        &example("hello-rust"),
        &[],
        &[("HELLO_RUST_BOOTSTRAP", bootstrap.to_str().unwrap())],
    );
    let r = dev.get("/hello?name=crab");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), dev.output());
    let body = r.json();
    assert_eq!(body["message"], "Hello, crab!");
    assert_eq!(body["route"], "GET /hello");
    assert_eq!(body["memory"], 128);
    assert_eq!(
        body["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:hello-rust-dev-hello"
    );
    assert_eq!(body["requestId"].as_str().unwrap().len(), 36);

    let r = dev.get("/hello?name=error");
    assert_eq!(r.status, 502);
}

/// Older runtimes (6 of 12 public projects named one) run on the closest interpreter, and the
/// start says so.
#[test]
fn older_runtimes_run_on_the_closest_interpreter_and_say_so() {
    let dir = std::env::temp_dir().join(format!("sylph-old-runtimes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: oldrt\nprovider:\n  runtime: nodejs14.x\nfunctions:\n  node:\n    handler: h.a\n  py:\n    handler: p.b\n    runtime: python3.8\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("h.js"),
        "exports.a = async () => ({ node: process.version });\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("p.py"),
        "import sys\ndef b(e, c):\n    return {'python': sys.version.split()[0]}\n",
    )
    .unwrap();
    let dev = crate::harness::Dev::start(&dir.join("serverless.yml"));
    let out = dev.output();
    assert!(
        out.contains("runtime: nodejs14.x on Node.js v") && out.contains("no exact interpreter for nodejs14.x here"),
        "{out}"
    );
    assert!(out.contains("runtime: python3.8 on Python 3."), "{out}");
    assert!(dev.invoke_ok("node", &serde_json::json!({}))["node"]
        .as_str()
        .unwrap()
        .starts_with('v'));
    assert!(dev.invoke_ok("py", &serde_json::json!({}))["python"]
        .as_str()
        .unwrap()
        .starts_with("3."));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An interpreter of exactly a runtime's version, where pyenv and nvm install them, serves
/// that runtime (here fake versions 3.39 and 39: scripts that run this machine's own
/// interpreters and mark what they run, so the test does not depend on what is installed);
/// other ids keep the default interpreter.
#[test]
fn an_installed_interpreter_of_the_exact_version_serves_its_runtime() {
    let dir = std::env::temp_dir().join(format!("sylph-exact-runtimes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let real = |program: &str, probe: &[&str]| {
        let out = std::process::Command::new(program).args(probe).output().unwrap();
        std::path::PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    };
    let python = real("python3", &["-c", "import sys; print(sys.executable)"]);
    let node = real("node", &["-e", "process.stdout.write(process.execPath)"]);
    let fake_python = dir.join("pyenv/versions/3.39.0/bin/python3.39");
    let fake_node = dir.join("nvm/versions/node/v39.0.0/bin/node");
    for (fake, real) in [(&fake_python, &python), (&fake_node, &node)] {
        std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
        let script = format!(
            "#!/bin/sh\nSYLPH_TEST_INTERPRETER=exact exec {} \"$@\"\n",
            real.display()
        );
        std::fs::write(fake, script).unwrap();
        std::fs::set_permissions(fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let service = dir.join("svc");
    std::fs::create_dir_all(&service).unwrap();
    std::fs::write(
        service.join("serverless.yml"),
        "service: exact\nprovider:\n  runtime: python3.39\nfunctions:\n  py:\n    handler: p.b\n  node:\n    handler: h.a\n    runtime: nodejs39.x\n  other:\n    handler: p.b\n    runtime: python3.38\n",
    )
    .unwrap();
    std::fs::write(
        service.join("p.py"),
        "import os\ndef b(e, c):\n    return {'interpreter': os.environ.get('SYLPH_TEST_INTERPRETER', 'default')}\n",
    )
    .unwrap();
    std::fs::write(
        service.join("h.js"),
        "exports.a = async () => ({ interpreter: process.env.SYLPH_TEST_INTERPRETER || 'default' });\n",
    )
    .unwrap();
    let env = [
        ("PYENV_ROOT", dir.join("pyenv").to_string_lossy().into_owned()),
        ("NVM_DIR", dir.join("nvm").to_string_lossy().into_owned()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dev = crate::harness::Dev::start_with(&service.join("serverless.yml"), &[], &env);
    let out = dev.output();
    assert!(
        out.contains(&format!("runtime: python3.39 on Python 3.")) && out.contains(&fake_python.display().to_string()),
        "{out}"
    );
    assert!(out.contains(&format!("({})", fake_node.display())), "{out}");
    assert!(out.contains("no exact interpreter for python3.38 here"), "{out}");
    let interpreter = |f: &str| dev.invoke_ok(f, &serde_json::json!({}))["interpreter"].clone();
    assert_eq!(interpreter("py"), "exact");
    assert_eq!(interpreter("node"), "exact");
    assert_eq!(interpreter("other"), "default");
    drop(dev);
    let _ = std::fs::remove_dir_all(&dir);
}
