//! Event sources: everything that invokes functions other than a caller waiting for the
//! answer. [`queue::AsyncQueue`] is Lambda's asynchronous invocation — events kept durably
//! before they are acknowledged, run, retried after function errors with back-off, aged out,
//! and reported to `onSuccess` / `onFailure` destinations — and [`schedules::Scheduler`] turns
//! `schedule` events into such invocations at their times. Both sit on [`store::EventStore`].
//!
//! It knows nothing of HTTP, or of how `sylph dev` and `sylph server` find a service: it
//! reaches functions through the [`Functions`] trait and runs them through the invoker.

mod mapping;
pub mod payload;
pub mod queue;
pub mod schedules;
pub mod sqs;
pub mod store;
pub mod streams;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The function an event is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    pub service: String,
    pub stage: String,
    /// Its deployed name.
    pub function: String,
    /// The published version that accepted the event (`sylph server`), run while it is
    /// deployed; else wherever the service's traffic goes.
    pub version: Option<u32>,
}

/// What [`Functions::find`] found.
pub enum Lookup {
    /// The invoker running the target's function.
    Found(Arc<dyn sylph_invoker::Invoker>),
    /// The service is deployed but not running now (it failed to load): try again later.
    Later,
    /// Neither the service nor the function exists any more.
    Gone,
}

/// How event sources reach functions (`sylph dev`: its one service; `sylph server`: every
/// deployed version).
pub trait Functions: Send + Sync + 'static {
    /// Called before each attempt; must not block.
    fn find(&self, target: &Target) -> Lookup;
}

#[cfg(test)]
mod tests;
