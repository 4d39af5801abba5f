//! Scalars shared by the domains. `Money` is exact decimal text, never a Float.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

use crate::platform::money::Decimal;

/// An exact amount in the installation's base currency, as decimal text such as `"1234.50"`.
/// More decimal places than the currency has are refused, never rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Money(pub Decimal);

#[Scalar(name = "Money")]
impl ScalarType for Money {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(text) => text
                .parse::<Decimal>()
                .map(Money)
                .map_err(|e| InputValueError::custom(format!("Money {text:?}: {e}"))),
            _ => Err(InputValueError::custom(
                "Money is decimal text such as \"1234.50\", never a number",
            )),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_string())
    }
}

pub type Json = async_graphql::Json<serde_json::Value>;

/// A calendar date, `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date(pub chrono::NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            // Exactly YYYY-MM-DD with a year from 1900 to 9999: chrono alone also takes signed
            // and five-digit years, which text-ordered dates on SQLite would misplace.
            Value::String(text) => {
                let shaped = text.len() == 10
                    && text.bytes().enumerate().all(|(i, b)| {
                        if i == 4 || i == 7 {
                            b == b'-'
                        } else {
                            b.is_ascii_digit()
                        }
                    })
                    && text[..4] >= *"1900";
                chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                    .ok()
                    .filter(|_| shaped)
                    .map(Date)
                    .ok_or_else(|| {
                        InputValueError::custom(format!(
                            "Date {text:?} is not YYYY-MM-DD (1900–9999)"
                        ))
                    })
            }
            _ => Err(InputValueError::custom(
                "a Date is text such as \"2026-11-27\"",
            )),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}
