//! DynamoDB's errors: the `__type` names, HTTP statuses and messages the SDKs branch on.

use serde_json::{json, Value as Json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Validation,
    Serialization,
    ResourceNotFound,
    ResourceInUse,
    ConditionalCheckFailed,
    TransactionCanceled,
    IdempotentParameterMismatch,
    /// A PartiQL INSERT of an item that exists.
    DuplicateItem,
    UnknownOperation,
    InternalServerError,
    /// Internal: a write was checked against a table description that a table operation has
    /// since replaced. The service runs such a request again with the new description; a
    /// client sees it only if that keeps happening.
    TableChanged,
}

impl ErrorKind {
    pub fn type_name(self) -> &'static str {
        match self {
            ErrorKind::Validation => "com.amazon.coral.validate#ValidationException",
            ErrorKind::Serialization => "com.amazon.coral.service#SerializationException",
            ErrorKind::ResourceNotFound => "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
            ErrorKind::ResourceInUse => "com.amazonaws.dynamodb.v20120810#ResourceInUseException",
            ErrorKind::ConditionalCheckFailed => "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
            ErrorKind::TransactionCanceled => "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            ErrorKind::DuplicateItem => "com.amazonaws.dynamodb.v20120810#DuplicateItemException",
            ErrorKind::IdempotentParameterMismatch => {
                "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException"
            }
            ErrorKind::UnknownOperation => "com.amazon.coral.service#UnknownOperationException",
            ErrorKind::InternalServerError | ErrorKind::TableChanged => {
                "com.amazonaws.dynamodb.v20120810#InternalServerError"
            }
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InternalServerError | ErrorKind::TableChanged => 500,
            _ => 400,
        }
    }
}

/// An error answered to the client, with extra fields for some kinds.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DbError {
    pub kind: ErrorKind,
    pub message: String,
    /// `Item` for a failed condition with ReturnValuesOnConditionCheckFailure, or
    /// `CancellationReasons` for a cancelled transaction.
    pub extra: Option<(&'static str, Json)>,
}

impl DbError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> DbError {
        DbError {
            kind,
            message: message.into(),
            extra: None,
        }
    }

    pub fn validation(message: impl Into<String>) -> DbError {
        DbError::new(ErrorKind::Validation, message)
    }

    pub fn serialization(message: impl Into<String>) -> DbError {
        DbError::new(ErrorKind::Serialization, message)
    }

    pub fn not_found() -> DbError {
        DbError::new(ErrorKind::ResourceNotFound, "Requested resource not found")
    }

    pub fn condition_failed() -> DbError {
        DbError::new(ErrorKind::ConditionalCheckFailed, "The conditional request failed")
    }

    pub fn internal(message: impl Into<String>) -> DbError {
        DbError::new(ErrorKind::InternalServerError, message)
    }

    pub fn with(mut self, field: &'static str, value: Json) -> DbError {
        self.extra = Some((field, value));
        self
    }

    pub fn to_json(&self) -> Json {
        let mut body = json!({ "__type": self.kind.type_name(), "message": self.message });
        if let Some((k, v)) = &self.extra {
            body[*k] = v.clone();
        }
        body
    }
}
