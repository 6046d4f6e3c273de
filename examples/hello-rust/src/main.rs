//! A Rust Lambda function (API Gateway HTTP API, payload 2.0) built with `lambda_runtime`.
//! `sylph dev` runs the built `bootstrap` exactly as Lambda's `provided.al2023` runtime does.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, context) = event.into_parts();
    let name = payload["queryStringParameters"]["name"].as_str().unwrap_or("world");
    if name == "error" {
        return Err("asked to fail".into());
    }
    println!("hello-rust handling {}", context.request_id);
    Ok(json!({
        "statusCode": 200,
        "headers": { "content-type": "application/json" },
        "body": json!({
            "message": format!("Hello, {name}!"),
            "requestId": context.request_id,
            "functionArn": context.invoked_function_arn,
            "memory": context.env_config.memory,
            "route": payload["routeKey"],
        }).to_string(),
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
