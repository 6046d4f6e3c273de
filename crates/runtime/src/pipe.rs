//! A faster channel between Sylph and its own runtime clients (the Node.js and Python
//! bootstraps): length-prefixed frames over a socketpair inherited as fd 3, instead of two HTTP
//! exchanges per invocation. It carries exactly what the Runtime API carries, through the same
//! [`ApiState`]; the HTTP Runtime API stays up for every other client (`provided.*` runtimes,
//! the official runtime interface clients).
//!
//! Frames: `u32` little-endian length of what follows, one type byte, then the payload.
//! - runtime → Sylph: `N` next; `R` response (`u16` id length, id, body); `E` error (`u16` id
//!   length, id, `u16` type length, error type, body); `I` init error (`u16` type length, type,
//!   body).
//! - Sylph → runtime: `V` invocation (`u32` header length, header JSON with requestId,
//!   deadlineMs, invokedFunctionArn, traceId, clientContext, cognitoIdentity; then the event).

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::api::{complete_reply, take_next, ApiState, Reply, Status};
use crate::MAX_RESPONSE_BYTES;

/// The file descriptor the runtime finds the channel on.
pub const RUNTIME_FD: i32 = 3;

fn take_str<'a>(buf: &mut &'a [u8]) -> Option<&'a [u8]> {
    if buf.len() < 2 {
        return None;
    }
    let n = u16::from_le_bytes([buf[0], buf[1]]) as usize;
    if buf.len() < 2 + n {
        return None;
    }
    let s = &buf[2..2 + n];
    *buf = &buf[2 + n..];
    Some(s)
}

/// One frame from a runtime, parsed; ids, types and bodies borrow from the frame (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Ready for the next invocation.
    Next,
    Response {
        id: &'a [u8],
        body: &'a [u8],
    },
    Error {
        id: &'a [u8],
        error_type: &'a [u8],
        body: &'a [u8],
    },
    InitError {
        error_type: &'a [u8],
        body: &'a [u8],
    },
}

/// Parse one frame (type byte and payload, the length prefix already taken). `None` for a
/// frame that is empty, truncated or of an unknown type: the channel is then closed.
pub fn parse_frame(frame: &[u8]) -> Option<Frame<'_>> {
    let (&kind, mut rest) = frame.split_first()?;
    Some(match kind {
        b'N' => Frame::Next,
        b'R' => {
            let id = take_str(&mut rest)?;
            Frame::Response { id, body: rest }
        }
        b'E' => {
            let id = take_str(&mut rest)?;
            let error_type = take_str(&mut rest)?;
            Frame::Error {
                id,
                error_type,
                body: rest,
            }
        }
        b'I' => {
            let error_type = take_str(&mut rest)?;
            Frame::InitError { error_type, body: rest }
        }
        _ => return None,
    })
}

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
        let Some(parsed) = parse_frame(&frame) else { return };
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
                let mut out = Vec::with_capacity(9 + header.len() + d.payload.len());
                out.extend_from_slice(&((1 + 4 + header.len() + d.payload.len()) as u32).to_le_bytes());
                out.push(b'V');
                out.extend_from_slice(&(header.len() as u32).to_le_bytes());
                out.extend_from_slice(header.as_bytes());
                out.extend_from_slice(&d.payload);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_bad_ones_are_refused() {
        assert_eq!(parse_frame(b"N"), Some(Frame::Next));
        assert_eq!(
            parse_frame(b"R\x02\x00idbody"),
            Some(Frame::Response {
                id: b"id",
                body: b"body"
            })
        );
        assert_eq!(
            parse_frame(b"E\x01\x00i\x01\x00tb"),
            Some(Frame::Error {
                id: b"i",
                error_type: b"t",
                body: b"b"
            })
        );
        assert_eq!(parse_frame(b""), None);
        assert_eq!(parse_frame(b"R\xff\xffshort"), None, "an id longer than the frame");
        assert_eq!(parse_frame(b"Z"), None);
    }
}
