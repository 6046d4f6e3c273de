//! The frames Sylph and its own runtime clients (the Node.js and Python bootstraps) exchange
//! over the socketpair each such runtime inherits as fd 3. One type describes every frame in
//! both directions; `pipe.rs` serves the channel, the pre-started runtimes use `Ready` and
//! `Start`, and the bootstraps (`bootstrap/node.js`, `bootstrap/python.py`) speak the same
//! layout.
//!
//! On the wire: a `u32` little-endian length of what follows, one type byte, then the payload.
//! Strings inside a payload are a `u16` little-endian length and the bytes; the last field of a
//! frame (a body, an event) runs to its end.

/// One frame. Its fields borrow from the buffer it was decoded from (no copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    // Runtime → Sylph.
    /// `N`: ready for the next invocation.
    Next,
    /// `R`: the answer to invocation `id`.
    Response { id: &'a [u8], body: &'a [u8] },
    /// `E`: invocation `id` failed with `error_type` (may be empty).
    Error {
        id: &'a [u8],
        error_type: &'a [u8],
        body: &'a [u8],
    },
    /// `I`: the runtime could not initialize (the handler failed to load).
    InitError { error_type: &'a [u8], body: &'a [u8] },
    /// `W`: a pre-started runtime finished loading what every function of its language loads.
    Ready,
    // Sylph → runtime.
    /// `V`: an invocation. `header` is JSON (requestId, deadlineMs, invokedFunctionArn,
    /// traceId, clientContext, cognitoIdentity); its length is a `u32`, as it may be large.
    Invocation { header: &'a [u8], event: &'a [u8] },
    /// `S`: tells a pre-started runtime which function it now is: JSON `{"env", "cwd"}`.
    Start { spec: &'a [u8] },
}

/// Why bytes are not a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("frame type {0:#04x} is unknown")]
    UnknownType(u8),
    #[error("frame ends inside a length-prefixed field")]
    Truncated,
    #[error("frame has bytes after its end")]
    TrailingBytes,
}

/// Bytes before a frame's type byte: its length.
pub const LENGTH_BYTES: usize = 4;

impl<'a> Frame<'a> {
    fn kind(&self) -> u8 {
        match self {
            Frame::Next => b'N',
            Frame::Response { .. } => b'R',
            Frame::Error { .. } => b'E',
            Frame::InitError { .. } => b'I',
            Frame::Ready => b'W',
            Frame::Invocation { .. } => b'V',
            Frame::Start { .. } => b'S',
        }
    }

    /// The length-prefixed fields of the payload, and the part that runs to the end.
    fn parts(&self) -> ([Option<&'a [u8]>; 2], &'a [u8]) {
        match *self {
            Frame::Next | Frame::Ready => ([None, None], &[]),
            Frame::Response { id, body } => ([Some(id), None], body),
            Frame::Error { id, error_type, body } => ([Some(id), Some(error_type)], body),
            Frame::InitError { error_type, body } => ([Some(error_type), None], body),
            Frame::Invocation { header, event } => ([Some(header), None], event),
            Frame::Start { spec } => ([None, None], spec),
        }
    }

    /// Width of the length of this frame type's prefixed fields.
    fn field_length_bytes(kind: u8) -> usize {
        if kind == b'V' {
            4
        } else {
            2
        }
    }

    /// A length-prefixed field as it is written: cut to what its length prefix can say.
    fn written(field: &[u8], width: usize) -> &[u8] {
        let most = if width == 2 {
            u16::MAX as usize
        } else {
            u32::MAX as usize
        };
        &field[..field.len().min(most)]
    }

    /// Bytes this frame takes on the wire, length prefix included.
    pub fn encoded_len(&self) -> usize {
        let width = Self::field_length_bytes(self.kind());
        let (fields, rest) = self.parts();
        LENGTH_BYTES
            + 1
            + fields
                .iter()
                .flatten()
                .map(|f| width + Self::written(f, width).len())
                .sum::<usize>()
            + rest.len()
    }

    /// Append the frame, length prefix included, to `out`. Fields longer than their length
    /// prefix allows are cut to it (ids and error types are short; headers far below 4 GB);
    /// whole frames are bounded far below 4 GB by Lambda's payload limits.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let kind = self.kind();
        let width = Self::field_length_bytes(kind);
        out.reserve(self.encoded_len());
        out.extend_from_slice(&((self.encoded_len() - LENGTH_BYTES) as u32).to_le_bytes());
        out.push(kind);
        let (fields, rest) = self.parts();
        for field in fields.into_iter().flatten() {
            let field = Self::written(field, width);
            if width == 2 {
                out.extend_from_slice(&(field.len() as u16).to_le_bytes());
            } else {
                out.extend_from_slice(&(field.len() as u32).to_le_bytes());
            }
            out.extend_from_slice(field);
        }
        out.extend_from_slice(rest);
    }

