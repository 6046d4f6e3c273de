//! `sylph server` and the commands that deploy to it, through the real binaries: deploy,
//! restart and kill -9, versions under load, rollback, weighted aliases, keys and their
//! scopes (admin, table and Invoke APIs), bad deploys, and removal.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::harness::{example, request, Server};

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sylph-e2e-srv-{}-{name}", std::process::id()))
}

/// A one-function Node.js service answering `GET /hello` with the content of version.txt.
fn versioned_service(dir: &Path, name: &str, version: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        format!(
            "service: {name}\nprovider:\n  name: aws\n  runtime: nodejs20.x\nfunctions:\n  hello:\n    handler: handler.hello\n    events:\n      - httpApi: 'GET /hello'\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("handler.js"),
        "const v = require('fs').readFileSync(__dirname + '/version.txt', 'utf8').trim();\nmodule.exports.hello = async () => ({ statusCode: 200, body: v });\n",
    )
    .unwrap();
    std::fs::write(dir.join("version.txt"), version).unwrap();
}

fn split_key(key: &str) -> (String, String) {
    let (id, secret) = key.split_once(':').unwrap();
    (id.to_owned(), secret.to_owned())
}

/// The `aws` CLI (v1, from PyPI: `--payload` is sent as given) with `key`, against the
/// server; (success, stdout, stderr).
fn aws(server: &Server, key: &str, args: &[&str]) -> (bool, String, String) {
    let (id, secret) = split_key(key);
    let out = Command::new("aws")
        .args(args)
        .args([
            "--endpoint-url",
            &server.base,
            "--region",
            "us-east-1",
            "--output",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .expect("the aws CLI (pip install awscli)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn make_key(server: &Server, name: &str, services: &[&str]) -> String {
    let mut args = vec!["keys", "create", "--json", "--name", name];
    for s in services {
        args.extend(["--service", s]);
    }
    let (ok, stdout, stderr) = server.cli(&server.admin_key, &args);
    assert!(ok, "{stdout}{stderr}");
    let made: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    format!("{}:{}", made["id"].as_str().unwrap(), made["secret"].as_str().unwrap())
}

#[test]
fn the_todo_service_is_deployed_used_and_survives_a_restart_and_a_kill() {
    let mut server = Server::start_fresh("todo");
    let key = server.admin_key.clone();
    let info = server.deploy(&key, &example("todo").join("serverless.yml"));
    assert_eq!(info["version"], 1, "{info}");
    let api = info["api_id"].as_str().unwrap().to_owned();
    assert!(info["functions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "todo-dev-create"));

    let created = server.api(&api, "POST", "/dev/todos", br#"{"text":"outlive the server"}"#);
    assert_eq!(created.status, 200, "{}\n{}", created.text(), server.output());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    // The same API by host name, as `{api-id}.localhost`.
    let host = format!("{api}.localhost");
    let by_host = request(
        &server.base,
        "GET",
        &format!("/dev/todos/{id}"),
        &[("Host", &host)],
        b"",
    );
    assert_eq!(by_host.status, 200, "{}", by_host.text());
    assert_eq!(by_host.json()["text"], "outlive the server");
    let page = server.api(&api, "GET", "/dev/", b"");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<html"), "{}", page.text());
    // A host name under no deployed API, and a made-up API id, are not served.
    assert_eq!(
        request(
            &server.base,
            "GET",
            "/dev/todos",
            &[("Host", "nosuchapi.localhost")],
            b""
        )
        .status,
        404
    );
    assert_eq!(server.api("nosuchapi", "GET", "/dev/todos", b"").status, 404);

    // A clean restart, then a kill -9: the service, its version and its data are all there.
    let data = server.data.clone();
    server.stop();
    let mut server = Server::start(&data, Some(&key));
    assert!(
        server.output().contains("serving todo (stage dev) version 1"),
        "{}",
        server.output()
    );
    let after = server.api(&api, "GET", &format!("/dev/todos/{id}"), b"");
    assert_eq!(after.status, 200, "{}", after.text());
    assert_eq!(after.json()["text"], "outlive the server");
    let second = server.api(
        &api,
        "POST",
        "/dev/todos",
        br#"{"text":"acknowledged before the kill"}"#,
    );
    assert_eq!(second.status, 200);
    let second_id = second.json()["id"].as_str().unwrap().to_owned();
    server.kill9();
    let server = Server::start(&data, Some(&key));
    let list = server.api(&api, "GET", "/dev/todos", b"");
    assert_eq!(list.status, 200, "{}", list.text());
    let ids: Vec<String> = list
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&id) && ids.contains(&second_id), "{ids:?}");
    let (ok, stdout, _) = server.cli(&key, &["info", "--json", "--name", "todo"]);
    assert!(ok);
    let info: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(info["version"], 1);
    assert_eq!(info["api_id"], api.as_str());

    // `sylph invoke` runs a deployed function and shows its log.
    let (ok, stdout, stderr) = server.cli(&key, &["invoke", "-f", "list", "--name", "todo", "--log"]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("acknowledged before the kill"), "{stdout}");
    assert!(stderr.contains("REPORT RequestId"), "{stderr}");
    assert!(stderr.contains("Version: 1"), "{stderr}");

    // Logs: each invocation's START / END / REPORT, stored per function across the restarts,
    // searchable by text.
    let (ok, stdout, stderr) = server.cli(
        &key,
        &["logs", "-f", "create", "--name", "todo", "--json", "--startTime", "1h"],
    );
    assert!(ok, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let texts: Vec<&str> = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
    for kind in ["START RequestId", "END RequestId", "REPORT RequestId"] {
        assert_eq!(
            texts.iter().filter(|t| t.starts_with(kind)).count(),
            2,
            "two invocations of create (one before each restart): {texts:?}"
        );
    }
    let (ok, stdout, _) = server.cli(
        &key,
        &[
            "logs",
            "-f",
            "create",
            "--name",
            "todo",
            "--filter",
            "Init Duration",
            "--startTime",
            "1h",
        ],
    );
    assert!(ok);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    // Metrics since this server started: the list call and the Invoke above.
    let (ok, stdout, stderr) = server.cli(&key, &["metrics", "--name", "todo", "--json", "-f", "list"]);
    assert!(ok, "{stderr}");
    let m: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let list = &m["functions"][0];
    assert_eq!(list["function"], "list");
    assert_eq!(list["invocations"], 2, "{m}");
    assert_eq!(list["cold_starts"], 1, "{m}");
    assert!(list["p50_ms"].as_f64().unwrap() > 0.0, "{m}");
}

#[test]
fn a_deploy_under_load_fails_no_request_and_versions_roll_back_and_split_by_weight() {
    let server = Server::start_fresh("versions");
    let key = server.admin_key.clone();
    let dir = temp("versions");
    let _ = std::fs::remove_dir_all(&dir);
    versioned_service(&dir, "canary", "v1");
    let config = dir.join("serverless.yml");
    let api = server.deploy(&key, &config)["api_id"].as_str().unwrap().to_owned();
    assert_eq!(server.api(&api, "GET", "/hello", b"").text(), "v1");

    // Clients keep calling while two new versions are deployed.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, seen, base, api) = (stop.clone(), seen.clone(), server.base.clone(), api.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let r = request(&base, "GET", &format!("/apis/{api}/hello"), &[], b"");
                    seen.lock().unwrap().push((r.status, r.text()));
                }
            })
        })
        .collect();
    for v in ["v2", "v3"] {
        std::fs::write(dir.join("version.txt"), v).unwrap();
        server.deploy(&key, &config);
        // Once the deploy has answered, every new request is served by the new version.
        assert_eq!(server.api(&api, "GET", "/hello", b"").text(), v);
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    let failed: Vec<_> = seen.iter().filter(|(status, _)| *status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        seen.len()
    );
    assert!(seen.iter().any(|(_, body)| body == "v1") && seen.iter().any(|(_, body)| body == "v3"));

    // Rollback: to the version before, then to a named one.
    let (ok, out, err) = server.cli(&key, &["rollback", "--name", "canary"]);
    assert!(ok, "{out}{err}");
    assert_eq!(server.api(&api, "GET", "/hello", b"").text(), "v2");
    let (ok, out, err) = server.cli(&key, &["rollback", "--name", "canary", "--version", "1"]);
    assert!(ok, "{out}{err}");
    assert_eq!(server.api(&api, "GET", "/hello", b"").text(), "v1");
    let (ok, _, err) = server.cli(&key, &["rollback", "--name", "canary", "--version", "9"]);
    assert!(!ok && err.contains("has no version 9"), "{err}");

    // A canary: the `live` alias keeps version 3 and sends a quarter of requests to version 2.
    let (ok, out, err) = server.cli(
        &key,
        &[
            "alias",
            "set",
            "live",
            "--version",
            "3",
            "--weight",
            "2=0.25",
            "--name",
            "canary",
        ],
    );
    assert!(ok, "{out}{err}");
    let mut to_v2 = 0;
    for _ in 0..200 {
        let body = server.api(&api, "GET", "/hello", b"").text();
        assert!(body == "v2" || body == "v3", "{body}");
        to_v2 += usize::from(body == "v2");
    }
    assert!(
        (40..=60).contains(&to_v2),
        "{to_v2} of 200 requests went to version 2, not about 50"
    );
    // A deploy publishes a new version but traffic stays with the alias until it is moved.
    std::fs::write(dir.join("version.txt"), "v4").unwrap();
    let info = server.deploy(&key, &config);
    assert_eq!(info["version"], 4);
    let body = server.api(&api, "GET", "/hello", b"").text();
    assert!(body == "v2" || body == "v3", "{body}");
    let (ok, _, _) = server.cli(&key, &["alias", "set", "live", "--version", "4", "--name", "canary"]);
    assert!(ok);
    assert_eq!(server.api(&api, "GET", "/hello", b"").text(), "v4");
    // At most 10 aliases (each keeps its versions running); moving one is always possible.
    for n in 1..10 {
        let (ok, _, err) = server.cli(
            &key,
            &["alias", "set", &format!("a{n}"), "--version", "4", "--name", "canary"],
        );
        assert!(ok, "{err}");
    }
    let (ok, _, err) = server.cli(
        &key,
        &["alias", "set", "one-too-many", "--version", "4", "--name", "canary"],
    );
    assert!(!ok && err.contains("the most a service may have"), "{err}");
    let (ok, _, err) = server.cli(&key, &["alias", "set", "a1", "--version", "3", "--name", "canary"]);
    assert!(ok, "{err}");
    // Invocations name a version (one that serves or that an alias names) or an alias.
    let out_file = temp("qualified.json");
    for (qualifier, expected) in [
        ("3", "v3"),
        ("a1", "v3"),
        ("live", "v4"),
        ("$LATEST", "v4"),
        ("4", "v4"),
    ] {
        let function = format!("canary-dev-hello:{qualifier}");
        let (ok, _, err) = aws(
            &server,
            &key,
            &[
                "lambda",
                "invoke",
                "--function-name",
                &function,
                out_file.to_str().unwrap(),
            ],
        );
        assert!(ok, "{qualifier}: {err}");
        let answer: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
        assert_eq!(answer["body"], expected, "{qualifier}");
    }
    let (ok, _, err) = aws(
        &server,
        &key,
        &[
            "lambda",
            "invoke",
            "--function-name",
            "canary-dev-hello",
            "--qualifier",
            "3",
            out_file.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let answer: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(answer["body"], "v3");
    let (ok, _, err) = aws(
        &server,
        &key,
        &[
            "lambda",
            "invoke",
            "--function-name",
            "canary-dev-hello:nope",
            out_file.to_str().unwrap(),
        ],
    );
    assert!(!ok && err.contains("ResourceNotFoundException"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Python service with a table and a function that scans whatever table it is asked to,
/// with IAM statements that allow every table: only the server's scoping stops it.
fn scanning_service(dir: &Path, name: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        format!(
            r#"service: {name}
provider:
  name: aws
  runtime: python3.12
  timeout: 30
  iam:
    role:
      statements:
        - Effect: Allow
          Action: 'dynamodb:*'
          Resource: '*'
functions:
  peek:
    handler: p.peek
resources:
  Resources:
    Items:
      Type: AWS::DynamoDB::Table
      Properties:
        TableName: {name}-items
        AttributeDefinitions:
          - AttributeName: id
            AttributeType: S
        KeySchema:
          - AttributeName: id
            KeyType: HASH
        BillingMode: PAY_PER_REQUEST
"#
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("p.py"),
        "import boto3\n\ndef peek(event, context):\n    try:\n        r = boto3.client('dynamodb').scan(TableName=event['table'])\n        return {'ok': True, 'count': r['Count']}\n    except Exception as e:\n        return {'ok': False, 'error': type(e).__name__ + ': ' + str(e)}\n",
    )
    .unwrap();
}

#[test]
fn keys_are_scoped_to_services_on_the_admin_table_and_invoke_apis_and_functions_see_only_their_own_tables() {
    let server = Server::start_fresh("keys");
    let admin = server.admin_key.clone();
    let alpha_key = make_key(&server, "alpha-team", &["alpha"]);
    let beta_key = make_key(&server, "beta-team", &["beta"]);
    let (alpha_dir, beta_dir) = (temp("alpha"), temp("beta"));
    scanning_service(&alpha_dir, "alpha");
    scanning_service(&beta_dir, "beta");
    let alpha_api = server.deploy(&alpha_key, &alpha_dir.join("serverless.yml"))["api_id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.deploy(&beta_key, &beta_dir.join("serverless.yml"));

    // A key for one service cannot deploy, manage or read another.
    let (ok, _, err) = server.cli(
        &beta_key,
        &["deploy", "--config", alpha_dir.join("serverless.yml").to_str().unwrap()],
    );
    assert!(!ok && err.contains("may not deploy service alpha"), "{err}");
    let (ok, _, err) = server.cli(&beta_key, &["info", "--name", "alpha"]);
    assert!(!ok && err.contains("403"), "{err}");
    let (ok, _, err) = server.cli(&alpha_key, &["keys", "list"]);
    assert!(!ok && err.contains("not an admin key"), "{err}");

    // The table API: each key reads its own service's table only.
    let put = r#"{"id":{"S":"b1"}}"#;
    let (ok, _, err) = aws(
        &server,
        &beta_key,
        &["dynamodb", "put-item", "--table-name", "beta-items", "--item", put],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = aws(&server, &alpha_key, &["dynamodb", "scan", "--table-name", "beta-items"]);
    assert!(!ok && err.contains("AccessDeniedException"), "{err}");
    // PartiQL names its table inside the statement: the same rule holds, in a single statement,
    // in a batch beside an allowed one, and for a statement the server cannot read.
    let (ok, _, err) = aws(
        &server,
        &alpha_key,
        &[
            "dynamodb",
            "execute-statement",
            "--statement",
            r#"SELECT * FROM "beta-items""#,
        ],
    );
    assert!(!ok && err.contains("AccessDeniedException"), "{err}");
    let statements = r#"[{"Statement":"SELECT * FROM \"alpha-items\" WHERE id = 'x'"},{"Statement":"SELECT * FROM \"beta-items\" WHERE id = 'b1'"}]"#;
    let (ok, out, err) = aws(
        &server,
        &alpha_key,
        &["dynamodb", "batch-execute-statement", "--statements", statements],
    );
    assert!(
        !ok && err.contains("AccessDeniedException") && !out.contains("b1"),
        "{out}{err}"
    );
    let (ok, _, err) = aws(
        &server,
        &alpha_key,
        &["dynamodb", "execute-statement", "--statement", "SELECT * FROM"],
    );
    assert!(!ok && err.contains("AccessDeniedException"), "{err}");
    let (ok, out, err) = aws(
        &server,
        &alpha_key,
        &[
            "dynamodb",
            "execute-statement",
            "--statement",
            r#"SELECT * FROM "alpha-items""#,
        ],
    );
    assert!(ok && out.contains("\"Items\": []"), "{out}{err}");
    let (ok, out, err) = aws(
        &server,
        &alpha_key,
        &["dynamodb", "scan", "--table-name", "alpha-items"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("\"Count\": 0"), "{out}");
    // Listing tables shows a key only its services' tables; a key for every service sees all.
    let (ok, out, err) = aws(&server, &alpha_key, &["dynamodb", "list-tables"]);
    assert!(ok, "{err}");
    assert!(out.contains("alpha-items") && !out.contains("beta-items"), "{out}");
    let (ok, out, _) = aws(&server, &admin, &["dynamodb", "list-tables"]);
    assert!(ok && out.contains("alpha-items") && out.contains("beta-items"), "{out}");

    // Functions: alpha's may scan its own table; beta's table is refused although its IAM
    // statements allow `dynamodb:*` on `*`.
    let peek = |table: &str| -> serde_json::Value {
        let event = format!(r#"{{"table":"{table}"}}"#);
        let (ok, out, err) = server.cli(
            &alpha_key,
            &["invoke", "--json", "-f", "peek", "--name", "alpha", "-d", &event],
        );
        assert!(ok, "{out}{err}");
        let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
        serde_json::from_str(answer["payload"].as_str().unwrap()).unwrap()
    };
    assert_eq!(peek("alpha-items")["ok"], true);
    let refused = peek("beta-items");
    assert_eq!(refused["ok"], false, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("AccessDenied"), "{refused}");

    // The Invoke API: signed with a key allowed for the function's service only.
    let (ok, _, err) = aws(
        &server,
        &alpha_key,
        &[
            "lambda",
            "invoke",
            "--function-name",
            "beta-dev-peek",
            "--payload",
            "{}",
            "/dev/null",
        ],
    );
    assert!(!ok && err.contains("AccessDenied"), "{err}");
    let out_file = temp("invoke-out.json");
    let (ok, _, err) = aws(
        &server,
        &beta_key,
        &[
            "lambda",
            "invoke",
            "--function-name",
            "beta-dev-peek",
            "--payload",
            r#"{"table":"beta-items"}"#,
            out_file.to_str().unwrap(),
        ],
    );
    assert!(ok, "{err}");
    let answer: serde_json::Value = serde_json::from_slice(&std::fs::read(&out_file).unwrap()).unwrap();
    assert_eq!(answer["count"], 1, "{answer}");

    // Wrong secrets and unknown keys are refused everywhere.
    let (id, _) = split_key(&alpha_key);
    let wrong = format!("{id}:{}", "x".repeat(40));
    assert_eq!(server.admin(&wrong, "GET", "/_sylph/admin/services", b"").status, 401);
    assert_eq!(
        server
            .admin("SYLKNOSUCHKEY:abc", "GET", "/_sylph/admin/services", b"")
            .status,
        401
    );
    assert_eq!(
        request(&server.base, "GET", "/_sylph/admin/services", &[], b"").status,
        401
    );
    let (ok, _, err) = aws(&server, &wrong, &["dynamodb", "scan", "--table-name", "alpha-items"]);
    assert!(!ok && err.contains("InvalidSignatureException"), "{err}");
    let (ok, _, err) = aws(
        &server,
        &wrong,
        &["lambda", "invoke", "--function-name", "alpha-dev-peek", "/dev/null"],
    );
    assert!(!ok && err.contains("InvalidSignatureException"), "{err}");
    // A deployed API's public base (by path or by host name) serves its HTTP routes only:
    // never the table, Invoke or metrics APIs, which need a key.
    let host = format!("{alpha_api}.localhost");
    for (path, headers) in [
        (
            format!("/apis/{alpha_api}/"),
            vec![("X-Amz-Target", "DynamoDB_20120810.Scan")],
        ),
        (
            "/".to_owned(),
            vec![("X-Amz-Target", "DynamoDB_20120810.Scan"), ("Host", host.as_str())],
        ),
        (
            format!("/apis/{alpha_api}/2015-03-31/functions/alpha-dev-peek/invocations"),
            vec![],
        ),
        (
            "/2015-03-31/functions/alpha-dev-peek/invocations".to_owned(),
            vec![("Host", host.as_str())],
        ),
        (format!("/apis/{alpha_api}/_sylph/metrics"), vec![]),
        ("/_sylph/metrics".to_owned(), vec![("Host", host.as_str())]),
    ] {
        let r = request(
            &server.base,
            "POST",
            &path,
            &headers,
            br#"{"TableName":"alpha-items","table":"alpha-items"}"#,
        );
        let text = r.text();
        assert!(
            (r.status == 404 || r.status == 401) && !text.contains("Items") && !text.contains("sylph_"),
            "{path} {headers:?} answered {}: {text}",
            r.status
        );
    }
    // Unsigned calls get nothing.
    let unsigned = request(
        &server.base,
        "POST",
        "/",
        &[("X-Amz-Target", "DynamoDB_20120810.ListTables")],
        b"{}",
    );
    assert_eq!(unsigned.status, 400);
    assert!(
        unsigned.text().contains("MissingAuthenticationToken"),
        "{}",
        unsigned.text()
    );
    let unsigned = request(
        &server.base,
        "POST",
        "/2015-03-31/functions/alpha-dev-peek/invocations",
        &[],
        b"{}",
    );
    assert_eq!(unsigned.status, 403, "{}", unsigned.text());

    // A revoked key stops working at once, on every API.
    let (ok, out, err) = server.cli(&admin, &["keys", "revoke", &id]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        server.admin(&alpha_key, "GET", "/_sylph/admin/services", b"").status,
        401
    );
    let (ok, _, err) = aws(
        &server,
        &alpha_key,
        &["dynamodb", "scan", "--table-name", "alpha-items"],
    );
    assert!(!ok && err.contains("UnrecognizedClientException"), "{err}");
    let (ok, out, _) = server.cli(&admin, &["keys", "list"]);
    assert!(ok && out.contains("revoked"), "{out}");
    let _ = std::fs::remove_dir_all(&alpha_dir);
    let _ = std::fs::remove_dir_all(&beta_dir);
}

#[test]
fn bad_deploys_change_nothing_index_changes_apply_and_remove_cleans_up() {
    let server = Server::start_fresh("bad");
    let key = server.admin_key.clone();
    let dir = temp("bad");
    let _ = std::fs::remove_dir_all(&dir);
    scanning_service(&dir, "gamma");
    let config = dir.join("serverless.yml");
    let config_arg = config.to_str().unwrap().to_owned();
    server.deploy(&key, &config);
    let (ok, _, err) = aws(
        &server,
        &key,
        &[
            "dynamodb",
            "put-item",
            "--table-name",
            "gamma-items",
            "--item",
            r#"{"id":{"S":"kept"}}"#,
        ],
    );
    assert!(ok, "{err}");
    let version = |server: &Server| -> u64 {
        let (ok, out, err) = server.cli(&key, &["info", "--json", "--name", "gamma"]);
        assert!(ok, "{err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["version"]
            .as_u64()
            .unwrap()
    };

    // An unreachable server.
    let out = crate::harness::sylph()
        .args([
            "deploy",
            "--config",
            &config_arg,
            "--server",
            "http://127.0.0.1:9",
            "--key",
            &key,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("cannot reach the sylph server at http://127.0.0.1:9"),
        "{err}"
    );
    // A manifest error names the file and line, before anything is sent.
    let good = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        good.replace("    handler: p.peek", "    handler: p.peek\n   bad: ["),
    )
    .unwrap();
    let (ok, _, err) = server.cli(&key, &["deploy", "--config", &config_arg]);
    assert!(!ok && err.contains("serverless.yml:"), "{err}");
    // A key schema change is refused with what to do; the running version keeps its data.
    std::fs::write(&config, good.replace("AttributeName: id", "AttributeName: pk")).unwrap();
    let (ok, _, err) = server.cli(&key, &["deploy", "--config", &config_arg]);
    assert!(!ok && err.contains("key schema cannot change"), "{err}");
    assert_eq!(version(&server), 1);
    // A package over Lambda's 250 MB (a sparse file: nothing is read or sent).
    std::fs::write(&config, &good).unwrap();
    let big = std::fs::File::create(dir.join("big.bin")).unwrap();
    big.set_len(251 * 1024 * 1024).unwrap();
    let (ok, _, err) = server.cli(&key, &["deploy", "--config", &config_arg]);
    assert!(!ok && err.contains("over Lambda's limit"), "{err}");
    std::fs::remove_file(dir.join("big.bin")).unwrap();
    assert_eq!(version(&server), 1);

    // Adding a global secondary index to the manifest adds it to the table, data kept.
    let with_index = good.replace(
        "        BillingMode: PAY_PER_REQUEST\n",
        "        BillingMode: PAY_PER_REQUEST\n        GlobalSecondaryIndexes:\n          - IndexName: by-id\n            KeySchema:\n              - AttributeName: id\n                KeyType: HASH\n            Projection:\n              ProjectionType: ALL\n",
    );
    std::fs::write(&config, with_index).unwrap();
    assert_eq!(server.deploy(&key, &config)["version"], 2);
    let (ok, out, err) = aws(
        &server,
        &key,
        &["dynamodb", "describe-table", "--table-name", "gamma-items"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("by-id"), "{out}");
    assert!(out.contains("\"ItemCount\": 1"), "{out}");

    // Remove: the routes, functions and table (no Retain policy) are gone.
    let (ok, out, err) = server.cli(&key, &["remove", "--name", "gamma"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("table gamma-items deleted"), "{out}");
    let (ok, _, err) = server.cli(&key, &["info", "--name", "gamma"]);
    assert!(!ok && err.contains("not deployed"), "{err}");
    let (ok, _, err) = aws(
        &server,
        &key,
        &["lambda", "invoke", "--function-name", "gamma-dev-peek", "/dev/null"],
    );
    assert!(!ok && err.contains("ResourceNotFoundException"), "{err}");
    let (ok, _, err) = aws(
        &server,
        &key,
        &["dynamodb", "describe-table", "--table-name", "gamma-items"],
    );
    assert!(!ok && err.contains("ResourceNotFoundException"), "{err}");
    assert!(!server.data.join("code/gamma/dev").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_aws_sdks_invoke_and_read_tables_through_the_server_with_a_key() {
    let server = Server::start_fresh("sdks");
    let key = make_key(&server, "sdk-user", &["todo"]);
    let info = server.deploy(&key, &example("todo").join("serverless.yml"));
    let api = info["api_id"].as_str().unwrap().to_owned();
    let created = server.api(&api, "POST", "/dev/todos", br#"{"text":"read me through an SDK"}"#);
    assert_eq!(created.status, 200, "{}", created.text());
    // `sylph config credentials` saves the server and key (owner-only); later commands need
    // neither flag.
    let config_home = temp("config-home");
    let _ = std::fs::remove_dir_all(&config_home);
    let with_profile = |args: &[&str]| {
        crate::harness::sylph()
            .env("XDG_CONFIG_HOME", &config_home)
            .env_remove("SYLPH_SERVER")
            .env_remove("SYLPH_KEY")
            .args(args)
            .output()
            .unwrap()
    };
    let saved = with_profile(&["config", "credentials", "--server", &server.base, "--key", &key]);
    assert!(saved.status.success(), "{}", String::from_utf8_lossy(&saved.stderr));
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(config_home.join("sylph/credentials"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let info = with_profile(&["info", "--json", "--name", "todo"]);
    assert!(info.status.success(), "{}", String::from_utf8_lossy(&info.stderr));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["api_id"], api.as_str());
    let nothing = crate::harness::sylph()
        .env("XDG_CONFIG_HOME", temp("no-config"))
        .env_remove("SYLPH_SERVER")
        .args(["info", "--name", "todo"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("no server given"));
    let (id, secret) = split_key(&key);
    let sdk = crate::harness::repo_root().join("crates/cli/tests/sdk");
    let args = [server.base.as_str(), &id, &secret, "todo-dev-list", "todo-dev"];
    let node = Command::new("node")
        .arg(sdk.join("server_clients.mjs"))
        .args(args)
        .current_dir(&sdk)
        .output()
        .unwrap();
    let python = Command::new("python3")
        .arg(sdk.join("server_boto3.py"))
        .args(args)
        .output()
        .unwrap();
    for (client, out) in [("@aws-sdk v3", node), ("boto3", python)] {
        assert!(
            out.status.success(),
            "{client}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.output()
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["invoke"]["status"], 200, "{client}: {r}");
        assert_eq!(r["invoke"]["functionError"], serde_json::Value::Null, "{client}: {r}");
        assert_eq!(r["invoke"]["payload"]["statusCode"], 200, "{client}: {r}");
        assert!(r["invoke"]["payload"]["body"]
            .as_str()
            .unwrap()
            .contains("read me through an SDK"));
        assert_eq!(r["items"][0]["text"], "read me through an SDK", "{client}: {r}");
    }
}

#[test]
fn accepted_asynchronous_invocations_survive_a_kill_9() {
    let mut server = Server::start_fresh("events");
    let key = server.admin_key.clone();
    let dir = temp("events");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        r#"service: later
provider:
  name: aws
  runtime: python3.12
  timeout: 30
  environment:
    TABLE: later-items
  iam:
    role:
      statements:
        - Effect: Allow
          Action: [dynamodb:PutItem, dynamodb:GetItem]
          Resource: !GetAtt Items.Arn
functions:
  slow:
    handler: p.slow
resources:
  Resources:
    Items:
      Type: AWS::DynamoDB::Table
      Properties:
        TableName: later-items
        AttributeDefinitions:
          - AttributeName: id
            AttributeType: S
        KeySchema:
          - AttributeName: id
            KeyType: HASH
        BillingMode: PAY_PER_REQUEST
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("p.py"),
        "import os, time\nimport boto3\n\n# Waits until the test says go (an item `go` in the table), then records its event.\ndef slow(event, context):\n    db = boto3.client('dynamodb')\n    while 'Item' not in db.get_item(TableName=os.environ['TABLE'], Key={'id': {'S': 'go'}}):\n        time.sleep(0.1)\n    db.put_item(TableName=os.environ['TABLE'], Item={'id': {'S': event['id']}})\n    return {'ok': True}\n",
    )
    .unwrap();
    server.deploy(&key, &dir.join("serverless.yml"));
    // Accepted (202); they cannot finish before the test says go, after the kill.
    // Sent through the Invoke API by boto3, in one process so that they are all accepted
    // well before the first has run.
    let (id, secret) = split_key(&key);
    let script = "import sys, json, boto3\nc = boto3.client('lambda', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])\nfor i in range(4):\n    r = c.invoke(FunctionName='later-dev-slow', InvocationType='Event', Payload=json.dumps({'id': 'event-%d' % i}))\n    assert r['StatusCode'] == 202, r\n";
    let sent = Command::new("python3")
        .args(["-c", script, &server.base, &id, &secret])
        .output()
        .unwrap();
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let data = server.data.clone();
    server.kill9();
    let server = Server::start(&data, Some(&key));
    assert!(
        server
            .output()
            .contains("events: 4 asynchronous events accepted before the last stop"),
        "{}",
        server.output()
    );
    let (ok, _, err) = aws(
        &server,
        &key,
        &[
            "dynamodb",
            "put-item",
            "--table-name",
            "later-items",
            "--item",
            r#"{"id":{"S":"go"}}"#,
        ],
    );
    assert!(ok, "{err}");
    let start = std::time::Instant::now();
    loop {
        let (ok, out, err) = aws(&server, &key, &["dynamodb", "scan", "--table-name", "later-items"]);
        assert!(ok, "{err}");
        // `go` and the four events.
        if out.contains("\"Count\": 5") {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "not every event ran after the restart: {out}\n{}",
            server.output()
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_drains_requests_in_flight_and_an_upload_cut_by_a_kill_leaves_nothing() {
    let mut server = Server::start_fresh("drain");
    let key = server.admin_key.clone();
    let dir = temp("drain");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        "service: drain\nprovider:\n  name: aws\n  runtime: nodejs20.x\nfunctions:\n  slow:\n    handler: h.slow\n    events:\n      - httpApi: 'GET /slow'\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("h.js"),
        "module.exports.slow = async () => { await new Promise((r) => setTimeout(r, 1500)); return { statusCode: 200, body: 'finished' }; };\n",
    )
    .unwrap();
    let api = server.deploy(&key, &dir.join("serverless.yml"))["api_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A request is running when SIGTERM arrives: it finishes, with its answer.
    let (base, path) = (server.base.clone(), format!("/apis/{api}/slow"));
    let in_flight = std::thread::spawn(move || request(&base, "GET", &path, &[], b""));
    let line = "sylph_concurrent_executions{function=\"drain-dev-slow\"} 1";
    let start = std::time::Instant::now();
    while !server
        .admin(&key, "GET", "/_sylph/metrics", b"")
        .text()
        .lines()
        .any(|l| l == line)
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the request never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let status = server.stop();
    assert!(status.success(), "{status:?}\n{}", server.output());
    let answer = in_flight.join().unwrap();
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (200, "finished"),
        "{}",
        server.output()
    );

    // An upload cut off by a kill -9 is not kept, and the deployed service is untouched.
    let mut server = Server::start(&server.data.clone(), Some(&key));
    let hash = "ab".repeat(32);
    let authority = server.base.trim_start_matches("http://").to_owned();
    let mut upload = std::net::TcpStream::connect(&authority).unwrap();
    let head = format!(
        "PUT /_sylph/admin/blobs/{hash} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {key}\r\nContent-Length: 1000000\r\n\r\n"
    );
    use std::io::Write as _;
    upload.write_all(head.as_bytes()).unwrap();
    upload.write_all(&[7u8; 100_000]).unwrap();
    upload.flush().unwrap();
    let staged = server.data.join("uploads");
    let start = std::time::Instant::now();
    while std::fs::read_dir(&staged).unwrap().count() == 0 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "the upload never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.kill9();
    drop(upload);
    let server = Server::start(&server.data.clone(), Some(&key));
    assert_eq!(std::fs::read_dir(&staged).unwrap().count(), 0);
    let missing = server.admin(
        &key,
        "POST",
        "/_sylph/admin/blobs/missing",
        format!(r#"{{"hashes":["{hash}"]}}"#).as_bytes(),
    );
    assert_eq!(missing.json()["hashes"][0], hash.as_str());
    let (ok, out, err) = server.cli(&key, &["info", "--json", "--name", "drain"]);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap()["version"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn with_a_certificate_the_server_speaks_https_to_sylph_curl_and_the_aws_cli() {
    let dir = temp("tls");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A test CA, and a certificate for localhost and 127.0.0.1 that it signs.
    let (ca, cert, key_file) = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,DNS:*.localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=sylph test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "cert.pem",
    ]);
    let data = temp("tls-data");
    let _ = std::fs::remove_dir_all(&data);
    let server = Server::start_with(
        &data,
        None,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ],
    );
    assert!(server.base.starts_with("https://127.0.0.1:"), "{}", server.base);
    let key = server.admin_key.clone();
    // sylph trusts the certificate only when told to.
    let config = example("todo").join("serverless.yml");
    let (ok, _, err) = server.cli(&key, &["deploy", "--config", config.to_str().unwrap()]);
    assert!(!ok && err.contains("TLS with"), "{err}");
    let (ok, out, err) = server.cli(
        &key,
        &[
            "deploy",
            "--json",
            "--config",
            config.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}{err}");
    let api = serde_json::from_str::<serde_json::Value>(&out).unwrap()["api_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // curl, over HTTPS, by path.
    let curl = Command::new("curl")
        .args([
            "-sS",
            "--cacert",
            ca.to_str().unwrap(),
            "-X",
            "POST",
            "-d",
            r#"{"text":"over TLS"}"#,
        ])
        .arg(format!("{}/apis/{api}/dev/todos", server.base))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&curl.stdout).contains("over TLS"), "{curl:?}");
    // The aws CLI, signed, over HTTPS.
    let (id, secret) = split_key(&key);
    let scan = Command::new("aws")
        .args([
            "dynamodb",
            "scan",
            "--table-name",
            "todo-dev",
            "--region",
            "us-east-1",
            "--endpoint-url",
            &server.base,
        ])
        .args(["--ca-bundle", ca.to_str().unwrap()])
        .env("AWS_ACCESS_KEY_ID", id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&scan.stdout).contains("over TLS"),
        "{}",
        String::from_utf8_lossy(&scan.stderr)
    );
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"])
        .arg(server.base.replace("https://", "http://") + "/_sylph/health")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&plain.stdout), "000");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tables_kept_after_a_removal_or_made_through_the_api_cannot_be_taken_by_another_service() {
    let server = Server::start_fresh("takeover");
    let admin = server.admin_key.clone();
    let keeper_key = make_key(&server, "keeper-team", &["keeper"]);
    let thief_key = make_key(&server, "thief-team", &["thief"]);
    let service = |dir: &Path, name: &str, table: &str| {
        scanning_service(dir, name);
        let yml = std::fs::read_to_string(dir.join("serverless.yml")).unwrap();
        let yml = yml
            .replace(&format!("TableName: {name}-items"), &format!("TableName: {table}"))
            .replace(
                "      Type: AWS::DynamoDB::Table\n",
                "      Type: AWS::DynamoDB::Table\n      DeletionPolicy: Retain\n",
            );
        std::fs::write(dir.join("serverless.yml"), yml).unwrap();
        dir.join("serverless.yml")
    };
    let (keeper_dir, thief_dir) = (temp("keeper"), temp("thief"));
    let keeper = service(&keeper_dir, "keeper", "precious");
    server.deploy(&keeper_key, &keeper);
    let (ok, _, err) = aws(
        &server,
        &keeper_key,
        &[
            "dynamodb",
            "put-item",
            "--table-name",
            "precious",
            "--item",
            r#"{"id":{"S":"secret"}}"#,
        ],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = server.cli(&keeper_key, &["remove", "--name", "keeper"]);
    assert!(ok && out.contains("table precious kept"), "{out}{err}");

    // Another team declares the kept table: refused, before and after a restart.
    let thief = service(&thief_dir, "thief", "precious");
    let (ok, _, err) = server.cli(&thief_key, &["deploy", "--config", thief.to_str().unwrap()]);
    assert!(
        !ok && err.contains("table precious already belongs to service keeper"),
        "{err}"
    );
    let data = server.data.clone();
    drop(server);
    let server = Server::start(&data, Some(&admin));
    let (ok, _, err) = server.cli(&thief_key, &["deploy", "--config", thief.to_str().unwrap()]);
    assert!(!ok && err.contains("already belongs to service keeper"), "{err}");
    // Its own service takes it back, data and all.
    server.deploy(&keeper_key, &keeper);
    let (ok, out, err) = aws(&server, &keeper_key, &["dynamodb", "scan", "--table-name", "precious"]);
    assert!(ok && out.contains("secret"), "{out}{err}");

    // A table made through the table API belongs to no service: a scoped key cannot adopt it.
    let create = r#"[{"AttributeName":"id","AttributeType":"S"}]"#;
    let (ok, _, err) = aws(
        &server,
        &admin,
        &[
            "dynamodb",
            "create-table",
            "--table-name",
            "loose",
            "--attribute-definitions",
            create,
            "--key-schema",
            r#"[{"AttributeName":"id","KeyType":"HASH"}]"#,
            "--billing-mode",
            "PAY_PER_REQUEST",
        ],
    );
    assert!(ok, "{err}");
    let loose = service(&temp("thief-loose"), "thief", "loose");
    let (ok, _, err) = server.cli(&thief_key, &["deploy", "--config", loose.to_str().unwrap()]);
    assert!(!ok && err.contains("belongs to no service"), "{err}");
    for dir in [keeper_dir, thief_dir, temp("thief-loose")] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn the_rust_todo_service_is_built_packaged_and_served_by_the_server() {
    let server = Server::start_fresh("rust");
    let key = server.admin_key.clone();
    // Its own target folder, where scripts/test builds it (see todo.rs).
    let target = crate::harness::target_dir().parent().unwrap().join("todo-rust");
    let config = example("todo-rust").join("serverless.yml");
    let (ok, out, err) = server.cli_env(
        &key,
        &["deploy", "--json", "--config", config.to_str().unwrap()],
        &[("CARGO_TARGET_DIR", target.to_str().unwrap())],
    );
    assert!(ok, "{out}{err}\n{}", server.output());
    assert!(err.contains("building Rust functions"), "{err}");
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    let api = info["api_id"].as_str().unwrap();
    let created = server.api(api, "POST", "/dev/todos", br#"{"text":"from Rust"}"#);
    assert_eq!(created.status, 200, "{}\n{}", created.text(), server.output());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let got = server.api(api, "GET", &format!("/dev/todos/{id}"), b"");
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["text"], "from Rust");
    // The binary was sent once for every function that runs it, and the build folder not at all.
    let (ok, out, _) = server.cli_env(
        &key,
        &["deploy", "--config", config.to_str().unwrap()],
        &[("CARGO_TARGET_DIR", target.to_str().unwrap())],
    );
    assert!(ok && out.contains("0 of"), "{out}");
}

#[test]
fn the_java_todo_service_is_deployed_and_served_by_the_server() {
    let server = Server::start_fresh("java");
    let key = server.admin_key.clone();
    // scripts/test builds the zip beforehand; deploy builds it when it is missing or stale.
    let config = example("todo-java").join("serverless.yml");
    let info = server.deploy(&key, &config);
    let api = info["api_id"].as_str().unwrap();
    let created = server.api(api, "POST", "/dev/todos", br#"{"text":"from Java"}"#);
    assert_eq!(created.status, 200, "{}\n{}", created.text(), server.output());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let got = server.api(api, "GET", &format!("/dev/todos/{id}"), b"");
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["text"], "from Java");
}

#[test]
fn the_wasm_todo_service_is_deployed_and_served_by_the_server() {
    let server = Server::start_fresh("wasm");
    let key = server.admin_key.clone();
    // deploy builds the component with cargo (scripts/test builds it beforehand into this
    // folder) and uploads it as each function's artifact; the server runs it in wasmtime.
    let target = crate::harness::target_dir().parent().unwrap().join("todo-wasm");
    let config = example("todo-wasm").join("serverless.yml");
    let (ok, stdout, stderr) = server.cli_env(
        &key,
        &["deploy", "--json", "--config", config.to_str().unwrap()],
        &[("CARGO_TARGET_DIR", target.to_str().unwrap())],
    );
    assert!(ok, "deploy failed:\n{stdout}\n{stderr}\nserver:\n{}", server.output());
    let info: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let api = info["api_id"].as_str().unwrap();
    let created = server.api(api, "POST", "/dev/todos", br#"{"text":"from a component"}"#);
    assert_eq!(created.status, 200, "{}\n{}", created.text(), server.output());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let got = server.api(api, "GET", &format!("/dev/todos/{id}"), b"");
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["text"], "from a component");
}

#[test]
fn without_the_sandbox_functions_call_the_public_port_with_their_own_credentials() {
    let data = temp("unsandboxed-data");
    let _ = std::fs::remove_dir_all(&data);
    let server = Server::start_with(&data, None, &["--unsandboxed"]);
    let key = server.admin_key.clone();
    let api = server.deploy(&key, &example("todo").join("serverless.yml"))["api_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // create and get reach the table API on the server's own port, signed with the
    // instance's credentials (not a server key), and are checked against the role.
    let created = server.api(&api, "POST", "/dev/todos", br#"{"text":"no sandbox"}"#);
    assert_eq!(created.status, 200, "{}\n{}", created.text(), server.output());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let got = server.api(&api, "GET", &format!("/dev/todos/{id}"), b"");
    assert_eq!(got.json()["text"], "no sandbox", "{}", got.text());
    // Made-up instance credentials are still refused.
    let forged = request(
        &server.base,
        "POST",
        "/",
        &[
            ("X-Amz-Target", "DynamoDB_20120810.Scan"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=ASIAFORGEDFORGEDFORG/20261129/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00"),
        ],
        br#"{"TableName":"todo-dev"}"#,
    );
    assert!(
        forged.text().contains("UnrecognizedClientException"),
        "{}",
        forged.text()
    );
}

/// Poll `sylph logs` of one function until a line has `needle`; returns the matching lines.
fn logged(
    server: &Server,
    key: &str,
    service: &str,
    function: &str,
    needle: &str,
    limit: std::time::Duration,
) -> Vec<String> {
    let start = std::time::Instant::now();
    loop {
        let (ok, stdout, stderr) = server.cli(
            key,
            &[
                "logs",
                "-f",
                function,
                "--name",
                service,
                "--filter",
                needle,
                "--startTime",
                "1h",
            ],
        );
        assert!(ok, "{stderr}");
        let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
        if !lines.is_empty() {
            return lines;
        }
        assert!(
            start.elapsed() < limit,
            "no `{needle}` in the logs of {function}:\n{}",
            server.output()
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[test]
fn queues_schedules_and_asynchronous_dead_letters_work_on_the_server_and_keys_reach_only_their_queues() {
    let data = temp("server-events");
    let _ = std::fs::remove_dir_all(&data);
    let server = Server::start_with(&data, None, &["--async-retry-delay", "1"]);
    let admin = server.admin_key.clone();
    let fixtures = crate::harness::repo_root().join("crates/cli/tests/fixtures");
    server.deploy(&admin, &fixtures.join("queues-service/serverless.yml"));
    server.deploy(&admin, &fixtures.join("events-service/serverless.yml"));
    let queue = |name: &str| format!("{}/000000000000/{name}", server.base);

    // A message sent with the aws CLI reaches the sqs event's function.
    let (ok, _, err) = aws(
        &server,
        &admin,
        &[
            "sqs",
            "send-message",
            "--queue-url",
            &queue("qs-jobs"),
            "--message-body",
            "ok-on-the-server",
        ],
    );
    assert!(ok, "{err}");
    let lines = logged(
        &server,
        &admin,
        "qs",
        "consume",
        "CONSUMED ok-on-the-server",
        std::time::Duration::from_secs(60),
    );
    assert_eq!(lines.len(), 1, "{lines:?}");

    // A key for another service reaches none of this service's queues, and lists none.
    let other = make_key(&server, "other", &["evt"]);
    let (ok, _, err) = aws(
        &server,
        &other,
        &[
            "sqs",
            "send-message",
            "--queue-url",
            &queue("qs-jobs"),
            "--message-body",
            "intruder",
        ],
    );
    assert!(!ok && err.contains("AccessDenied"), "{err}");
    let (ok, _, err) = aws(&server, &other, &["sqs", "list-queues"]);
    assert!(!ok && err.contains("AccessDenied"), "{err}");

    // An Event invocation that keeps failing: three runs, then its event in the onError queue.
    let (ok, _, err) = aws(
        &server,
        &admin,
        &[
            "lambda",
            "invoke",
            "--function-name",
            "qs-dev-failing",
            "--invocation-type",
            "Event",
            "--payload",
            r#"{"id": "srv-1"}"#,
            "/dev/null",
        ],
    );
    assert!(ok, "{err}");
    let start = std::time::Instant::now();
    let body = loop {
        let (ok, out, err) = aws(
            &server,
            &admin,
            &[
                "sqs",
                "receive-message",
                "--queue-url",
                &queue("qs-failed-events"),
                "--message-attribute-names",
                "All",
                "--wait-time-seconds",
                "2",
            ],
        );
        assert!(ok, "{err}");
        if !out.trim().is_empty() {
            break serde_json::from_str::<serde_json::Value>(&out).unwrap();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "no dead letter:\n{}",
            server.output()
        );
    };
    let message = &body["Messages"][0];
    assert_eq!(message["Body"], r#"{"id": "srv-1"}"#);
    assert_eq!(
        message["MessageAttributes"]["ErrorMessage"]["StringValue"],
        "cannot handle srv-1"
    );
    assert_eq!(
        logged(
            &server,
            &admin,
            "qs",
            "failing",
            "FAILING",
            std::time::Duration::from_secs(5)
        )
        .len(),
        3
    );

    // Attacks from a key for another service. Its deploys may not read qs's queue through an
    // sqs event, redrive into it or send failures to it.
    let thief = make_key(&server, "thief", &["thief"]);
    let dir = temp("thief-service");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("h.js"),
        "exports.f = async (e) => console.log(JSON.stringify(e));\n",
    )
    .unwrap();
    let head = "service: thief\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  f:\n    handler: h.f\n";
    let own_queue = "resources:\n  Resources:\n    Mine:\n      Type: AWS::SQS::Queue\n      Properties:\n        QueueName: thief-q\n";
    let attacks = [
        format!("{head}    events:\n      - sqs: arn:aws:sqs:us-east-1:000000000000:qs-jobs\n"),
        format!("{head}{own_queue}        RedrivePolicy:\n          deadLetterTargetArn: arn:aws:sqs:us-east-1:000000000000:qs-jobs\n          maxReceiveCount: 1\n"),
        format!("{head}    destinations:\n      onFailure: arn:aws:sqs:us-east-1:000000000000:qs-jobs\n"),
    ];
    for manifest in &attacks {
        std::fs::write(dir.join("serverless.yml"), manifest).unwrap();
        let (ok, out, err) = server.cli(
            &thief,
            &["deploy", "--config", dir.join("serverless.yml").to_str().unwrap()],
        );
        assert!(
            !ok && err.contains("queue qs-jobs is not this service's"),
            "{manifest}\n{out}{err}"
        );
    }
    // Its own service, with a queue of its own, is fine; pointing that queue's dead letters at
    // qs's queue through the API is not.
    std::fs::write(dir.join("serverless.yml"), format!("{head}{own_queue}")).unwrap();
    server.deploy(&thief, &dir.join("serverless.yml"));
    let (ok, _, err) = aws(
        &server,
        &thief,
        &[
            "sqs",
            "set-queue-attributes",
            "--queue-url",
            &queue("thief-q"),
            "--attributes",
            r#"{"RedrivePolicy": "{\"deadLetterTargetArn\":\"arn:aws:sqs:us-east-1:000000000000:qs-jobs\",\"maxReceiveCount\":\"1\"}"}"#,
        ],
    );
    assert!(!ok && err.contains("AccessDenied"), "{err}");
    // A CreateQueue whose QueueUrl names its own queue and whose QueueName names another.
    let (id, secret) = split_key(&thief);
    let script = "import sys, json, boto3\nc = boto3.client('sqs', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])\ndef add_url(request, **kw):\n    body = json.loads(request.data)\n    body['QueueUrl'] = sys.argv[1] + '/000000000000/thief-q'\n    request.data = json.dumps(body).encode()\nc.meta.events.register('before-sign.sqs.CreateQueue', add_url)\ntry:\n    c.create_queue(QueueName='qs-victim')\n    print('created')\nexcept Exception as e:\n    print('refused', e)\n";
    let out = Command::new("python3")
        .args(["-c", script, &server.base, &id, &secret])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("refused") && said.contains("AccessDenied"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The other service's rate(1 minute) schedule ticks on the server too.
    let ticks = logged(
        &server,
        &admin,
        "evt",
        "tick",
        "Scheduled Event",
        std::time::Duration::from_secs(90),
    );
    assert!(ticks[0].contains("evt-dev-tick-schedule-1"), "{ticks:?}");
    let _ = std::fs::remove_dir_all(&data);
}
