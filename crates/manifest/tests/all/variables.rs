use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use sylph_manifest::{Context, Loaded};
use sylph_model::{ApiKind, Destination, Event, Runtime, ScheduleEvent, ScheduleInput};

fn load_with(source: &str, options: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Loaded, String> {
    let ctx = Context {
        options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        service_dir: Path::new("tests/fixtures").to_owned(),
        params: Default::default(),
        dotenv: Vec::new(),
    };
    sylph_manifest::load_str(source, Path::new("serverless.yml"), &ctx).map_err(|e| e.to_string())
}

fn load(source: &str) -> Loaded {
    load_with(source, &[], &[]).unwrap()
}

fn env_of<'a>(loaded: &'a Loaded, function: &str, key: &str) -> &'a str {
    loaded
        .service
        .function(function)
        .unwrap()
        .environment
        .get(key)
        .map(String::as_str)
        .unwrap_or("<unset>")
}

#[test]
fn provider_defaults_apply_and_are_visible_to_variables() {
    let loaded = load(
        "service: svc\nprovider:\n  runtime: nodejs20.x\n  environment:\n    STAGE: ${opt:stage, self:provider.stage}\n    REGION: ${self:provider.region}\nfunctions:\n  hello:\n    handler: handler.hello\n",
    );
    let s = &loaded.service;
    assert_eq!((s.stage.as_str(), s.region.as_str()), ("dev", "us-east-1"));
    let f = s.function("hello").unwrap();
    assert_eq!(f.name, "svc-dev-hello");
    assert_eq!(f.memory_mb, 1024);
    assert_eq!(f.timeout, Duration::from_secs(6));
    assert_eq!(f.runtime, Runtime::Node("nodejs20.x".into()));
    assert_eq!(env_of(&loaded, "hello", "STAGE"), "dev");
    assert_eq!(env_of(&loaded, "hello", "REGION"), "us-east-1");
}

#[test]
fn cli_options_override_stage_and_region() {
    let loaded = load_with(
        "service: svc\nprovider:\n  runtime: nodejs20.x\n  stage: ${opt:stage, 'qa'}\n  environment:\n    S: ${sls:stage}\n    R: ${aws:region}\n    X: ${opt:extra}\nfunctions:\n  f:\n    handler: h.f\n",
        &[("stage", "prod"), ("region", "eu-west-1"), ("extra", "yes")],
        &[],
    )
    .unwrap();
    assert_eq!(loaded.service.stage, "prod");
    assert_eq!(loaded.service.region, "eu-west-1");
    assert_eq!(env_of(&loaded, "f", "S"), "prod");
    assert_eq!(env_of(&loaded, "f", "R"), "eu-west-1");
    assert_eq!(env_of(&loaded, "f", "X"), "yes");
    assert_eq!(loaded.service.function("f").unwrap().name, "svc-prod-f");
}

#[test]
fn fallbacks_literals_and_types() {
    let loaded = load_with(
        "service: svc\nprovider:\n  runtime: python3.11\n  memorySize: ${env:MEM, 512}\n  timeout: ${env:NOPE, 10}\n  environment:\n    A: ${env:MISSING, 'single quoted, with comma'}\n    B: ${env:MISSING, \"double\"}\n    C: ${env:MISSING, true}\n    D: ${env:PRESENT}\n    E: prefix-${env:PRESENT}-suffix\n    F: ${ssm:/remote/param, 'local-default'}\nfunctions:\n  f:\n    handler: h.f\n",
        &[],
        &[("PRESENT", "here"), ("MEM", "256")],
    )
    .unwrap();
    let f = loaded.service.function("f").unwrap();
    assert_eq!(f.memory_mb, 256);
    assert_eq!(f.timeout, Duration::from_secs(10));
    assert_eq!(env_of(&loaded, "f", "A"), "single quoted, with comma");
    assert_eq!(env_of(&loaded, "f", "B"), "double");
    assert_eq!(env_of(&loaded, "f", "C"), "true");
    assert_eq!(env_of(&loaded, "f", "D"), "here");
    assert_eq!(env_of(&loaded, "f", "E"), "prefix-here-suffix");
    assert_eq!(env_of(&loaded, "f", "F"), "local-default");
}

