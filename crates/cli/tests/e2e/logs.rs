//! Function logs in the formats Lambda's runtimes write: Node.js console calls as
//! `<ISO time>\t<request id>\t<LEVEL>\t<message>`, Python's root logger as
//! `[LEVEL]\t<ISO time>\t<request id>\t<message>`, `print` plain.

use serde_json::json;

use crate::harness::Dev;

fn service() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sylph-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: logs\nprovider:\n  runtime: nodejs20.x\n  logs:\n    lambda:\n      applicationLogLevel: DEBUG\nfunctions:\n  node:\n    handler: h.node\n  quiet:\n    handler: h.node\n    environment:\n      AWS_LAMBDA_LOG_LEVEL: WARN\n  py:\n    handler: p.py\n    runtime: python3.12\n  nodejson:\n    handler: h.json\n    logs:\n      logFormat: JSON\n  pyjson:\n    handler: pj.handler\n    runtime: python3.12\n    logs:\n      logFormat: JSON\n      systemLogLevel: WARN\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("h.js"),
        "console.log('loaded %s', 'module');\n\
         exports.node = async (event) => {\n\
           console.log('log %s %d', 'a', 1);\n\
           console.info('info');\n\
           console.warn('warn');\n\
           console.error('error');\n\
           console.debug('debug');\n\
           console.trace('trace');\n\
           console.fatal('fatal');\n\
           console.log('two\\nlines');\n\
           return 'ok';\n\
         };\n\
         exports.json = async () => {\n\
           console.log('n=%d', 3);\n\
           console.debug('debugging');\n\
           console.trace('hidden');\n\
           console.error(new Error('boom'));\n\
           console.info({ order: 7 });\n\
           return 'ok';\n\
         };\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("p.py"),
        "import logging\n\
         logger = logging.getLogger()\n\
         logger.setLevel(logging.INFO)\n\
         \n\
         def py(event, context):\n\
         \x20   logger.info('info %s', 'x')\n\
         \x20   logger.debug('hidden')\n\
         \x20   logger.warning('careful')\n\
         \x20   print('plain')\n\
         \x20   return 'ok'\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pj.py"),
        "import logging\n\
         logger = logging.getLogger()\n\
         \n\
         def handler(event, context):\n\
         \x20   logger.debug('dbg')\n\
         \x20   logger.info('hi %s', 'there', extra={'order': 7})\n\
         \x20   try:\n\
         \x20       1 / 0\n\
         \x20   except ZeroDivisionError:\n\
         \x20       logger.exception('failed')\n\
         \x20   return 'ok'\n",
    )
    .unwrap();
    dir
}

/// The request id of an Invoke API call, and its status.
fn invoke(dev: &Dev, function: &str) -> String {
    let r = dev.send(
        "POST",
        &format!("/2015-03-31/functions/{function}/invocations"),
        &[],
        b"{}",
    );
    assert_eq!(r.status, 200, "{}\n{}", r.text(), dev.output());
    r.header("x-amzn-requestid").unwrap().to_owned()
}

/// The function's lines in sylph's output (its `[function] ` tag taken off).
fn lines_of(dev: &Dev, function: &str) -> Vec<String> {
    let tag = format!("[{function}] ");
    dev.output()
        .lines()
        .filter_map(|l| l.strip_prefix(&tag).map(str::to_owned))
        .collect()
}

/// The lines of Lambda's text format (four tab-separated fields) whose field `id_at` is the
/// request id `id`, split into their fields.
fn text_lines<'a>(lines: &'a [String], id_at: usize, id: &str) -> Vec<Vec<&'a str>> {
    lines
        .iter()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f.len() == 4 && f[id_at] == id)
        .collect()
}

/// `2026-11-29T20:00:00.123Z`: ISO 8601 in UTC with milliseconds.
fn is_iso_millis(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 24
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[23] == b'Z'
        && t[..4].parse::<u32>().is_ok()
        && t[20..23].parse::<u32>().is_ok()
}

