//! The frame protocol between Sylph and its runtime bootstraps: a stream of length-prefixed
//! frames from a (possibly hostile) function process.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sylph_runtime::pipe::{parse_frame, Frame};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while rest.len() >= 4 {
        let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[4..];
        if n == 0 || n > rest.len() {
            break;
        }
        let (frame, next) = rest.split_at(n);
        match parse_frame(frame) {
            Some(Frame::Response { id, body }) => assert!(id.len() + body.len() < frame.len()),
            Some(Frame::Error { id, error_type, body }) => {
                assert!(id.len() + error_type.len() + body.len() < frame.len())
            }
            Some(Frame::InitError { error_type, body }) => assert!(error_type.len() + body.len() < frame.len()),
            Some(Frame::Next) | None => {}
        }
        rest = next;
    }
});
