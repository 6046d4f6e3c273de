//! End-to-end tests: the real `sylph` binary, real function processes, real sockets, and the
//! real AWS SDK clients and runtime interface clients.

mod harness;

mod async_events;
mod authorizers;
mod bundling;
mod connections;
mod errors;
mod events;
mod iam;
mod invoke_api;
mod invoke_local;
mod isolation;
mod java;
mod jwt;
mod layers;
mod limits;
mod logs;
mod metrics;
mod prewarm;
mod queues;
mod runtimes;
mod sandbox;
mod scaling;
mod server;
mod shutdown;
mod streams;
mod tables;
mod throttle;
mod todo;
mod wasm;
mod websocket;
mod wsgi;
