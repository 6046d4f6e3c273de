//! Sylph's DynamoDB-compatible table API from a component: the same JSON requests and answers
//! as DynamoDB's (`{"TableName": …, "Key": {"id": {"S": "1"}}}`), sent to the endpoint Sylph
//! gives every function (`AWS_ENDPOINT_URL_DYNAMODB`). Sylph signs each call as the function,
//! so its IAM statements decide what it may do.

use serde_json::Value;

/// A refusal or failure: DynamoDB's error type (`ResourceNotFoundException`,
/// `AccessDeniedException`, `ConditionalCheckFailedException`, …) and message.
#[derive(Debug, Clone, PartialEq)]
pub struct TableError {
    pub kind: String,
    pub message: String,
}

impl std::fmt::Display for TableError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for TableError {}

/// The table API at the function's endpoint.
pub struct Tables {
    endpoint: String,
}

impl Tables {
    /// The endpoint Sylph gave the function (`AWS_ENDPOINT_URL_DYNAMODB`, else
    /// `AWS_ENDPOINT_URL`).
    pub fn from_env() -> Tables {
        let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|_| "http://127.0.0.1:3000".to_owned());
        Tables {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
        }
    }

    /// Call `operation` (`GetItem`, `PutItem`, `Query`, …) with its JSON request.
    pub fn call(&self, operation: &str, request: &Value) -> Result<Value, TableError> {
        let target = format!("DynamoDB_20120810.{operation}");
        let fetched = crate::fetch(
            "POST",
            &format!("{}/", self.endpoint),
            &[
                ("content-type", "application/x-amz-json-1.0"),
                ("x-amz-target", &target),
            ],
            request.to_string().as_bytes(),
        )
        .map_err(|code| TableError {
            kind: "RequestFailed".to_owned(),
            message: format!("{code:?}"),
        })?;
        let answer: Value = serde_json::from_slice(&fetched.body).unwrap_or(Value::Null);
        if fetched.status == 200 {
            return Ok(answer);
        }
        let kind = answer["__type"].as_str().unwrap_or("UnknownError");
        Err(TableError {
            kind: kind.rsplit('#').next().unwrap_or(kind).to_owned(),
            message: answer["message"]
                .as_str()
                .or_else(|| answer["Message"].as_str())
                .unwrap_or("")
                .to_owned(),
        })
    }
}
