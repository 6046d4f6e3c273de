//! The frame protocol between Sylph and its runtime bootstraps: a stream of length-prefixed
//! frames from a (possibly hostile) function process. Whatever decodes must encode back to the
//! same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sylph_runtime::frame::{Frame, LENGTH_BYTES};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while rest.len() >= LENGTH_BYTES {
        let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        rest = &rest[LENGTH_BYTES..];
        if n == 0 || n > rest.len() {
            break;
        }
        let (frame, next) = rest.split_at(n);
        if let Ok(decoded) = Frame::decode(frame) {
            assert_eq!(&decoded.to_bytes()[LENGTH_BYTES..], frame);
        }
        rest = next;
    }
});
