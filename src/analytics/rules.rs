//! The value aspects' arithmetic, without a database: the lifetime potential m·r/(1 + d − r)
//! and the demand contribution (DOMAIN.md sections 5 and 9).

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::json::RetentionRate;
use crate::http::error::FieldError;

/// The most a measured retention rate is taken as: 1 + d − this, so the potential stays
/// finite (at most 100 · m · r).
pub const RETENTION_CAP_MARGIN: f64 = 0.01;

/// The Pareto ranking's default period ending with day `to`: the 365 days `to` − 364 to
/// `to`, both included (one definition for the page and the ranking each computation keeps).
pub fn default_period(to: NaiveDate) -> (NaiveDate, NaiveDate) {
    (
        to.checked_sub_days(chrono::Days::new(364)).unwrap_or(to),
        to,
    )
}

/// Checks the rates of the settings: r from 0 to 1 (or measured), d from 0 to 1, and with a
/// fixed r, 1 + d − r above 0 (else the formula has no finite value).
pub fn rates(retention: RetentionRate, discount: f64) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let d_ok = discount.is_finite() && (0.0..=1.0).contains(&discount);
    if !d_ok {
        errors.push(FieldError::new("discount_rate", "must be from 0 to 1"));
    }
    if let RetentionRate::Fixed(r) = retention {
        if !(r.is_finite() && (0.0..=1.0).contains(&r)) {
            errors.push(FieldError::new(
                "retention_rate",
                "must be from 0 to 1, or \"measured\"",
            ));
        } else if d_ok && 1.0 + discount - r <= 0.0 {
            errors.push(FieldError::new(
                "retention_rate",
                "must keep 1 + discount_rate − retention_rate above 0 (the lifetime potential \
                 m·r/(1 + d − r) would be infinite)",
            ));
        }
    }
    errors
}

/// The measured retention rate: retained ÷ last year's buyers; `None` without last year's
/// buyers.
pub fn measured_retention(retained: i64, last_year_buyers: i64) -> Option<f64> {
    (last_year_buyers > 0).then(|| retained as f64 / last_year_buyers as f64)
}

/// The retention rate used for a discount rate: a measured one capped at 1 + d − 0.01.
pub fn capped(measured: f64, discount: f64) -> f64 {
    measured.min(1.0 + discount - RETENTION_CAP_MARGIN)
}

/// m · r / (1 + d − r), rounded half away from zero to the minor unit.
pub fn lifetime_potential(m: i64, r: f64, d: f64) -> Option<i64> {
    let denominator = 1.0 + d - r;
    if denominator <= 0.0 {
        return None;
    }
    let value = (m as f64 * r / denominator).round();
    value.is_finite().then_some(value as i64)
}

/// part ÷ whole × 100, rounded half away from zero to 2 decimals, exactly; `None` when the
/// whole is 0.
pub fn percent(part: i64, whole: i64) -> Option<f64> {
    if whole == 0 {
        return None;
    }
    let (num, den) = (i128::from(part) * 100, i128::from(whole));
    let (num, den) = if den < 0 { (-num, -den) } else { (num, den) };
    let hundredths = (200 * num.abs() + den) / (2 * den);
    Some(num.signum() as f64 * hundredths as f64 / 100.0)
}

/// `total / n` rounded half away from zero, in integers.
pub fn average(total: i64, n: i64) -> i64 {
    if n == 0 {
        return 0;
    }
    let (q, r) = (total / n, total % n);
    if 2 * r.abs() >= n {
        q + total.signum()
    } else {
        q
    }
}

/// The calendar months that `[from, to]` touches, each cut to it: (first day, last day).
pub fn months(from: NaiveDate, to: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let next = next_month(start);
        let end = next
            .and_then(|n| n.pred_opt())
            .map_or(to, |last| last.min(to));
        out.push((start, end));
        match next {
            Some(n) => start = n,
            None => break,
        }
    }
    out
}

fn next_month(day: NaiveDate) -> Option<NaiveDate> {
    let (y, m) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
}

/// A share to 4 decimals; `None` when the whole is 0.
pub fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0)
}

