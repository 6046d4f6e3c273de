//! Integration tests for manifest loading: variables, defaults, the model, and error snapshots.

mod ui;
mod variables;
