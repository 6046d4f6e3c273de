//! Order-preserving byte encodings of key values, so that the storage engine's byte order is
//! DynamoDB's key order: numbers numerically, strings and binary bytewise.
//!
//! Each encoding is self-delimiting, so a partition key followed by a sort key sorts by
//! (partition, sort).

use crate::number::Number;
use crate::value::Value;

/// Append the encoding of a key value (S, N or B) to `out`.
pub fn encode_key_value(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::S(s) => escape(s.as_bytes(), out),
        Value::B(b) => escape(b, out),
        Value::N(n) => encode_number(n, out),
        // Key attributes are validated to be S, N or B before they get here.
        _ => out.push(0),
    }
}

/// Bytes with 0x00 escaped as 0x00 0xFF and a 0x00 0x01 terminator, which keeps bytewise order
/// and makes the encoding prefix-free.
fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len() + 2);
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 1]);
}

fn encode_number(n: &Number, out: &mut Vec<u8>) {
    if n.is_zero() {
        out.push(0x02);
        return;
    }
    let (digits, exponent) = n.digits_and_adjusted_exponent();
    let biased = (exponent + 1000) as u16;
    if n.is_negative() {
        // Larger magnitude sorts first: invert the exponent and the digits; 0xFF terminates so a
        // longer digit string (a larger magnitude) sorts before its prefix.
        out.push(0x01);
        out.extend_from_slice(&(!biased).to_be_bytes());
        out.extend(digits.bytes().map(|d| 0xFF - d));
        out.push(0xFF);
    } else {
        out.push(0x03);
        out.extend_from_slice(&biased.to_be_bytes());
        out.extend_from_slice(digits.as_bytes());
        out.push(0x00);
    }
}

/// The smallest byte string greater than every string that starts with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode_key_value(v, &mut out);
        out
    }

    fn num(s: &str) -> Value {
        Value::N(Number::parse(s).unwrap())
    }

    #[test]
    fn numbers_sort_numerically() {
        let vals = [
            "-1000", "-10.5", "-10", "-1.23", "-1.2", "-0.001", "0", "0.001", "1.2", "1.23", "10", "10.5", "1000",
        ];
        let encoded: Vec<Vec<u8>> = vals.iter().map(|s| enc(&num(s))).collect();
        for w in encoded.windows(2) {
            assert!(w[0] < w[1]);
        }
    }

    #[test]
    fn composite_keys_sort_by_partition_then_sort() {
        let key = |p: &str, s: &str| {
            let mut out = enc(&Value::S(p.into()));
            encode_key_value(&Value::S(s.into()), &mut out);
            out
        };
        assert!(key("a", "z") < key("ab", "a"));
        assert!(key("a\0", "a") > key("a", "zzz"));
    }

    proptest! {
        #[test]
        fn number_encoding_preserves_order(a in -1.0e12f64..1.0e12, b in -1.0e12f64..1.0e12) {
            let (x, y) = (Number::parse(&format!("{a}")).unwrap(), Number::parse(&format!("{b}")).unwrap());
            prop_assert_eq!(x.cmp(&y), enc(&Value::N(x.clone())).cmp(&enc(&Value::N(y.clone()))));
        }

        #[test]
        fn string_encoding_preserves_order(a in ".{0,8}", b in ".{0,8}") {
            prop_assert_eq!(a.as_bytes().cmp(b.as_bytes()), enc(&Value::S(a.clone())).cmp(&enc(&Value::S(b.clone()))));
        }

        #[test]
        fn binary_encoding_preserves_order(a in proptest::collection::vec(any::<u8>(), 0..8), b in proptest::collection::vec(any::<u8>(), 0..8)) {
            prop_assert_eq!(a.cmp(&b), enc(&Value::B(a.clone())).cmp(&enc(&Value::B(b.clone()))));
        }
    }
}