#[test]
fn self_references_nest_and_reach_through_variables() {
    let loaded = load_with(
        "service: svc\ncustom:\n  settings: ${file(./config.yml)}\n  table: ${self:custom.settings.tableName}-${sls:stage}\n  memory: ${self:custom.settings.stages.${opt:stage, self:provider.stage}.memory}\n  literal: \\${not-a-variable}\nprovider:\n  runtime: nodejs20.x\n  memorySize: ${self:custom.memory}\n  environment:\n    TABLE: ${self:custom.table}\n    JSON: ${file(./config.json):api.key}\n    COUNT: ${file(config.json):count}\n    LIST: ${self:custom.settings.nested.list.1}\n    LITERAL: ${self:custom.literal}\nfunctions:\n  f:\n    handler: h.f\n",
        &[("stage", "prod")],
        &[],
    )
    .unwrap();
    let f = loaded.service.function("f").unwrap();
    assert_eq!(f.memory_mb, 2048);
    assert_eq!(env_of(&loaded, "f", "TABLE"), "from-file-prod");
    assert_eq!(env_of(&loaded, "f", "JSON"), "json-value");
    assert_eq!(env_of(&loaded, "f", "COUNT"), "3");
    assert_eq!(env_of(&loaded, "f", "LIST"), "b");
    assert_eq!(env_of(&loaded, "f", "LITERAL"), "${not-a-variable}");
    assert_eq!(loaded.service.custom["literal"], "${not-a-variable}");
}

#[test]
fn cloudformation_intrinsics_resolve_to_local_names() {
    let loaded = load(
        "service: todo\nprovider:\n  runtime: nodejs20.x\n  environment:\n    TABLE: !Ref TodosTable\n    ARN: !GetAtt TodosTable.Arn\n    SUB: !Sub '${AWS::Region}:${TodosTable}'\n    JOINED: !Join ['/', [!Ref AWS::AccountId, x]]\n    FN: !GetAtt HelloLambdaFunction.Arn\nfunctions:\n  hello:\n    handler: h.hello\nresources:\n  Resources:\n    TodosTable:\n      Type: AWS::DynamoDB::Table\n      Properties:\n        TableName: ${self:service}-${sls:stage}\n",
    );
    assert_eq!(env_of(&loaded, "hello", "TABLE"), "todo-dev");
    assert_eq!(
        env_of(&loaded, "hello", "ARN"),
        "arn:aws:dynamodb:us-east-1:000000000000:table/todo-dev"
    );
    assert_eq!(env_of(&loaded, "hello", "SUB"), "us-east-1:todo-dev");
    assert_eq!(env_of(&loaded, "hello", "JOINED"), "000000000000/x");
    assert_eq!(
        env_of(&loaded, "hello", "FN"),
        "arn:aws:lambda:us-east-1:000000000000:function:todo-dev-hello"
    );
    // Resources keep intrinsics as data, in long form.
    let props = &loaded.service.resources["Resources"]["TodosTable"]["Properties"];
    assert_eq!(props["TableName"], "todo-dev");
    assert_eq!(loaded.service.tables.len(), 1);
    assert_eq!(
        (
            loaded.service.tables[0].logical_id.as_str(),
            loaded.service.tables[0].name.as_str()
        ),
        ("TodosTable", "todo-dev")
    );
}

