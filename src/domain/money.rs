//! Amounts of money: integers in the currency's minor unit (4900 = 49.00).

/// The largest amount accepted: 10^13 minor units (a hundred billion euros), so that sums
/// over millions of purchases stay far from overflow.
pub const MAX_AMOUNT: i64 = 10_000_000_000_000;

/// An amount from 0 to [`MAX_AMOUNT`] minor units.
pub fn money(value: i64) -> Result<i64, String> {
    if (0..=MAX_AMOUNT).contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "must be from 0 to {MAX_AMOUNT} minor units (an integer: 4900 for 49.00)"
        ))
    }
}