/// Days between two times, to 2 decimals.
pub fn days_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    ((to - from).num_seconds() as f64 / 86_400.0 * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_cut_to_the_period() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(
            months(d(2026, 1, 15), d(2026, 3, 10)),
            [
                (d(2026, 1, 15), d(2026, 1, 31)),
                (d(2026, 2, 1), d(2026, 2, 28)),
                (d(2026, 3, 1), d(2026, 3, 10)),
            ]
        );
        // Across a year's end; one day.
        assert_eq!(
            months(d(2025, 12, 31), d(2026, 1, 1)),
            [
                (d(2025, 12, 31), d(2025, 12, 31)),
                (d(2026, 1, 1), d(2026, 1, 1))
            ]
        );
        assert_eq!(
            months(d(2026, 5, 5), d(2026, 5, 5)),
            [(d(2026, 5, 5), d(2026, 5, 5))]
        );
    }

    #[test]
    fn rates_round_to_four_decimals_and_need_a_whole() {
        assert_eq!(rate(1, 3), Some(0.3333));
        assert_eq!(rate(2, 3), Some(0.6667));
        assert_eq!(rate(0, 5), Some(0.0));
        assert_eq!(rate(0, 0), None);
    }
    use crate::analytics::json::Measured;

    #[test]
    fn averages_round_half_away_from_zero() {
        assert_eq!(average(10, 4), 3);
        assert_eq!(average(9, 4), 2);
        assert_eq!(average(100, 3), 33);
        assert_eq!(average(0, 0), 0);
        assert_eq!(average(7, 1), 7);
    }

    #[test]
    fn the_lifetime_potential_is_m_r_over_1_plus_d_minus_r() {
        // 10 000 · 0.8 / (1 + 0.1 − 0.8) = 8 000 / 0.3 = 26 666.67 → 26 667.
        assert_eq!(lifetime_potential(10_000, 0.8, 0.1), Some(26_667));
        // r = 0: nothing after this year.
        assert_eq!(lifetime_potential(10_000, 0.0, 0.1), Some(0));
        // r = 1, d = 0.1: 10 000 / 0.1 = 100 000.
        assert_eq!(lifetime_potential(10_000, 1.0, 0.1), Some(100_000));
        assert_eq!(lifetime_potential(10_000, 1.0, 0.0), None);
        // A negative m (refunds over profit) stays negative.
        assert_eq!(lifetime_potential(-300, 0.5, 0.0), Some(-300));
    }

    #[test]
    fn a_measured_retention_of_one_is_capped_below_1_plus_d() {
        assert_eq!(measured_retention(3, 3), Some(1.0));
        assert_eq!(measured_retention(0, 0), None);
        assert_eq!(capped(1.0, 0.0), 0.99);
        assert_eq!(capped(1.0, 0.1), 1.0);
        assert_eq!(capped(0.5, 0.0), 0.5);
        // 10 000 · 0.99 / 0.01 = 990 000.
        assert_eq!(
            lifetime_potential(10_000, capped(1.0, 0.0), 0.0),
            Some(990_000)
        );
    }

    #[test]
    fn rates_are_checked() {
        let fixed = RetentionRate::Fixed;
        let measured = RetentionRate::Measured(Measured::Measured);
        let fields = |r, d| -> Vec<String> { rates(r, d).into_iter().map(|e| e.field).collect() };
        assert!(fields(fixed(0.8), 0.1).is_empty());
        assert!(fields(fixed(1.0), 0.05).is_empty());
        assert!(fields(measured, 0.0).is_empty());
        assert_eq!(fields(fixed(1.0), 0.0), ["retention_rate"]);
        assert_eq!(fields(fixed(1.5), 0.1), ["retention_rate"]);
        assert_eq!(fields(fixed(-0.1), 0.1), ["retention_rate"]);
        assert_eq!(fields(fixed(0.5), -0.1), ["discount_rate"]);
        assert_eq!(fields(measured, 1.5), ["discount_rate"]);
    }

    #[test]
    fn percents_round_half_away_from_zero() {
        assert_eq!(percent(1, 3), Some(33.33));
        assert_eq!(percent(2, 3), Some(66.67));
        assert_eq!(percent(1, 8), Some(12.5));
        assert_eq!(percent(5, 0), None);
        assert_eq!(percent(-1, 8), Some(-12.5));
    }
}