#[test]
fn http_events_in_all_their_forms() {
    let loaded = load(
        "service: svc\nprovider:\n  runtime: nodejs20.x\n  httpApi:\n    cors: true\nfunctions:\n  f:\n    handler: h.f\n    events:\n      - http: GET hello/{id}\n      - http:\n          path: /items/{proxy+}\n          method: any\n          cors: true\n      - httpApi: 'POST /things'\n      - httpApi: '*'\n      - httpApi:\n          method: '*'\n          path: /any\n      - schedule: rate(1 minute)\n",
    );
    let f = loaded.service.function("f").unwrap();
    let routes: Vec<_> = f
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Http(r) => Some((r.api, r.method.clone(), r.path.clone(), r.catch_all, r.cors.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(
        routes,
        vec![
            (ApiKind::Rest, Some("GET".into()), "/hello/{id}".into(), false, false),
            (ApiKind::Rest, None, "/items/{proxy+}".into(), false, true),
            (ApiKind::Http, Some("POST".into()), "/things".into(), false, false),
            (ApiKind::Http, None, "/{proxy+}".into(), true, false),
            (ApiKind::Http, None, "/any".into(), false, false),
        ]
    );
    assert!(
        matches!(&f.events[5], Event::Schedule(s) if s.expression == "rate(1 minute)" && s.name == "svc-dev-f-schedule-1")
    );
    assert!(loaded.service.http_api_cors.is_some());
}

#[test]
fn replaced_plugins_get_a_notice() {
    let loaded = load(
        "service: svc\nplugins:\n  - serverless-offline\n  - serverless-webpack\nprovider:\n  runtime: nodejs20.x\nfunctions: {}\n",
    );
    assert_eq!(loaded.notices.len(), 3, "{:?}", loaded.notices);
    assert!(
        loaded.notices[0].contains("serverless-offline is not needed"),
        "{:?}",
        loaded.notices
    );
    // A bundler's job is done with esbuild; its own config file is not run.
    assert!(
        loaded.notices[1].contains("webpack.config.js is not run")
            && loaded.notices[2].contains("sylph builds the Node.js handlers with esbuild"),
        "{:?}",
        loaded.notices
    );
    assert_eq!(
        loaded.service.node_build.as_ref().map(|b| b.plugin.as_str()),
        Some("serverless-webpack")
    );
}

#[test]
fn function_settings_override_provider_settings() {
    let loaded = load(
        "service: svc\nprovider:\n  runtime: nodejs20.x\n  memorySize: 512\n  timeout: 3\n  environment:\n    SHARED: provider\n    KEEP: kept\nfunctions:\n  f:\n    handler: h.f\n    name: custom-name\n    runtime: python3.12\n    memorySize: 128\n    timeout: 30\n    reservedConcurrency: 5\n    environment:\n      SHARED: function\n",
    );
    let f = loaded.service.function("custom-name").unwrap();
    assert_eq!(f.key, "f");
    assert_eq!(f.runtime, Runtime::Python("python3.12".into()));
    assert_eq!(
        (f.memory_mb, f.timeout, f.reserved_concurrency),
        (128, Duration::from_secs(30), Some(5))
    );
    assert_eq!(env_of(&loaded, "f", "SHARED"), "function");
    assert_eq!(env_of(&loaded, "f", "KEEP"), "kept");
}

#[test]
fn schedules_and_asynchronous_settings() {
    let loaded = load(
        r#"service: svc
provider:
  runtime: nodejs20.x
resources:
  Resources:
    Failures:
      Type: AWS::SQS::Queue
      Properties:
        QueueName: failures
functions:
  worker:
    handler: h.f
    maximumRetryAttempts: 1
    maximumEventAge: 120
    destinations:
      onSuccess: report
      onFailure:
        type: sqs
        arn: !GetAtt Failures.Arn
    events:
      - schedule: cron(0 3 * * ? *)
      - schedule:
          rate: [rate(1 hour), rate(2 hours)]
          enabled: false
          input: '{"from": "schedule"}'
      - schedule:
          rate: cron(0 9 ? * MON-FRI *)
          method: scheduler
          timezone: Europe/Paris
          name: weekday-report
      - schedule:
          rate: rate(5 minutes)
          inputTransformer:
            inputPathsMap:
              at: $.time
            inputTemplate: '{"at": <at>}'
  report:
    handler: h.g
    onError: arn:aws:sns:us-east-1:000000000000:alarms
"#,
    );
    let worker = loaded.service.function("worker").unwrap();
    let schedules: Vec<&ScheduleEvent> = worker
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Schedule(s) => Some(s),
            _ => None,
        })
        .collect();
    let names: Vec<&str> = schedules.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "svc-dev-worker-schedule-1",
            "svc-dev-worker-schedule-2",
            "svc-dev-worker-schedule-3",
            "weekday-report",
            "svc-dev-worker-schedule-5"
        ]
    );
    assert_eq!(schedules[1].expression, "rate(1 hour)");
    assert!(!schedules[2].enabled);
    assert_eq!(
        schedules[2].input,
        ScheduleInput::Constant(serde_json::json!({"from": "schedule"}))
    );
    assert!(schedules[3].scheduler);
    assert_eq!(schedules[3].timezone.as_deref(), Some("Europe/Paris"));
    assert!(matches!(&schedules[4].input, ScheduleInput::Transformer { paths, .. } if paths["at"] == "$.time"));
    let config = &worker.on_async;
    assert_eq!(config.maximum_retry_attempts, 1);
    assert_eq!(config.maximum_event_age, std::time::Duration::from_secs(120));
    assert_eq!(config.on_success, Some(Destination::Function("svc-dev-report".into())));
    assert_eq!(config.on_failure, Some(Destination::Queue("failures".into())));
    let report = loaded.service.function("report").unwrap();
    assert_eq!(report.on_async.maximum_retry_attempts, 2);
    assert!(matches!(&report.on_async.dead_letter, Some(Destination::Unsupported(arn)) if arn.contains(":sns:")));
    assert!(
        loaded
            .notices
            .iter()
            .any(|n| n.contains("does not deliver to arn:aws:sns")),
        "{:?}",
        loaded.notices
    );
    assert_eq!(loaded.service.queues[0].name, "failures");
}

