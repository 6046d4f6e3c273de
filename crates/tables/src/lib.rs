//! Sylph's table service: a durable, DynamoDB-compatible store that the AWS SDKs use unchanged.
//!
//! - [`value`] and [`number`]: DynamoDB's data model (38-digit decimal numbers, sets, maps, …).
//! - [`expr`]: the expression languages (conditions, filters, key conditions, updates,
//!   projections) and [`legacy`] for the pre-expression parameters.
//! - [`catalog`]: table descriptions; [`keys`]: order-preserving key encodings.
//! - [`storage`]: the small storage trait and its embedded engine (redb).
//! - [`service`]: the operations, behind one group-committing writer; [`Tables::handle`] answers
//!   the JSON protocol (`X-Amz-Target: DynamoDB_20120810.<Operation>`).
//! - [`partiql`]: PartiQL statements (ExecuteStatement, BatchExecuteStatement,
//!   ExecuteTransaction) on the same condition and update trees as the expressions.
//! - [`stats`]: item counts and sizes, kept by every write (DescribeTable reads them).
//! - [`stream`]: table streams, written with the changes they record, and the DynamoDB Streams
//!   API over them.
//!
//! It knows nothing of functions or of HTTP beyond the JSON bodies.

mod batch;
pub mod catalog;
mod codec;
pub mod error;
pub mod expr;
mod items;
pub mod keys;
pub mod legacy;
mod manage;
pub mod number;
pub mod partiql;
pub mod provision;
mod query;
mod request;
pub mod service;
pub mod stats;
pub mod storage;
pub mod stream;
pub mod value;
mod writer;

pub use error::{DbError, ErrorKind};
pub use service::Tables;