#[test]
fn console_and_logging_lines_are_written_as_lambda_writes_them() {
    let dir = service();
    let dev = Dev::start_with(&dir, &["--prewarm", "0"], &[]);

    let id = invoke(&dev, "node");
    assert!(dev.wait_for_output("\tFATAL\tfatal"), "{}", dev.output());
    let lines = lines_of(&dev, "node");
    let ours = text_lines(&lines, 1, &id);
    for f in &ours {
        assert!(is_iso_millis(f[0]), "{f:?}");
    }
    let levels: Vec<(&str, &str)> = ours.iter().map(|f| (f[2], f[3])).collect();
    assert_eq!(
        levels,
        [
            ("INFO", "log a 1"),
            ("INFO", "info"),
            ("WARN", "warn"),
            ("ERROR", "error"),
            ("DEBUG", "debug"),
            ("TRACE", "trace"),
            ("FATAL", "fatal"),
            // One call is one line: its newlines are written as \r (shown indented here).
            ("INFO", "two"),
        ],
        "{}",
        dev.output()
    );
    // Before the first invocation there is no request id: Lambda prints `undefined`.
    // (Sylph tags it with the invocation it arrived during: the first, which loaded the module.)
    let loaded = lines
        .iter()
        .find_map(|l| l.strip_suffix("\tundefined\tINFO\tloaded module"))
        .unwrap_or_else(|| panic!("{}", dev.output()));
    assert!(is_iso_millis(&loaded[loaded.len().saturating_sub(24)..]), "{loaded}");

    // AWS_LAMBDA_LOG_LEVEL=WARN drops the levels below it; fatal is never dropped.
    let id = invoke(&dev, "quiet");
    assert!(dev.wait_for_output(&format!("{id}\tFATAL\tfatal")), "{}", dev.output());
    let quiet_lines = lines_of(&dev, "quiet");
    let quiet: Vec<&str> = text_lines(&quiet_lines, 1, &id).iter().map(|f| f[2]).collect();
    assert_eq!(quiet, ["WARN", "ERROR", "FATAL"], "{}", dev.output());

    // Python: the root logger carries Lambda's handler, so INFO after setLevel(INFO) prints.
    let id = invoke(&dev, "py");
    assert!(dev.wait_for_output("plain"), "{}", dev.output());
    let lines = lines_of(&dev, "py");
    let logged = text_lines(&lines, 2, &id);
    for f in &logged {
        assert!(is_iso_millis(f[1]), "{f:?}");
    }
    let levels: Vec<(&str, &str)> = logged.iter().map(|f| (f[0], f[3])).collect();
    assert_eq!(
        levels,
        [("[INFO]", "info x"), ("[WARNING]", "careful")],
        "{}",
        dev.output()
    );
    assert!(
        // Plain: nothing added, so Sylph's terminal tags it with the request id itself.
        lines.iter().any(|l| *l == format!("[{id}] plain")),
        "print stays plain: {}",
        dev.output()
    );

    // `logs: {logFormat: JSON}` (the level from `provider.logs.lambda`, merged per key): JSON
    // records, in Lambda's key order.
    let id = invoke(&dev, "nodejson");
    assert!(dev.wait_for_output("\"order\":7"), "{}", dev.output());
    let lines = lines_of(&dev, "nodejson");
    let records: Vec<&String> = lines.iter().filter(|l| l.starts_with("{\"timestamp\"")).collect();
    let prefix = |level: &str| format!("\",\"level\":\"{level}\",\"requestId\":\"{id}\",\"message\":");
    assert_eq!(records.len(), 4, "DEBUG kept, TRACE dropped: {records:?}");
    assert!(
        records.iter().all(|r| r.starts_with("{\"timestamp\":\"")),
        "{records:?}"
    );
    assert!(
        records[0].ends_with(&format!("{}\"n=3\"}}", prefix("INFO"))),
        "{records:?}"
    );
    assert!(
        records[1].ends_with(&format!("{}\"debugging\"}}", prefix("DEBUG"))),
        "{records:?}"
    );
    assert!(records[2].contains(&prefix("ERROR")), "{records:?}");
    let error: serde_json::Value = serde_json::from_str(records[2]).unwrap();
    assert_eq!(error["message"]["errorType"], "Error");
    assert_eq!(error["message"]["errorMessage"], "boom");
    assert!(error["message"]["stackTrace"][0]
        .as_str()
        .unwrap()
        .starts_with("Error: boom"));
    assert!(
        records[3].ends_with(&format!("{}{{\"order\":7}}}}", prefix("INFO"))),
        "{records:?}"
    );
    let timestamp = error["timestamp"].as_str().unwrap();
    assert!(is_iso_millis(timestamp), "{timestamp}");
    // The platform's lines are JSON records too: platform.start and platform.report, no END.
    let platform: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| l.starts_with("{\"time\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(platform.len(), 2, "{}", dev.output());
    assert_eq!(platform[0]["type"], "platform.start");
    assert_eq!(platform[0]["record"]["requestId"], json!(id));
    assert_eq!(platform[0]["record"]["version"], "$LATEST");
    assert!(platform[0]["record"]["functionArn"]
        .as_str()
        .unwrap()
        .ends_with(":function:logs-dev-nodejson"));
    assert_eq!(platform[1]["type"], "platform.report");
    assert_eq!(platform[1]["record"]["status"], "success");
    let metrics = &platform[1]["record"]["metrics"];
    assert!(metrics["durationMs"].as_f64().is_some() && metrics["billedDurationMs"].as_u64().is_some());
    assert_eq!(metrics["memorySizeMB"], 1024);
    assert!(metrics["initDurationMs"].as_f64().is_some(), "a cold start: {metrics}");
    assert!(is_iso_millis(platform[1]["time"].as_str().unwrap()));
    assert!(!dev.output().contains("[nodejson] END"), "{}", dev.output());

    let id = invoke(&dev, "pyjson");
    assert!(dev.wait_for_output("\"failed\""), "{}", dev.output());
    let lines = lines_of(&dev, "pyjson");
    let records: Vec<serde_json::Value> = lines
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // systemLogLevel WARN: no platform line at all.
    assert!(
        lines
            .iter()
            .all(|l| !l.starts_with("{\"time\"") && !l.starts_with("START") && !l.starts_with("REPORT")),
        "{}",
        dev.output()
    );
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(
        (
            &records[0]["level"],
            &records[0]["message"],
            &records[0]["logger"],
            &records[0]["requestId"]
        ),
        (&json!("DEBUG"), &json!("dbg"), &json!("root"), &json!(id))
    );
    assert_eq!(
        (&records[1]["message"], &records[1]["order"]),
        (&json!("hi there"), &json!(7))
    );
    assert_eq!(records[2]["errorType"], "ZeroDivisionError");
    assert_eq!(records[2]["errorMessage"], "division by zero");
    assert!(
        records[2]["stackTrace"].as_array().is_some_and(|t| !t.is_empty()),
        "{records:?}"
    );
    // Python's records have second precision: `2026-11-29T20:00:00Z`.
    let t = records[0]["timestamp"].as_str().unwrap();
    assert!(t.len() == 20 && t.ends_with('Z') && &t[10..11] == "T", "{t}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_official_python_client_writes_its_json_records_under_the_json_log_format() {
    let dir = std::env::temp_dir().join(format!("sylph-logs-ric-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: ric\nprovider:\n  runtime: provided.al2023\n  logs:\n    lambda:\n      logFormat: JSON\nfunctions:\n  f:\n    handler: h.handler\n    package:\n      artifact: bootstrap\n",
    )
    .unwrap();
    let bootstrap = dir.join("bootstrap");
    std::fs::write(&bootstrap, "#!/bin/sh\nexec python3 -m awslambdaric \"$_HANDLER\"\n").unwrap();
    std::fs::set_permissions(&bootstrap, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.join("h.py"),
        "import logging\n\ndef handler(event, context):\n    logging.getLogger().info('from the official client')\n    return 'ok'\n",
    )
    .unwrap();
    let dev = Dev::start_with(&dir, &["--prewarm", "0"], &[]);
    let id = invoke(&dev, "f");
    assert!(dev.wait_for_output("from the official client"), "{}", dev.output());
    // awslambdaric read AWS_LAMBDA_LOG_FORMAT=JSON and AWS_LAMBDA_LOG_LEVEL=INFO (the default
    // level that comes with the JSON format), as Lambda gives them.
    let record: serde_json::Value = lines_of(&dev, "f")
        .iter()
        .find(|l| l.contains("from the official client"))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON record: {}", dev.output()));
    assert_eq!(record["level"], "INFO", "{record}");
    assert_eq!(record["requestId"], json!(id), "{record}");
    assert_eq!(record["logger"], "root", "{record}");
    let _ = std::fs::remove_dir_all(&dir);
}
