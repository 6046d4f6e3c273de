//! Every call a function makes into Sylph carries its own identity, and the service's IAM
//! statements decide, as on AWS: attacks with the real SDK (boto3) from inside a function —
//! calls outside the grants, another function's or made-up credentials, unsigned requests —
//! and the grants that must keep working.

use crate::harness::Dev;

const PROBE: &str = r##"import json, os, urllib.request
import boto3, botocore

def attempt(out, name, f):
    try:
        f()
        out[name] = "ok"
    except botocore.exceptions.ClientError as e:
        out[name] = e.response["Error"]["Code"]
        out[name + "_message"] = e.response["Error"]["Message"]

def probe(event, context):
    ddb = boto3.client("dynamodb")
    out = {}
    attempt(out, "put", lambda: ddb.put_item(TableName="granted", Item={"id": {"S": "a"}}))
    attempt(out, "get", lambda: ddb.get_item(TableName="granted", Key={"id": {"S": "a"}}))
    attempt(out, "scan", lambda: ddb.scan(TableName="granted"))
    attempt(out, "scan_other", lambda: ddb.scan(TableName="other"))
    attempt(out, "partiql_select", lambda: ddb.execute_statement(Statement='SELECT * FROM "granted"'))
    attempt(out, "delete_table", lambda: ddb.delete_table(TableName="granted"))
    attempt(out, "invoke_other", lambda: boto3.client("lambda").invoke(FunctionName="other"))
    attempt(out, "invoke_granted", lambda: boto3.client("lambda").invoke(FunctionName="other", InvocationType="DryRun"))
    forged = boto3.client("dynamodb", aws_access_key_id="ASIAFORGEDFORGED0000",
                          aws_secret_access_key="made-up", aws_session_token="made-up")
    attempt(out, "forged", lambda: forged.get_item(TableName="granted", Key={"id": {"S": "a"}}))
    # Credentials of another instance, as if leaked to this one.
    stolen = event.get("stolen")
    if stolen:
        thief = boto3.client("dynamodb", aws_access_key_id=stolen["key"],
                             aws_secret_access_key=stolen["secret"], aws_session_token=stolen["token"])
        attempt(out, "stolen", lambda: thief.get_item(TableName="granted", Key={"id": {"S": "a"}}))
    req = urllib.request.Request(os.environ["AWS_ENDPOINT_URL"], data=json.dumps({"TableName": "granted"}).encode(),
                                 headers={"X-Amz-Target": "DynamoDB_20120810.Scan", "Content-Type": "application/x-amz-json-1.0"})
    try:
        urllib.request.urlopen(req)
        out["unsigned"] = "ok"
    except urllib.error.HTTPError as e:
        out["unsigned"] = json.loads(e.read())["__type"].split("#")[-1]
    return out

def credentials(event, context):
    return {"key": os.environ["AWS_ACCESS_KEY_ID"], "secret": os.environ["AWS_SECRET_ACCESS_KEY"],
            "token": os.environ["AWS_SESSION_TOKEN"]}

def other(event, context):
    return "other"
"##;

const TABLES: &str = "resources:\n  Resources:\n    Granted:\n      Type: AWS::DynamoDB::Table\n      Properties:\n        TableName: granted\n        BillingMode: PAY_PER_REQUEST\n        AttributeDefinitions:\n          - {AttributeName: id, AttributeType: S}\n        KeySchema:\n          - {AttributeName: id, KeyType: HASH}\n    Other:\n      Type: AWS::DynamoDB::Table\n      Properties:\n        TableName: other\n        BillingMode: PAY_PER_REQUEST\n        AttributeDefinitions:\n          - {AttributeName: id, AttributeType: S}\n        KeySchema:\n          - {AttributeName: id, KeyType: HASH}\n";

