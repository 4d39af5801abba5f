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