#[test]
fn queues_and_sqs_events() {
    let loaded = load(
        r#"service: svc
provider:
  runtime: nodejs20.x
resources:
  Resources:
    Jobs:
      Type: AWS::SQS::Queue
      Properties:
        QueueName: jobs
        VisibilityTimeout: 30
        RedrivePolicy:
          deadLetterTargetArn: !GetAtt JobsDlq.Arn
          maxReceiveCount: 3
    JobsDlq:
      Type: AWS::SQS::Queue
      Properties:
        QueueName: jobs-dlq
    Ordered:
      Type: AWS::SQS::Queue
      Properties:
        QueueName: ordered.fifo
        FifoQueue: true
        ContentBasedDeduplication: true
functions:
  worker:
    handler: h.f
    events:
      - sqs: !GetAtt Jobs.Arn
      - sqs:
          arn: arn:aws:sqs:us-east-1:000000000000:ordered.fifo
          batchSize: 100
          maximumBatchingWindow: 2
          functionResponseType: ReportBatchItemFailures
          maximumConcurrency: 3
          filterPatterns:
            - body:
                kind: [order]
"#,
    );
    let queues = &loaded.service.queues;
    let jobs = queues.iter().find(|q| q.name == "jobs").unwrap();
    assert_eq!(jobs.attributes["VisibilityTimeout"], "30");
    let policy: serde_json::Value = serde_json::from_str(&jobs.attributes["RedrivePolicy"]).unwrap();
    assert_eq!(
        policy["deadLetterTargetArn"],
        "arn:aws:sqs:us-east-1:000000000000:jobs-dlq"
    );
    assert_eq!(policy["maxReceiveCount"], 3);
    let ordered = queues.iter().find(|q| q.name == "ordered.fifo").unwrap();
    assert_eq!(ordered.attributes["FifoQueue"], "true");
    let f = loaded.service.function("worker").unwrap();
    let sqs: Vec<&sylph_model::SqsEvent> = f
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Sqs(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!((sqs[0].queue.as_str(), sqs[0].batch_size), ("jobs", 10));
    assert_eq!(sqs[1].queue, "ordered.fifo");
    assert_eq!((sqs[1].batch_size, sqs[1].maximum_batching_window), (100, 2));
    assert!(sqs[1].report_batch_item_failures);
    assert_eq!(sqs[1].maximum_concurrency, Some(3));
    assert_eq!(sqs[1].filter_patterns.len(), 1);
}

#[test]
fn stream_events() {
    let loaded = load(
        r#"service: svc
provider:
  runtime: nodejs20.x
resources:
  Resources:
    Items:
      Type: AWS::DynamoDB::Table
      Properties:
        TableName: items
        AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
        KeySchema: [{AttributeName: pk, KeyType: HASH}]
        StreamSpecification:
          StreamViewType: NEW_IMAGE
functions:
  changes:
    handler: h.f
    events:
      - stream: !GetAtt Items.StreamArn
      - stream:
          type: dynamodb
          arn: !GetAtt Items.StreamArn
          batchSize: 5
          startingPosition: TRIM_HORIZON
          maximumRetryAttempts: 3
          maximumRecordAgeInSeconds: 120
          bisectBatchOnFunctionError: true
          functionResponseType: ReportBatchItemFailures
          destinations:
            onFailure: arn:aws:sqs:us-east-1:000000000000:failed
      - stream:
          type: kinesis
          arn: arn:aws:kinesis:us-east-1:000000000000:stream/clicks
"#,
    );
    let f = loaded.service.function("changes").unwrap();
    let streams: Vec<&sylph_model::StreamEvent> = f
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Stream(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(streams.len(), 2);
    assert_eq!(
        (streams[0].table.as_str(), streams[0].batch_size, streams[0].from_oldest),
        ("items", 100, false)
    );
    assert_eq!(
        streams[0].maximum_retry_attempts, None,
        "until the records expire, by default"
    );
    let s = streams[1];
    assert_eq!(
        (
            s.batch_size,
            s.from_oldest,
            s.maximum_retry_attempts,
            s.maximum_record_age
        ),
        (5, true, Some(3), Some(120))
    );
    assert!(s.bisect_batch_on_function_error && s.report_batch_item_failures);
    assert_eq!(s.on_failure, Some(Destination::Queue("failed".into())));
    assert!(
        loaded
            .notices
            .iter()
            .any(|n| n.contains("events[2]: `stream (kinesis)` events are not run")),
        "{:?}",
        loaded.notices
    );
}

#[test]
fn resources_given_as_a_list_of_fragments_are_merged() {
    let loaded = load(
        r#"service: svc
provider:
  runtime: nodejs20.x
functions:
  f:
    handler: h.f
    environment:
      TABLE: !Ref Items
      QUEUE: !GetAtt Jobs.QueueName
resources:
  - Resources:
      Items:
        Type: AWS::DynamoDB::Table
        Properties:
          TableName: items
          AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
          KeySchema: [{AttributeName: pk, KeyType: HASH}]
  - Resources:
      Jobs:
        Type: AWS::SQS::Queue
        Properties:
          QueueName: jobs
    Outputs:
      ItemsName:
        Value: !Ref Items
"#,
    );
    let service = &loaded.service;
    assert_eq!(
        service.tables.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["items"]
    );
    assert_eq!(
        service.queues.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(),
        ["jobs"]
    );
    let f = service.function("f").unwrap();
    assert_eq!(f.environment["TABLE"], "items");
    assert_eq!(f.environment["QUEUE"], "jobs");
    assert!(service.resources["Outputs"]["ItemsName"].is_object());
}

fn load_with_params(
    source: &str,
    file: Option<&str>,
    flags: &[&str],
    options: &[(&str, &str)],
) -> Result<Loaded, String> {
    let dir = std::env::temp_dir().join(format!(
        "sylph-params-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(text) = file {
        std::fs::write(dir.join(sylph_manifest::params::PARAMS_FILE), text).unwrap();
    }
    let flags: Vec<String> = flags.iter().map(|f| f.to_string()).collect();
    let params = sylph_manifest::Params::load(None, &dir, &flags).map_err(|e| e.to_string())?;
    let ctx = Context {
        options: options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        env: HashMap::new(),
        service_dir: dir.clone(),
        params,
        dotenv: Vec::new(),
    };
    let out = sylph_manifest::load_str(source, Path::new("serverless.yml"), &ctx).map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    out
}

static NEXT_DIR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

const AWS_SIDE: &str = "service: svc\nprovider:\n  runtime: python3.11\n  environment:\n    API: ${ssm:/shared/api-url}\n    VPC: ${cf:network-${sls:stage}.VpcId, 'no-vpc'}\n    QUEUE: ${construct:jobs.queueUrl}\n    DOMAIN: ${param:domain}\n    BUCKET: !ImportValue shared-bucket\n    POOL: !GetAtt UserPool.Arn\nparams:\n  prod:\n    domain: example.com\n  default:\n    domain: dev.example.test\nfunctions:\n  f:\n    handler: h.f\n";

#[test]
fn aws_side_variables_come_from_the_parameters_file_and_flags() {
    let file = "ssm:\n  /shared/api-url: http://127.0.0.1:9000\nconstruct:\n  jobs.queueUrl: http://sqs.local/jobs\nImportValue:\n  shared-bucket: local-bucket\nGetAtt:\n  UserPool.Arn: arn:aws:cognito-idp:us-east-1:000000000000:userpool/local\n";
    let loaded = load_with_params(AWS_SIDE, Some(file), &[], &[]).unwrap();
    assert_eq!(env_of(&loaded, "f", "API"), "http://127.0.0.1:9000");
    assert_eq!(env_of(&loaded, "f", "QUEUE"), "http://sqs.local/jobs");
    // A fallback still applies when no value is given.
    assert_eq!(env_of(&loaded, "f", "VPC"), "no-vpc");
    // `params:` of the manifest: the stage's, else `default`.
    assert_eq!(env_of(&loaded, "f", "DOMAIN"), "dev.example.test");
    assert_eq!(env_of(&loaded, "f", "BUCKET"), "local-bucket");
    assert_eq!(
        env_of(&loaded, "f", "POOL"),
        "arn:aws:cognito-idp:us-east-1:000000000000:userpool/local"
    );
    let prod = load_with_params(AWS_SIDE, Some(file), &[], &[("stage", "prod")]).unwrap();
    assert_eq!(env_of(&prod, "f", "DOMAIN"), "example.com");

    // Flags win over the file and the manifest.
    let flagged = load_with_params(
        AWS_SIDE,
        Some(file),
        &[
            "domain=flag.example.test",
            "ssm:/shared/api-url=http://127.0.0.1:9999",
            "cf:network-dev.VpcId=vpc-1",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(env_of(&flagged, "f", "DOMAIN"), "flag.example.test");
    assert_eq!(env_of(&flagged, "f", "API"), "http://127.0.0.1:9999");
    assert_eq!(env_of(&flagged, "f", "VPC"), "vpc-1");
}

#[test]
fn a_missing_aws_side_value_names_where_to_give_it() {
    let err = load_with_params(AWS_SIDE, None, &[], &[]).err().unwrap();
    assert!(err.contains("provider.environment.API"), "{err}");
    assert!(err.contains("`${ssm:/shared/api-url}`"), "{err}");
    assert!(
        err.contains("under `ssm:` in ")
            && err.contains("sylph.params.yml")
            && err.contains("--param 'ssm:/shared/api-url=VALUE'"),
        "{err}"
    );
    // With the variables given, an ImportValue still missing names the file's section.
    let err = load_with_params(
        AWS_SIDE,
        Some("ssm:\n  /shared/api-url: x\nconstruct:\n  jobs.queueUrl: y\n"),
        &[],
        &[],
    )
    .err()
    .unwrap();
    assert!(
        err.contains("BUCKET") && err.contains("ImportValue:") && err.contains("sylph.params.yml"),
        "{err}"
    );
    // A malformed file or flag is an error that says where.
    let err = load_with_params(AWS_SIDE, Some("ssm:\n  /x: [1, 2]\n"), &[], &[])
        .err()
        .unwrap();
    assert!(
        err.contains("sylph.params.yml:2:") && err.contains("expected a string"),
        "{err}"
    );
    let err = load_with_params(AWS_SIDE, Some("vault:\n  x: y\n"), &[], &[])
        .err()
        .unwrap();
    assert!(err.contains("`vault` is not a variable source"), "{err}");
    let err = load_with_params(AWS_SIDE, None, &["no-equals-sign"], &[])
        .err()
        .unwrap();
    assert!(err.contains("--param `no-equals-sign` has no `=`"), "{err}");
}

const CONDITIONAL: &str = "service: svc\nprovider:\n  runtime: nodejs20.x\n  environment:\n    MODE: !If [IsProd, live, test]\nfunctions:\n  f:\n    handler: h.f\nresources:\n  Conditions:\n    IsProd: !Equals ['${sls:stage}', prod]\n    NotProd: !Not [!Condition IsProd]\n    East: !Equals [!Ref AWS::Region, us-east-1]\n  Resources:\n    ProdTable:\n      Type: AWS::DynamoDB::Table\n      Condition: IsProd\n      Properties:\n        TableName: prod-table\n        AttributeDefinitions: [{AttributeName: id, AttributeType: S}]\n        KeySchema: [{AttributeName: id, KeyType: HASH}]\n        BillingMode: PAY_PER_REQUEST\n    DevTable:\n      Type: AWS::DynamoDB::Table\n      Condition: NotProd\n      Properties:\n        TableName: dev-table\n        AttributeDefinitions: [{AttributeName: id, AttributeType: S}]\n        KeySchema: [{AttributeName: id, KeyType: HASH}]\n        BillingMode: !If [East, PAY_PER_REQUEST, PROVISIONED]\n        ProvisionedThroughput: !If [East, !Ref AWS::NoValue, {ReadCapacityUnits: 1, WriteCapacityUnits: 1}]\n";

#[test]
fn conditions_choose_resources_and_values_by_stage_and_region() {
    let dev = load(CONDITIONAL);
    let tables: Vec<&str> = dev.service.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tables, ["dev-table"]);
    let props = &dev.service.tables[0].properties;
    assert_eq!(props["BillingMode"], "PAY_PER_REQUEST");
    assert!(props.get("ProvisionedThroughput").is_none(), "{props}");
    assert_eq!(env_of(&dev, "f", "MODE"), "test");

    let prod = load_with(CONDITIONAL, &[("stage", "prod"), ("region", "eu-west-1")], &[]).unwrap();
    let tables: Vec<&str> = prod.service.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tables, ["prod-table"]);
    assert_eq!(env_of(&prod, "f", "MODE"), "live");

    let err = load_with(
        &CONDITIONAL.replace("Condition: IsProd", "Condition: IsStaging"),
        &[],
        &[],
    )
    .err()
    .unwrap();
    assert!(
        err.contains("resources.Resources.ProdTable.Condition") && err.contains("`IsStaging` is not defined"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_yaml_or_json_is_read_as_text() {
    let loaded = load(
        "service: svc\nprovider:\n  runtime: nodejs20.x\n  environment:\n    KEY: ${file(./public_key)}\nfunctions:\n  f:\n    handler: h.f\n",
    );
    let key = env_of(&loaded, "f", "KEY");
    assert!(
        key.starts_with("-----BEGIN PUBLIC KEY-----\n") && key.ends_with("-----END PUBLIC KEY-----\n"),
        "{key}"
    );
    let err = load_with(
        "service: svc\nprovider:\n  runtime: nodejs20.x\n  environment:\n    KEY: ${file(./public_key):pem}\nfunctions:\n  f:\n    handler: h.f\n",
        &[],
        &[],
    )
    .err()
    .unwrap();
    assert!(err.contains("read as plain text, which has no `pem`"), "{err}");
}

#[test]
fn serverless_dotenv_plugin_hands_the_env_files_to_every_function() {
    let source = "service: svc\nplugins:\n  - serverless-dotenv-plugin\nprovider:\n  runtime: nodejs20.x\n  environment:\n    FROM_FILE: ${env:DB_HOST}\n    OWN: provider\nfunctions:\n  f:\n    handler: h.f\n";
    let dotenv = vec![
        ("DB_HOST".to_owned(), "127.0.0.1".to_owned()),
        ("OWN".to_owned(), "dotenv".to_owned()),
    ];
    let ctx = Context {
        options: HashMap::new(),
        env: dotenv.iter().cloned().collect(),
        service_dir: Path::new("tests/fixtures").to_owned(),
        params: Default::default(),
        dotenv,
    };
    let loaded = sylph_manifest::load_str(source, Path::new("serverless.yml"), &ctx).unwrap();
    assert_eq!(env_of(&loaded, "f", "FROM_FILE"), "127.0.0.1");
    assert_eq!(env_of(&loaded, "f", "DB_HOST"), "127.0.0.1");
    // What the manifest sets itself wins over the file.
    assert_eq!(env_of(&loaded, "f", "OWN"), "provider");
    assert!(
        loaded
            .notices
            .iter()
            .any(|n| n.contains("serverless-dotenv-plugin is not needed")),
        "{:?}",
        loaded.notices
    );
}

#[test]
fn an_eventbridge_schedule_is_a_schedule_and_a_function_url_is_named() {
    let loaded = load(
        "service: svc\nprovider:\n  runtime: nodejs20.x\nfunctions:\n  f:\n    handler: h.f\n    url: true\n    events:\n      - eventBridge:\n          schedule: rate(10 minutes)\n          input:\n            key: value\n      - eventBridge:\n          pattern:\n            source: [my.app]\n",
    );
    let f = loaded.service.function("f").unwrap();
    assert!(
        matches!(&f.events[0], Event::Schedule(s) if s.expression == "rate(10 minutes)" && s.input == ScheduleInput::Constant(serde_json::json!({"key": "value"}))),
        "{:?}",
        f.events[0]
    );
    assert!(matches!(&f.events[1], Event::Other { kind, .. } if kind == "eventBridge"));
    assert!(
        loaded
            .notices
            .iter()
            .any(|n| n.contains("function URLs are not served")),
        "{:?}",
        loaded.notices
    );
}

#[test]
fn a_function_of_iam_roles_per_function_gets_a_role_of_its_own() {
    let loaded = load(
        "service: svc\nplugins:\n  - serverless-iam-roles-per-function\nprovider:\n  runtime: nodejs20.x\n  iam:\n    role:\n      statements:\n        - Effect: Allow\n          Action: sqs:SendMessage\n          Resource: '*'\nfunctions:\n  own:\n    handler: h.own\n    iamRoleStatements:\n      - Effect: Allow\n        Action: dynamodb:GetItem\n        Resource: arn:aws:dynamodb:us-east-1:000000000000:table/t\n  inheriting:\n    handler: h.inheriting\n    iamRoleStatementsInherit: true\n    iamRoleStatements:\n      - Effect: Allow\n        Action: dynamodb:PutItem\n        Resource: arn:aws:dynamodb:us-east-1:000000000000:table/t\n  plain:\n    handler: h.plain\n",
    );
    let actions = |f: &str| -> Vec<String> {
        let role = loaded.service.function(f).unwrap().role.clone().unwrap();
        role.statements.iter().flat_map(|s| s.actions.clone()).collect()
    };
    assert_eq!(actions("own"), ["dynamodb:GetItem"]);
    assert_eq!(actions("inheriting"), ["dynamodb:PutItem", "sqs:SendMessage"]);
    assert_eq!(actions("plain"), ["sqs:SendMessage"]);
    assert_eq!(
        loaded.service.function("own").unwrap().role.as_ref().unwrap().name,
        "svc-dev-own-us-east-1-lambdaRole"
    );
}
