//! Exact money: decimal text in and out, integer minor units inside. No floating point anywhere.

use std::fmt;
use std::str::FromStr;

/// A decimal number exactly as written: `mantissa × 10^-scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub enum MoneyError {
    Malformed,
    TooManyDecimals { allowed: u32 },
    OutOfRange,
}

impl fmt::Display for MoneyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("not a decimal number such as \"1234.50\""),
            Self::TooManyDecimals { allowed } => {
                write!(
                    f,
                    "more than {allowed} decimal places; amounts are never rounded"
                )
            }
            Self::OutOfRange => f.write_str("amount out of range"),
        }
    }
}

/// At most 28 significant digits are accepted, far beyond any i64 amount in minor units.
const MAX_DIGITS: usize = 28;

impl FromStr for Decimal {
    type Err = MoneyError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let (negative, digits) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let (whole, fraction) = match digits.split_once('.') {
            Some((w, f)) => (w, f),
            None => (digits, ""),
        };
        let valid = !whole.is_empty()
            && whole.bytes().all(|b| b.is_ascii_digit())
            && fraction.bytes().all(|b| b.is_ascii_digit())
            && !(digits.contains('.') && fraction.is_empty());
        if !valid {
            return Err(MoneyError::Malformed);
        }
        if whole.len() + fraction.len() > MAX_DIGITS {
            return Err(MoneyError::OutOfRange);
        }
        let mut mantissa: i128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa * 10 + i128::from(b - b'0');
        }
        Ok(Self {
            mantissa: if negative { -mantissa } else { mantissa },
            scale: fraction.len() as u32,
        })
    }
}

impl Decimal {
    pub fn from_minor(minor: i64, exponent: u32) -> Self {
        Self::from_wide_minor(i128::from(minor), exponent)
    }

    /// For totals, which are summed in 128 bits so they never wrap.
    pub fn from_wide_minor(minor: i128, exponent: u32) -> Self {
        Self {
            mantissa: minor,
            scale: exponent,
        }
    }

    /// Minor units at `exponent` decimal places; more places than that are refused.
    pub fn to_minor(self, exponent: u32) -> Result<i64, MoneyError> {
        if self.scale > exponent {
            return Err(MoneyError::TooManyDecimals { allowed: exponent });
        }
        let factor = 10i128
            .checked_pow(exponent - self.scale)
            .ok_or(MoneyError::OutOfRange)?;
        let minor = self
            .mantissa
            .checked_mul(factor)
            .ok_or(MoneyError::OutOfRange)?;
        i64::try_from(minor).map_err(|_| MoneyError::OutOfRange)
    }

    /// Compares exactly, whatever the two scales.
    pub fn cmp_exact(&self, other: &Decimal) -> std::cmp::Ordering {
        let scale = self.scale.max(other.scale);
        let widen = |d: &Decimal| {
            d.mantissa
                .saturating_mul(10i128.saturating_pow(scale - d.scale))
        };
        widen(self).cmp(&widen(other))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let digits = self.mantissa.unsigned_abs().to_string();
        if self.scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let scale = self.scale as usize;
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{whole}.{fraction}")
    }
}

/// Decimal places of an ISO 4217 currency; two unless known otherwise.
pub fn currency_exponent(code: &str) -> u32 {
    match code {
        "JPY" | "KRW" | "VND" | "CLP" | "ISK" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "IQD" | "LYD" => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_and_prints_exactly() {
        for text in ["0", "1234.50", "-0.01", "99999999999.99", "7"] {
            assert_eq!(d(text).to_string(), text);
        }
        assert_eq!(Decimal::from_minor(123450, 2).to_string(), "1234.50");
        assert_eq!(Decimal::from_minor(-5, 2).to_string(), "-0.05");
        assert_eq!(Decimal::from_minor(5, 0).to_string(), "5");
        for bad in [
            "", "-", "1.", ".5", "1e5", "1,000", "NaN", "0x10", "1.2.3", " 1",
        ] {
            assert!(bad.parse::<Decimal>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn converts_to_minor_units_without_rounding() {
        assert_eq!(d("1234.5").to_minor(2), Ok(123450));
        assert_eq!(d("0.10").to_minor(2), Ok(10));
        assert_eq!(
            d("0.105").to_minor(2),
            Err(MoneyError::TooManyDecimals { allowed: 2 })
        );
        assert_eq!(
            d("100000000000000000000").to_minor(2),
            Err(MoneyError::OutOfRange)
        );
        let tenth = d("0.10").to_minor(2).unwrap_or_default();
        assert_eq!(Decimal::from_minor(tenth * 10, 2).to_string(), "1.00");
    }

    #[test]
    fn compares_across_scales() {
        use std::cmp::Ordering;
        assert_eq!(d("10000").cmp_exact(&d("10000.00")), Ordering::Equal);
        assert_eq!(d("9999.99").cmp_exact(&d("10000")), Ordering::Less);
        assert_eq!(d("-1").cmp_exact(&d("0.5")), Ordering::Less);
    }
}
