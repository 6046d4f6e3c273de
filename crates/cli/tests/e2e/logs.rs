//! Function logs in the formats Lambda's runtimes write: Node.js console calls as
//! `<ISO time>\t<request id>\t<LEVEL>\t<message>`, Python's root logger as
//! `[LEVEL]\t<ISO time>\t<request id>\t<message>`, `print` plain.

use crate::harness::Dev;

fn service() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sylph-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: logs\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  node:\n    handler: h.node\n  quiet:\n    handler: h.node\n    environment:\n      AWS_LAMBDA_LOG_LEVEL: WARN\n  py:\n    handler: p.py\n    runtime: python3.12\n",
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
    let ours: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f.len() == 4 && f[1] == id)
        .collect();
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
    let quiet: Vec<String> = lines_of(&dev, "quiet")
        .iter()
        .map(|l| l.split('\t').map(str::to_owned).collect::<Vec<_>>())
        .filter(|f| f.len() == 4 && f[1] == id)
        .map(|f| f[2].clone())
        .collect();
    assert_eq!(quiet, ["WARN", "ERROR", "FATAL"], "{}", dev.output());

    // Python: the root logger carries Lambda's handler, so INFO after setLevel(INFO) prints.
    let id = invoke(&dev, "py");
    assert!(dev.wait_for_output("plain"), "{}", dev.output());
    let lines = lines_of(&dev, "py");
    let logged: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|f| f.len() == 4 && f[2] == id)
        .collect();
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
    let _ = std::fs::remove_dir_all(&dir);
}
