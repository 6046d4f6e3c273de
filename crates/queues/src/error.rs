//! SQS's errors: the name the JSON protocol gives (`__type`), the code the query protocol and
//! `x-amzn-query-error` give, and whose fault it was.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SqsError {
    /// The JSON protocol's error name (`QueueDoesNotExist`).
    pub code: &'static str,
    /// The query protocol's code (`AWS.SimpleQueueService.NonExistentQueue`).
    pub query_code: &'static str,
    pub message: String,
    /// The caller's fault (400) rather than the service's (500).
    pub sender: bool,
}

impl SqsError {
    fn new(code: &'static str, query_code: &'static str, message: impl Into<String>) -> SqsError {
        SqsError {
            code,
            query_code,
            message: message.into(),
            sender: true,
        }
    }

    pub fn no_queue() -> SqsError {
        SqsError::new(
            "QueueDoesNotExist",
            "AWS.SimpleQueueService.NonExistentQueue",
            "The specified queue does not exist.",
        )
    }

    pub fn invalid(message: impl Into<String>) -> SqsError {
        SqsError::new("InvalidParameterValue", "InvalidParameterValue", message)
    }

    pub fn missing(parameter: &str) -> SqsError {
        SqsError::new(
            "MissingParameter",
            "MissingParameter",
            format!("The request must contain the parameter {parameter}."),
        )
    }

    pub fn invalid_attribute(name: &str) -> SqsError {
        SqsError::new(
            "InvalidAttributeName",
            "InvalidAttributeName",
            format!("Unknown Attribute {name}."),
        )
    }

    pub fn queue_exists(name: &str) -> SqsError {
        SqsError::new(
            "QueueNameExists",
            "QueueAlreadyExists",
            format!("A queue already exists with the same name and a different value for attribute(s): {name}"),
        )
    }

    pub fn receipt_invalid(handle: &str) -> SqsError {
        SqsError::new(
            "ReceiptHandleIsInvalid",
            "ReceiptHandleIsInvalid",
            format!("The input receipt handle \"{handle}\" is not a valid receipt handle."),
        )
    }

    pub fn not_in_flight() -> SqsError {
        SqsError::new(
            "MessageNotInflight",
            "AWS.SimpleQueueService.MessageNotInflight",
            "The message referred to isn't in flight.",
        )
    }

    pub fn too_many_entries(n: usize) -> SqsError {
        SqsError::new(
            "TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            format!("Maximum number of entries per request are 10. You have sent {n}."),
        )
    }

    pub fn empty_batch() -> SqsError {
        SqsError::new(
            "EmptyBatchRequest",
            "AWS.SimpleQueueService.EmptyBatchRequest",
            "There should be at least one entry in the request.",
        )
    }

    pub fn duplicate_ids() -> SqsError {
        SqsError::new(
            "BatchEntryIdsNotDistinct",
            "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
            "Two or more batch entries in the request have the same Id.",
        )
    }

    pub fn bad_entry_id(id: &str) -> SqsError {
        SqsError::new(
            "InvalidBatchEntryId",
            "AWS.SimpleQueueService.InvalidBatchEntryId",
            format!("A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long: `{id}`."),
        )
    }

    pub fn batch_too_long(total: usize) -> SqsError {
        SqsError::new(
            "BatchRequestTooLong",
            "AWS.SimpleQueueService.BatchRequestTooLong",
            format!("Batch requests cannot be longer than 262144 bytes. You have sent {total} bytes."),
        )
    }

    pub fn unsupported(operation: &str) -> SqsError {
        SqsError::new(
            "UnsupportedOperation",
            "AWS.SimpleQueueService.UnsupportedOperation",
            format!("Sylph does not serve the SQS operation {operation} (yet)."),
        )
    }

    pub fn malformed(message: impl Into<String>) -> SqsError {
        SqsError::new("InvalidParameterValue", "MalformedQueryString", message)
    }

    pub fn internal(message: impl Into<String>) -> SqsError {
        SqsError {
            code: "InternalError",
            query_code: "InternalError",
            message: message.into(),
            sender: false,
        }
    }
}
