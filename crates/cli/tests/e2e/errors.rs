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

/// Events Sylph does not run yet are named at start, and an SDK call to an AWS service it does
/// not serve (from a function, or a tool on the port) gets an error naming that service, not a
/// 404.
#[test]
fn unserved_events_and_aws_services_are_named_not_silent() {
    let dir = std::env::temp_dir().join(format!("sylph-unserved-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: unserved\nprovider:\n  runtime: python3.12\n  timeout: 30\nfunctions:\n  nightly:\n    handler: p.nightly\n    events:\n      - sns: alerts\n      - s3: uploads\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("p.py"),
        "import boto3\n\ndef nightly(event, context):\n    try:\n        boto3.client('sns').list_topics()\n        return 'no error'\n    except Exception as e:\n        return str(e)\n",
    )
    .unwrap();
    let dev = Dev::start(&dir.join("serverless.yml"));
    let out = dev.output();
    assert!(
        out.contains("functions.nightly.events[0]: `sns` events are not run by sylph yet"),
        "{out}"
    );
    assert!(out.contains("functions.nightly.events[1]: `s3` events"), "{out}");
    // From inside a function, with the SDK Sylph provides.
    let said = dev.invoke_ok("nightly", &json!({}));
    let said = said.as_str().unwrap_or_default();
    assert!(said.contains("does not serve the AWS service `sns`"), "{said}");
    // From a tool on the port (the aws CLI, signed for SNS).
    let cli = std::process::Command::new("aws")
        .args([
            "sns",
            "list-topics",
            "--region",
            "us-east-1",
            "--endpoint-url",
            &dev.base,
        ])
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("the aws CLI");
    let err = String::from_utf8_lossy(&cli.stderr);
    assert!(!cli.status.success() && err.contains("sns"), "{err}");
    assert!(!err.contains("404"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lambda's Node.js runtimes provide the v3 SDK's clients: a function requiring one (here SNS,
/// which Sylph does not serve) loads it, and its call gets an error naming the service.
#[test]
fn v3_sdk_clients_load_and_unserved_services_are_named() {
    let dir = std::env::temp_dir().join(format!("sylph-v3-clients-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: clients\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  f:\n    handler: h.f\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("h.js"),
        "const { SNSClient, ListTopicsCommand } = require('@aws-sdk/client-sns');\nrequire('@aws-sdk/client-s3');\nrequire('@aws-sdk/client-ssm');\nexports.f = async () => {\n  try {\n    await new SNSClient({}).send(new ListTopicsCommand({}));\n    return 'no error';\n  } catch (e) {\n    return String(e.message);\n  }\n};\n",
    )
    .unwrap();
    let dev = Dev::start(&dir.join("serverless.yml"));
    let said = dev.invoke_ok("f", &json!({}));
    assert!(
        said.as_str()
            .unwrap_or_default()
            .contains("does not serve the AWS service `sns`"),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
