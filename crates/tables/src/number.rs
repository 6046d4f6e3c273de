//! DynamoDB's Number: a decimal with up to 38 significant digits and a magnitude between
//! 1E-130 and 9.99…E+125, compared numerically and normalized (no trailing zeros). Never floating
//! point.

use std::cmp::Ordering;
use std::fmt;

/// `coefficient × 10^exponent`, negated if `negative`; the coefficient has no trailing zeros.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    coefficient: u128,
    exponent: i32,
}

pub const MAX_DIGITS: u32 = 38;
const MAX_ADJUSTED_EXPONENT: i32 = 125;
const MIN_ADJUSTED_EXPONENT: i32 = -130;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// DynamoDB's text: the value is named, unless it is empty.
    #[error("The parameter cannot be converted to a numeric value{}", if .0.is_empty() { String::new() } else { format!(": {}", .0) })]
    Invalid(String),
    #[error("Attempting to store more than 38 significant digits in a Number")]
    TooManyDigits,
    #[error("Number overflow. Attempting to store a number with magnitude larger than supported range")]
    Overflow,
    #[error("Number underflow. Attempting to store a number with magnitude smaller than supported range")]
    Underflow,
}

fn digit_count(mut n: u128) -> u32 {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

impl Number {
    pub const ZERO: Number = Number {
        negative: false,
        coefficient: 0,
        exponent: 0,
    };

    fn normalized(negative: bool, mut coefficient: u128, mut exponent: i32) -> Result<Number, NumberError> {
        if coefficient == 0 {
            return Ok(Number::ZERO);
        }
        while coefficient.is_multiple_of(10) {
            coefficient /= 10;
            exponent += 1;
        }
        let digits = digit_count(coefficient);
        if digits > MAX_DIGITS {
            return Err(NumberError::TooManyDigits);
        }
        let adjusted = exponent + digits as i32 - 1;
        if adjusted > MAX_ADJUSTED_EXPONENT {
            return Err(NumberError::Overflow);
        }
        if adjusted < MIN_ADJUSTED_EXPONENT {
            return Err(NumberError::Underflow);
        }
        Ok(Number {
            negative,
            coefficient,
            exponent,
        })
    }

    /// Parse DynamoDB's number syntax: an optional sign, digits with an optional point, an
    /// optional exponent. Anything else (spaces included, as DynamoDB refuses them) is invalid.
    pub fn parse(text: &str) -> Result<Number, NumberError> {
        let invalid = || NumberError::Invalid(text.to_owned());
        let s = text;
        let (negative, s) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (mantissa, exp_part) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let mut exponent: i64 = match exp_part {
            Some(e) => e.parse::<i64>().map_err(|_| invalid())?,
            None => 0,
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        let digits = format!("{int_part}{frac_part}");
        let digits = digits.trim_start_matches('0');
        exponent -= frac_part.len() as i64;
        if digits.is_empty() {
            return Ok(Number::ZERO);
        }
        let trimmed = digits.trim_end_matches('0');
        exponent += (digits.len() - trimmed.len()) as i64;
        if trimmed.len() > MAX_DIGITS as usize {
            return Err(NumberError::TooManyDigits);
        }
        let adjusted = exponent + trimmed.len() as i64 - 1;
        if adjusted > i64::from(MAX_ADJUSTED_EXPONENT) {
            return Err(NumberError::Overflow);
        }
        if adjusted < i64::from(MIN_ADJUSTED_EXPONENT) {
            return Err(NumberError::Underflow);
        }
        let coefficient: u128 = trimmed.parse().map_err(|_| invalid())?;
        Number::normalized(negative, coefficient, exponent as i32)
    }

    pub fn is_zero(&self) -> bool {
        self.coefficient == 0
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Decimal digits of the coefficient and the exponent of its first digit (for key encoding).
    pub fn digits_and_adjusted_exponent(&self) -> (String, i32) {
        let digits = self.coefficient.to_string();
        let adjusted = self.exponent + digits.len() as i32 - 1;
        (digits, adjusted)
    }

    fn negate(&self) -> Number {
        if self.is_zero() {
            return self.clone();
        }
        Number {
            negative: !self.negative,
            ..self.clone()
        }
    }

    /// Exact sum; an error if the result does not fit DynamoDB's Number. A sum that would need
    /// more than 38 digits is reported as an overflow, as DynamoDB does (not as a precision
    /// error, as storing such a number is).
    pub fn add(&self, other: &Number) -> Result<Number, NumberError> {
        self.add_exact(other).map_err(|e| match e {
            NumberError::TooManyDigits => NumberError::Overflow,
            other => other,
        })
    }

    fn add_exact(&self, other: &Number) -> Result<Number, NumberError> {
        if self.is_zero() {
            return Ok(other.clone());
        }
        if other.is_zero() {
            return Ok(self.clone());
        }
        let exponent = self.exponent.min(other.exponent);
        let scale = |n: &Number| -> Result<u128, NumberError> {
            let shift = (n.exponent - exponent) as u32;
            10u128
                .checked_pow(shift)
                .and_then(|p| n.coefficient.checked_mul(p))
                .ok_or(NumberError::TooManyDigits)
        };
        let (a, b) = (scale(self)?, scale(other)?);
        let (negative, coefficient) = if self.negative == other.negative {
            (self.negative, a.checked_add(b).ok_or(NumberError::TooManyDigits)?)
        } else if a >= b {
            (self.negative, a - b)
        } else {
            (other.negative, b - a)
        };
        Number::normalized(negative, coefficient, exponent)
    }

    pub fn sub(&self, other: &Number) -> Result<Number, NumberError> {
        self.add(&other.negate())
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => {
                return if other.negative {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, true) => {
                return if self.negative {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            _ => {}
        }
        if self.negative != other.negative {
            return if self.negative {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (da, ea) = self.digits_and_adjusted_exponent();
        let (db, eb) = other.digits_and_adjusted_exponent();
        // Same sign: compare magnitudes by leading exponent, then digit by digit.
        let magnitude = ea.cmp(&eb).then_with(|| da.as_bytes().cmp(db.as_bytes()));
        if self.negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Number {
    /// Plain notation, as DynamoDB returns numbers: `100`, `0.001`, `-1.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        if self.negative {
            f.write_str("-")?;
        }
        let digits = self.coefficient.to_string();
        if self.exponent >= 0 {
            f.write_str(&digits)?;
            for _ in 0..self.exponent {
                f.write_str("0")?;
            }
            Ok(())
        } else {
            let frac = (-self.exponent) as usize;
            if digits.len() > frac {
                let (i, d) = digits.split_at(digits.len() - frac);
                write!(f, "{i}.{d}")
            } else {
                f.write_str("0.")?;
                for _ in 0..frac - digits.len() {
                    f.write_str("0")?;
                }
                f.write_str(&digits)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        Number::parse(s).unwrap()
    }

    #[test]
    fn parses_and_normalizes() {
        assert_eq!(n("1.50").to_string(), "1.5");
        assert_eq!(n("1e2").to_string(), "100");
        assert_eq!(n("-0.00100").to_string(), "-0.001");
        assert_eq!(n("0000").to_string(), "0");
        assert_eq!(n("-0").to_string(), "0");
        assert_eq!(n("+7").to_string(), "7");
        assert_eq!(n(".5").to_string(), "0.5");
        assert_eq!(
            n("12345678901234567890123456789012345678").to_string(),
            "12345678901234567890123456789012345678"
        );
    }

    #[test]
    fn rejects_what_dynamodb_rejects() {
        for bad in [
            "abc", "", "1.2.3", "NaN", "Infinity", " 1", "1 ", "1e", "0x10", "+e2", ".",
        ] {
            assert_eq!(Number::parse(bad), Err(NumberError::Invalid(bad.to_owned())), "{bad:?}");
        }
        assert_eq!(
            NumberError::Invalid("dog".into()).to_string(),
            "The parameter cannot be converted to a numeric value: dog"
        );
        assert_eq!(
            NumberError::Invalid(String::new()).to_string(),
            "The parameter cannot be converted to a numeric value"
        );
        for good in ["+3", ".123", "0001.23", "1e+5", "5.", "-17e5"] {
            assert!(Number::parse(good).is_ok(), "{good:?}");
        }
        assert_eq!(
            Number::parse("123456789012345678901234567890123456789"),
            Err(NumberError::TooManyDigits)
        );
        assert_eq!(Number::parse("1e126"), Err(NumberError::Overflow));
        assert_eq!(Number::parse("1e-131"), Err(NumberError::Underflow));
        assert!(Number::parse("9.9999999999999999999999999999999999999E+125").is_ok());
        assert!(Number::parse("1E-130").is_ok());
    }

    #[test]
    fn orders_numerically() {
        let mut v: Vec<Number> = ["10", "-1", "2", "0", "-10.5", "1e-5", "-1e-5", "100", "1.25"]
            .iter()
            .map(|s| n(s))
            .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(Number::to_string).collect();
        assert_eq!(s, ["-10.5", "-1", "-0.00001", "0", "0.00001", "1.25", "2", "10", "100"]);
        assert_eq!(n("1.0").cmp(&n("1")), Ordering::Equal);
    }

    #[test]
    fn exact_arithmetic() {
        assert_eq!(n("0.1").add(&n("0.2")).unwrap().to_string(), "0.3");
        assert_eq!(n("5").sub(&n("7.5")).unwrap().to_string(), "-2.5");
        assert_eq!(n("-5").add(&n("5")).unwrap().to_string(), "0");
        // More than 38 digits in a sum: DynamoDB calls it an overflow.
        assert_eq!(n("1e100").add(&n("1e-100")), Err(NumberError::Overflow));
        assert_eq!(
            n("99999999999999999999999999999999999999")
                .add(&n("1"))
                .unwrap()
                .to_string(),
            "100000000000000000000000000000000000000"
        );
    }
}
