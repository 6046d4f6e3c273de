//! A faster channel between Sylph and its own runtime clients (the Node.js and Python
//! bootstraps): length-prefixed frames over a socketpair inherited as fd 3, instead of two HTTP
//! exchanges per invocation. It carries exactly what the Runtime API carries, through the same
//! [`ApiState`]; the HTTP Runtime API stays up for every other client (`provided.*` runtimes,
//! the official runtime interface clients).
//!
//! The frames are [`Frame`] (see `frame.rs` for the layout).

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::api::{complete_reply, take_next, ApiState, Reply, Status};
use crate::frame::Frame;
use crate::MAX_RESPONSE_BYTES;

/// The file descriptor the runtime finds the channel on.
pub const RUNTIME_FD: i32 = 3;

/// Serve one runtime until it closes the channel.
pub(crate) async fn serve(mut stream: UnixStream, state: Arc<ApiState>) {
    let mut len = [0u8; 4];
    loop {
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let n = u32::from_le_bytes(len) as usize;
        if n == 0 || n > MAX_RESPONSE_BYTES + 1024 {
            // A runtime that sends more than Lambda allows fails its invocation.
            let current = state
                .current
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map(|(id, _)| id.clone());
            if let Some(id) = current {
                complete_reply(&state, &id, Reply::TooLarge);
            }
            return;
        }
        let mut frame = vec![0u8; n];
        if stream.read_exact(&mut frame).await.is_err() {
            return;
        }
        // The body of a response or error is handed on as a slice of the frame: no copy.
        let frame = Bytes::from(frame);
        let Ok(parsed) = Frame::decode(&frame) else { return };
        match parsed {
            Frame::Next => {
                let Some(d) = take_next(&state).await else { return };
                let header = serde_json::json!({
                    "requestId": &*d.request_id,
                    "deadlineMs": d.deadline_ms,
                    "invokedFunctionArn": state.function_arn.to_str().unwrap_or_default(),
                    "traceId": d.trace_id,
                    "clientContext": d.client_context,
                    "cognitoIdentity": d.cognito_identity,
                })
                .to_string();
                let mut out = Vec::new();
                Frame::Invocation {
                    header: header.as_bytes(),
                    event: &d.payload,
                }
                .encode(&mut out);
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
            Frame::Response { id, body } => {
                let id = String::from_utf8_lossy(id).into_owned();
                let reply = if body.len() > MAX_RESPONSE_BYTES {
                    Reply::TooLarge
                } else {
                    Reply::Response(frame.slice_ref(body))
                };
                complete_reply(&state, &id, reply);
            }
            Frame::Error { id, error_type, body } => {
                let id = String::from_utf8_lossy(id).into_owned();
                let error_type = (!error_type.is_empty()).then(|| String::from_utf8_lossy(error_type).into_owned());
                complete_reply(
                    &state,
                    &id,
                    Reply::Error {
                        error_type,
                        body: frame.slice_ref(body),
                    },
                );
            }
            // Sylph's own frames, or a pre-started runtime's `Ready` out of turn: not a runtime's
            // to send now.
            Frame::Ready | Frame::Invocation { .. } | Frame::Start { .. } => return,
            Frame::InitError { error_type, body } => {
                let error_type = (!error_type.is_empty()).then(|| String::from_utf8_lossy(error_type).into_owned());
                let _ = state.status.send(Status::InitFailed {
                    error_type,
                    body: frame.slice_ref(body),
                });
            }
        }
    }
}
