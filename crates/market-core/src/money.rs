//! Money: an integer amount in the currency's minor unit, never a float. The same [`Money`] goes
//! from the tier row to the purchase row to the Stripe request.

use std::fmt;

use sqlx::Row as _;
use sqlx::postgres::PgRow;

use crate::Error;
use crate::text::checked_string;

/// An amount of money in the currency's minor unit (cents for usd).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    /// A price: a positive amount.
    pub fn new(amount: i64, currency: Currency) -> Result<Self, Error> {
        if amount <= 0 {
            return Err(Error::invalid(
                "price.amount",
                "must be a positive number of minor units",
            ));
        }
        Ok(Self { amount, currency })
    }

    /// Money read back from columns the schema already checked: a row that breaks the rules is
    /// reported as a database error, not a panic.
    pub(crate) fn from_columns(amount: i64, currency: &str) -> Result<Self, sqlx::Error> {
        let currency = Currency::parse(currency).map_err(|e| sqlx::Error::Decode(e.into()))?;
        Ok(Self { amount, currency })
    }
}

/// A row's `amount` and `currency` columns (`#[sqlx(flatten)] price: Money` in a row type).
impl<'r> sqlx::FromRow<'r, PgRow> for Money {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Self::from_columns(row.try_get("amount")?, row.try_get("currency")?)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

/// An ISO 4217 currency code, lowercase as Stripe writes it (`usd`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: &str) -> Result<Self, Error> {
        let lower = s.trim().to_ascii_lowercase();
        if lower.len() == 3 && lower.bytes().all(|b| b.is_ascii_lowercase()) {
            Ok(Self(lower))
        } else {
            Err(Error::invalid(
                "currency",
                "must be a three-letter ISO 4217 code such as usd",
            ))
        }
    }
}

checked_string!(Currency);

/// The platform's share of a seller's sale, in basis points (1/100 of a percent): `1000` is 10 %.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeeRate(u16);

impl FeeRate {
    /// What the service takes when neither `MARKET_PLATFORM_FEE_BPS` nor the seller says otherwise.
    pub const DEFAULT: Self = Self(1000);

    pub fn from_bps(bps: i64) -> Result<Self, Error> {
        u16::try_from(bps)
            .ok()
            .filter(|bps| *bps <= 10_000)
            .map(Self)
            .ok_or_else(|| {
                Error::invalid(
                    "platform_fee_bps",
                    "must be a whole number of basis points from 0 to 10000 (1000 is 10 %)",
                )
            })
    }

    pub fn bps(self) -> u16 {
        self.0
    }

    /// The fee on `amount` minor units, rounded down (the seller keeps the odd cent).
    pub fn of(self, amount: i64) -> i64 {
        amount.saturating_mul(i64::from(self.0)) / 10_000
    }
}

impl Default for FeeRate {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_three_letters_and_lowercased() {
        assert_eq!(Currency::parse("USD").unwrap().as_str(), "usd");
        for bad in ["", "us", "usdd", "u$d", "12a"] {
            assert!(Currency::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_fee_rate_is_basis_points_from_0_to_10000_rounded_down_for_the_seller() {
        let rate = FeeRate::from_bps(1000).unwrap();
        assert_eq!(rate.of(1900), 190);
        assert_eq!(FeeRate::from_bps(250).unwrap().of(1999), 49);
        assert_eq!(FeeRate::from_bps(0).unwrap().of(1900), 0);
        assert_eq!(FeeRate::from_bps(10_000).unwrap().of(1900), 1900);
        for bad in [-1, 10_001, 70_000] {
            assert!(FeeRate::from_bps(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn money_must_be_positive() {
        let usd = Currency::parse("usd").unwrap();
        assert!(Money::new(1900, usd.clone()).is_ok());
        assert!(Money::new(0, usd.clone()).is_err());
        assert!(Money::new(-5, usd).is_err());
    }

    #[test]
    fn money_read_from_a_row_with_a_bad_currency_is_a_decode_error() {
        assert!(Money::from_columns(1900, "usd").is_ok());
        assert!(matches!(
            Money::from_columns(1900, "dollars"),
            Err(sqlx::Error::Decode(_))
        ));
    }
}
