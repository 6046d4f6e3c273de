//! The SQS-compatible queue service: queues and their messages (visibility timeouts, delays,
//! retention, redrive to a dead-letter queue, FIFO order per message group with
//! deduplication), kept durably on disk ([`store`]), and the two wire protocols SDKs speak
//! ([`wire`]: AWS JSON 1.0 with `X-Amz-Target: AmazonSQS.*`, and the older query protocol).
//!
//! It knows nothing of functions: the `sqs` event source (in `sylph-events`) and the gateway
//! call the typed operations on [`Queues`].

pub mod error;
pub mod service;
pub mod store;
pub mod wire;

pub use error::SqsError;
pub use service::{MessageAttribute, Outgoing, Queues, ReceiveOptions, Received, Sent};