fn service(name: &str, provider_extra: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sylph-iam-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("p.py"), PROBE).unwrap();
    std::fs::write(
        dir.join("serverless.yml"),
        format!(
            "service: {name}\nprovider:\n  runtime: python3.12\n  timeout: 30\n{provider_extra}functions:\n  probe:\n    handler: p.probe\n  credentials:\n    handler: p.credentials\n  other:\n    handler: p.other\n{TABLES}"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn iam_statements_decide_every_call_a_function_makes() {
    let statements = "  iam:\n    role:\n      statements:\n        - Effect: Allow\n          Action: [dynamodb:GetItem, dynamodb:PutItem]\n          Resource: !GetAtt Granted.Arn\n        - Effect: Allow\n          Action: lambda:InvokeFunction\n          Resource: arn:aws:lambda:${aws:region}:*:function:${self:service}-${sls:stage}-probe\n";
    let dir = service("granted", statements);
    let dev = Dev::start(&dir);
    assert!(dev.output().contains("checked against its role"), "{}", dev.output());
    // Credentials of a live instance of another function of the same service.
    let stolen = dev.invoke_ok("credentials", &serde_json::json!({}));
    let out = dev.invoke_ok("probe", &serde_json::json!({ "stolen": stolen }));
    // Granted.
    assert_eq!(out["put"], "ok", "{out}");
    assert_eq!(out["get"], "ok", "{out}");
    // Outside the grants: AWS's error and message shape.
    // PartiQL needs its own actions (PartiQLSelect…), as on AWS: GetItem does not grant it.
    for call in ["scan", "scan_other", "partiql_select", "delete_table", "invoke_other"] {
        assert_eq!(out[call], "AccessDeniedException", "{call}: {out}");
    }
    assert!(
        out["partiql_select_message"]
            .as_str()
            .is_some_and(|m| m.contains("dynamodb:PartiQLSelect")),
        "{out}"
    );
    let message = out["scan_message"].as_str().unwrap();
    assert!(
        message.contains("is not authorized to perform: dynamodb:Scan on resource: arn:aws:dynamodb:us-east-1:")
            && message.contains(":table/granted"),
        "{message}"
    );
    assert!(message.contains("assumed-role/"), "{message}");
    assert_eq!(
        out["invoke_granted"], "AccessDeniedException",
        "only probe itself is granted: {out}"
    );
    // Credentials it was never issued, or another instance's.
    assert_eq!(out["forged"], "UnrecognizedClientException", "{out}");
    assert_eq!(out["stolen"], "UnrecognizedClientException", "{out}");
    assert_eq!(out["unsigned"], "MissingAuthenticationTokenException", "{out}");
    // The refused DeleteTable left the table alone.
    let described = dev.send(
        "POST",
        "/",
        &[("X-Amz-Target", "DynamoDB_20120810.DescribeTable")],
        br#"{"TableName":"granted"}"#,
    );
    assert_eq!(described.status, 200, "{}", described.text());
    assert!(
        dev.output().contains("denied dynamodb:Scan"),
        "the denial is logged: {}",
        dev.output()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_service_without_statements_is_warned_about_or_refused_with_strict_iam() {
    let dir = service("open", "");
    let dev = Dev::start(&dir);
    let out = dev.invoke_ok("probe", &serde_json::json!({}));
    assert_eq!(out["scan"], "ok", "{out}");
    assert_eq!(out["delete_table"], "ok", "{out}");
    assert_eq!(
        out["forged"], "UnrecognizedClientException",
        "identity is still checked: {out}"
    );
    assert!(
        dev.wait_for_output("called dynamodb:Scan on arn:aws:dynamodb:us-east-1:000000000000:table/granted"),
        "a warning names what the function used: {}",
        dev.output()
    );
    drop(dev);

    let dir = service("strict", "");
    let dev = Dev::start_with(&dir, &["--strict-iam"], &[]);
    let out = dev.invoke_ok("probe", &serde_json::json!({}));
    for call in ["get", "scan", "delete_table", "invoke_other"] {
        assert_eq!(out[call], "AccessDeniedException", "{call}: {out}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
