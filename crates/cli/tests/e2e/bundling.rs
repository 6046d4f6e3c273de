//! Services that a bundler plugin builds on AWS (here serverless-esbuild, TypeScript handlers)
//! run unchanged: Sylph builds them with esbuild, maps stack traces back to the sources, and
//! builds again when a source changes.

use std::time::Duration;

use serde_json::json;

use crate::harness::{repo_root, Dev};

/// A copy of the fixture, so the test can edit its sources.
fn copy_fixture(name: &str) -> std::path::PathBuf {
    let from = repo_root().join("crates/cli/tests/fixtures/typescript-service");
    let to = std::env::temp_dir().join(format!("sylph-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&to);
    for rel in ["serverless.yml", "src/handlers/hello.ts", "src/lib/greet.ts"] {
        std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(from.join(rel), to.join(rel)).unwrap();
    }
    to
}

#[test]
fn a_typescript_service_is_built_with_esbuild_and_rebuilt_on_change() {
    let dir = copy_fixture("esbuild");
    let dev = Dev::start(&dir.join("serverless.yml"));
    let out = dev.output();
    assert!(
        out.contains("plugin serverless-esbuild: sylph builds the Node.js handlers with esbuild"),
        "{out}"
    );
    assert!(
        out.contains("plugin serverless-prune-plugin is not run by sylph"),
        "{out}"
    );
    assert!(dir.join(".esbuild/.build/src/handlers/hello.js").is_file());

    let r = dev.get("/hello?name=ada");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"message": "Hello, ada!", "flavour": "bundled"}));

    // The stack trace names the TypeScript source, not the bundle.
    let r = dev.send("POST", "/2015-03-31/functions/fail/invocations", &[], b"{}");
    assert_eq!(r.header("x-amz-function-error"), Some("Unhandled"), "{}", r.text());
    let error = r.json();
    assert_eq!(error["errorMessage"], "exploded in TypeScript");
    let trace = error["trace"].to_string();
    assert!(trace.contains("src/lib/greet.ts"), "{trace}");

    // Edit a source: the handlers are built again and new instances run the new code.
    std::fs::write(
        dir.join("src/lib/greet.ts"),
        std::fs::read_to_string(dir.join("src/lib/greet.ts"))
            .unwrap()
            .replace("Hello, ${name}!", "Welcome back, ${name}."),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = dev.get("/hello?name=ada");
        if r.status == 200 && r.json()["message"] == "Welcome back, ada." {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the change never arrived: {}",
            r.text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(dev.output().contains("rebuilding the Node.js handlers with esbuild"));

    // A build error keeps the last good code running and says why.
    std::fs::write(dir.join("src/lib/greet.ts"), "export function greet(: string {").unwrap();
    assert!(
        dev.wait_for_output("rebuild failed, keeping the running code"),
        "{}",
        dev.output()
    );
    assert_eq!(dev.get("/hello?name=ada").json()["message"], "Welcome back, ada.");
    drop(dev);
    let _ = std::fs::remove_dir_all(&dir);
}

/// serverless-plugin-typescript compiles every file and ships node_modules beside them: the
/// service's own modules are bundled, npm packages are found in node_modules at run time.
#[test]
fn serverless_plugin_typescript_services_find_their_own_modules_and_packages() {
    let dir = copy_fixture("ts-plugin");
    let manifest = std::fs::read_to_string(dir.join("serverless.yml"))
        .unwrap()
        .replace("  - serverless-esbuild\n", "  - serverless-plugin-typescript\n");
    std::fs::write(dir.join("serverless.yml"), manifest).unwrap();
    // A package in node_modules, used by the service's own module.
    let package = dir.join("node_modules/shout");
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(
        package.join("index.js"),
        "exports.shout = (s) => s.toUpperCase() + '!!';\n",
    )
    .unwrap();
    let greet = std::fs::read_to_string(dir.join("src/lib/greet.ts")).unwrap();
    let greet = format!(
        "// eslint-disable-next-line\nconst {{ shout }} = require('shout');\n{}",
        greet.replace("`Hello, ${name}!`", "shout(`Hello, ${name}`)")
    );
    std::fs::write(dir.join("src/lib/greet.ts"), greet).unwrap();
    // custom.esbuild's `define` is serverless-esbuild's, not this plugin's.
    let handler = std::fs::read_to_string(dir.join("src/handlers/hello.ts"))
        .unwrap()
        .replace("flavour: BUILD_FLAVOUR", "flavour: 'tsc'");
    std::fs::write(dir.join("src/handlers/hello.ts"), handler).unwrap();

    let dev = Dev::start(&dir.join("serverless.yml"));
    let r = dev.get("/hello?name=ada");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), dev.output());
    assert_eq!(r.json()["message"], "HELLO, ADA!!");
    let built = std::fs::read_to_string(dir.join(".esbuild/.build/src/handlers/hello.js")).unwrap();
    assert!(
        built.contains("require(\"shout\")"),
        "the package stays outside the bundle"
    );
    assert!(!built.contains("toUpperCase"), "the package stays outside the bundle");
    drop(dev);
    let _ = std::fs::remove_dir_all(&dir);
}