    /// The frame as bytes, length prefix included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decode one frame: its type byte and payload, the length prefix already taken.
    pub fn decode(frame: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        let (&kind, mut rest) = frame.split_first().ok_or(FrameError::Empty)?;
        let width = Self::field_length_bytes(kind);
        let field = |rest: &mut &'a [u8]| take_field(rest, width).ok_or(FrameError::Truncated);
        // The last field (a body, an event, a spec) is what is left: it runs to the end.
        Ok(match kind {
            // These carry nothing; anything after the type byte is not the frame Sylph knows.
            b'N' | b'W' if !rest.is_empty() => return Err(FrameError::TrailingBytes),
            b'N' => Frame::Next,
            b'W' => Frame::Ready,
            b'R' => {
                let id = field(&mut rest)?;
                Frame::Response { id, body: rest }
            }
            b'E' => {
                let id = field(&mut rest)?;
                let error_type = field(&mut rest)?;
                Frame::Error {
                    id,
                    error_type,
                    body: rest,
                }
            }
            b'I' => {
                let error_type = field(&mut rest)?;
                Frame::InitError { error_type, body: rest }
            }
            b'V' => {
                let header = field(&mut rest)?;
                Frame::Invocation { header, event: rest }
            }
            b'S' => Frame::Start { spec: rest },
            other => return Err(FrameError::UnknownType(other)),
        })
    }
}

/// Take one length-prefixed field (`width` is 2 or 4 bytes of little-endian length).
fn take_field<'a>(buf: &mut &'a [u8], width: usize) -> Option<&'a [u8]> {
    let len_bytes = buf.get(..width)?;
    let n = len_bytes.iter().rev().fold(0usize, |n, &b| (n << 8) | b as usize);
    let field = buf.get(width..width.checked_add(n)?)?;
    *buf = &buf[width + n..];
    Some(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<Frame<'static>> {
        vec![
            Frame::Next,
            Frame::Ready,
            Frame::Response {
                id: b"8f2c-request",
                body: br#"{"statusCode":200}"#,
            },
            Frame::Response { id: b"", body: b"" },
            Frame::Error {
                id: b"id",
                error_type: b"Error",
                body: br#"{"errorMessage":"boom"}"#,
            },
            Frame::Error {
                id: b"id",
                error_type: b"",
                body: b"",
            },
            Frame::InitError {
                error_type: b"Runtime.ImportModuleError",
                body: b"{}",
            },
            Frame::Invocation {
                header: br#"{"requestId":"r"}"#,
                event: b"{\"a\":1}",
            },
            Frame::Start {
                spec: br#"{"env":{},"cwd":"/srv"}"#,
            },
        ]
    }

    #[test]
    fn every_frame_round_trips() {
        for frame in every_kind() {
            let bytes = frame.to_bytes();
            assert_eq!(bytes.len(), frame.encoded_len(), "{frame:?}");
            let declared = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
            assert_eq!(declared, bytes.len() - LENGTH_BYTES, "{frame:?}");
            assert_eq!(Frame::decode(&bytes[LENGTH_BYTES..]), Ok(frame));
        }
    }

    #[test]
    fn the_wire_layout_is_what_the_bootstraps_speak() {
        assert_eq!(Frame::Next.to_bytes(), b"\x01\x00\x00\x00N");
        assert_eq!(Frame::Ready.to_bytes(), b"\x01\x00\x00\x00W");
        assert_eq!(
            Frame::Response {
                id: b"id",
                body: b"body"
            }
            .to_bytes(),
            b"\x09\x00\x00\x00R\x02\x00idbody"
        );
        assert_eq!(
            Frame::Invocation {
                header: b"{}",
                event: b"e"
            }
            .to_bytes(),
            b"\x08\x00\x00\x00V\x02\x00\x00\x00{}e"
        );
    }

    #[test]
    fn an_over_long_field_is_cut_and_the_length_says_so() {
        let id = vec![b'i'; 70_000];
        let frame = Frame::Response { id: &id, body: b"b" };
        let bytes = frame.to_bytes();
        assert_eq!(bytes.len(), frame.encoded_len());
        let declared = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
        assert_eq!(declared, bytes.len() - LENGTH_BYTES);
        assert_eq!(
            Frame::decode(&bytes[LENGTH_BYTES..]),
            Ok(Frame::Response {
                id: &id[..u16::MAX as usize],
                body: b"b"
            })
        );
    }

    #[test]
    fn broken_frames_are_refused() {
        assert_eq!(Frame::decode(b""), Err(FrameError::Empty));
        assert_eq!(Frame::decode(b"Z"), Err(FrameError::UnknownType(b'Z')));
        assert_eq!(
            Frame::decode(b"R\xff\xffshort"),
            Err(FrameError::Truncated),
            "an id longer than the frame"
        );
        assert_eq!(
            Frame::decode(b"E\x01\x00i"),
            Err(FrameError::Truncated),
            "no error type"
        );
        assert_eq!(Frame::decode(b"N\x00"), Err(FrameError::TrailingBytes));
        assert_eq!(Frame::decode(b"Wx"), Err(FrameError::TrailingBytes));
        assert_eq!(
            Frame::decode(b"V\x01\x00"),
            Err(FrameError::Truncated),
            "a cut header length"
        );
        assert_eq!(
            Frame::decode(b"V\xff\xff\xff\xff{}"),
            Err(FrameError::Truncated),
            "a header longer than the frame"
        );
    }
}
