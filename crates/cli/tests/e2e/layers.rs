//! Layers: a service's layer folders merged at /opt (a later layer's file winning), found by
//! Node.js and Python through the paths Lambda sets; a layer from elsewhere is named.

use serde_json::json;

use crate::harness::{repo_root, Dev};

#[test]
fn layers_are_mounted_at_opt_in_order() {
    check(&[]);
}

/// Without a sandbox there is no /opt: the layer folders are used where they are.
#[test]
fn layers_work_unsandboxed_too() {
    check(&["--unsandboxed"]);
}

fn check(args: &[&str]) {
    let config = repo_root().join("crates/cli/tests/fixtures/layer-service/serverless.yml");
    let dev = Dev::start_with(&config, args, &[]);
    let sandboxed = dev.output().contains("sandbox: bubblewrap");
    assert!(
        dev.output()
            .contains("layer arn:aws:lambda:us-east-1:123456789012:layer:someone-elses:4 belongs to no service here"),
        "{}",
        dev.output()
    );
    let out = dev.invoke_ok("node", &json!({}));
    assert_eq!(out["greeting"], "hello from the shared layer", "{out}");
    assert_eq!(out["version"], "override", "{out}");
    assert_eq!(out["opt"], sandboxed, "{out}");
    let out = dev.invoke_ok("python", &json!({}));
    assert_eq!(out, json!({"util": "python layer module"}));
    // Without the layer, the module is not there.
    let out = dev.invoke_ok("elsewhere", &json!({}));
    assert_eq!(out, json!({"missing": "MODULE_NOT_FOUND"}));
}
