//! The sales forecast (DOMAIN.md section 7): revenue already closed plus the open pipeline
//! weighted by each stage's win probability, per currency, computed set-wise in one query.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime};
use diesel::QueryResult;
use diesel::sql_types::{BigInt, Date, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::json::{
    CurrencyForecast, Figures, Forecast, ForecastQuery, OwnerForecast, StageForecast, TargetFigures,
};
use crate::db::Prepare;
use crate::http::error::ApiError;
use crate::http::query::invalid;

/// The years a period may fall in.
const YEARS: std::ops::RangeInclusive<i32> = 1900..=2999;

/// Which opportunities a forecast counts: those of `owner_id` in `currency` (all when unset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub owner_id: Option<Uuid>,
    pub currency: Option<String>,
    /// Owned-only access: only opportunities of customers this user manages.
    pub account_manager_id: Option<Uuid>,
}

/// The owner and currency a forecast query asks for, checked.
pub fn filter(
    query: &ForecastQuery,
    access: crate::auth::CustomerAccess,
) -> Result<Filter, ApiError> {
    Ok(Filter {
        owner_id: query.owner_id,
        currency: crate::http::query::currency(query.currency.as_deref())?,
        account_manager_id: access.owner(),
    })
}

/// A forecast's period: `from` to `to`, both days included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub label: Option<String>,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

pub const PERIOD_FORMS: &str =
    "must be a year (`2026`), a quarter (`2026-Q4`) or a month (`2026-11`)";

fn year(text: &str) -> Option<i32> {
    (text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
        .filter(|y| YEARS.contains(y))
}

/// The months `first..=last` of `year` as a period labelled `label`.
fn months(label: &str, year: i32, first: u32, last: u32) -> Option<Period> {
    let from = NaiveDate::from_ymd_opt(year, first, 1)?;
    let after = if last == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, last + 1, 1)?
    };
    Some(Period {
        label: Some(label.to_owned()),
        from,
        to: after - Duration::days(1),
    })
}

/// Reads `2026`, `2026-Q4` or `2026-11`.
pub fn parse_period(text: &str) -> Option<Period> {
    let text = text.trim();
    match text.split_once('-') {
        None => months(text, year(text)?, 1, 12),
        Some((y, rest)) => {
            let y = year(y)?;
            if let Some(q) = rest.strip_prefix('Q') {
                let q: u32 = (q.len() == 1).then(|| q.parse().ok()).flatten()?;
                (1..=4).contains(&q).then_some(())?;
                months(text, y, 3 * q - 2, 3 * q)
            } else {
                let m: u32 = (rest.len() == 2 && rest.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| rest.parse().ok())
                    .flatten()?;
                (1..=12).contains(&m).then_some(())?;
                months(text, y, m, m)
            }
        }
    }
}

/// The period a forecast query asks for; the calendar quarter of `today` by default.
pub fn period(query: &ForecastQuery, today: NaiveDate) -> Result<Period, ApiError> {
    match (&query.period, query.from, query.to) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(invalid(
            "period",
            "goes without `from` and `to`; give one or the other",
        )),
        (Some(text), None, None) => {
            parse_period(text).ok_or_else(|| invalid("period", PERIOD_FORMS))
        }
        (None, Some(_), None) => Err(invalid("to", "is required with `from`")),
        (None, None, Some(_)) => Err(invalid("from", "is required with `to`")),
        (None, Some(from), Some(to)) => {
            for (field, day) in [("from", from), ("to", to)] {
                if !YEARS.contains(&day.year()) {
                    return Err(invalid(field, "must be a date from 1900 to 2999"));
                }
            }
            if to < from {
                return Err(invalid("to", "must not be before `from`"));
            }
            Ok(Period {
                label: None,
                from,
                to,
            })
        }
        (None, None, None) => {
            let q = (today.month() - 1) / 3 + 1;
            let label = format!("{}-Q{q}", today.year());
            months(&label, today.year(), 3 * q - 2, 3 * q)
                .ok_or_else(|| ApiError::internal("the current quarter is out of range"))
        }
    }
}

/// One group of the forecast query: a currency's total (`grp` 0), an owner (1) or a stage (2).
#[derive(Debug, diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    owner_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    stage: Option<String>,
    #[diesel(sql_type = Nullable<Int4>)]
    probability: Option<i32>,
    #[diesel(sql_type = Int4)]
    grp: i32,
    #[diesel(sql_type = BigInt)]
    won_amount: i64,
    #[diesel(sql_type = BigInt)]
    won_count: i64,
    #[diesel(sql_type = BigInt)]
    open_pipeline: i64,
    #[diesel(sql_type = BigInt)]
    open_count: i64,
    #[diesel(sql_type = BigInt)]
    weighted_open: i64,
}

impl Row {
    fn figures(&self) -> Figures {
        Figures {
            forecast: self.won_amount + self.weighted_open,
            won_amount: self.won_amount,
            won_count: self.won_count,
            weighted_open: self.weighted_open,
            open_pipeline: self.open_pipeline,
            open_count: self.open_count,
        }
    }
}

/// Every figure of the forecast in one pass: the won opportunities closed in the period and
/// the open ones expected to close in it (each read from its partial index), grouped per
/// currency, per currency and owner, and per currency and stage (grouping sets). The
/// weighted part sums amount × probability exactly (numeric) and rounds once per group:
/// `round(numeric)` rounds half away from zero.
const FORECAST_TEMPLATE: &str = include_str!("forecast.sql");

/// [`FORECAST_TEMPLATE`] with the owned-only condition on `$7`.
static FORECAST_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    FORECAST_TEMPLATE.replace(
        "{owned}",
        &crate::auth::ownership::sql_condition("o.customer_id", 7),
    )
});

/// The forecast of `period` over the opportunities `filter` keeps.
pub async fn forecast(
    conn: &mut AsyncPgConnection,
    period: Period,
    filter: &Filter,
) -> QueryResult<Forecast> {
    let start = period.from.and_time(NaiveTime::MIN).and_utc();
    let after = period.to + Duration::days(1);
    let end = after.and_time(NaiveTime::MIN).and_utc();
    let rows: Vec<Row> = diesel::sql_query(FORECAST_SQL.as_str())
        .bind::<Timestamptz, _>(start)
        .bind::<Timestamptz, _>(end)
        .bind::<Date, _>(period.from)
        .bind::<Date, _>(after)
        .bind::<Nullable<SqlUuid>, _>(filter.owner_id)
        .bind::<Nullable<Text>, _>(filter.currency.as_deref())
        .bind::<Nullable<SqlUuid>, _>(filter.account_manager_id)
        .prepared()
        .load(conn)
        .await?;
    let mut currencies: Vec<CurrencyForecast> = Vec::new();
    for row in rows {
        let figures = row.figures();
        match (row.grp, currencies.last_mut()) {
            (0, _) => currencies.push(CurrencyForecast {
                currency: row.currency,
                figures,
                target: TargetFigures::default(),
                outside_funnel_sales: 0,
                by_owner: Vec::new(),
                by_stage: Vec::new(),
            }),
            (1, Some(current)) if current.currency == row.currency => {
                if let Some(owner_id) = row.owner_id {
                    current.by_owner.push(OwnerForecast {
                        owner_id,
                        figures,
                        target: TargetFigures::default(),
                    });
                }
            }
            (2, Some(current)) if current.currency == row.currency => {
                if let (Some(stage), Some(probability)) = (row.stage, row.probability) {
                    current.by_stage.push(StageForecast {
                        stage,
                        probability,
                        figures,
                    });
                }
            }
            _ => {}
        }
    }
    let targets = period_targets(conn, &period, filter).await?;
    let outside = outside_funnel(conn, start, end, filter).await?;
    add_targets_and_sales(&mut currencies, &targets, &outside, filter.owner_id);
    for currency in &mut currencies {
        currency.by_owner.sort_by(|a, b| {
            b.figures
                .forecast
                .cmp(&a.figures.forecast)
                .then(a.owner_id.cmp(&b.owner_id))
        });
    }
    Ok(Forecast {
        period: period.label,
        from: period.from,
        to: period.to,
        currencies,
    })
}

/// A target of the forecast's period.
#[derive(Debug, diesel::QueryableByName)]
struct TargetRow {
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    owner_id: Option<Uuid>,
    #[diesel(sql_type = BigInt)]
    amount: i64,
}

/// The targets set for exactly this period (the currency's when asked; the team's and every
/// owner's, or that owner's only), read by pipeline_targets_key.
async fn period_targets(
    conn: &mut AsyncPgConnection,
    period: &Period,
    filter: &Filter,
) -> QueryResult<Vec<TargetRow>> {
    diesel::sql_query(
        "SELECT currency, owner_id, amount FROM pipeline_targets
         WHERE period_from = $1 AND period_to = $2
           AND ($3::text IS NULL OR currency = $3)
           AND ($4::uuid IS NULL OR owner_id = $4)
         ORDER BY currency, owner_id NULLS FIRST",
    )
    .bind::<Date, _>(period.from)
    .bind::<Date, _>(period.to)
    .bind::<Nullable<Text>, _>(filter.currency.as_deref())
    .bind::<Nullable<SqlUuid>, _>(filter.owner_id)
    .prepared()
    .load(conn)
    .await
}

/// The sales outside the funnel of one currency.
#[derive(Debug, diesel::QueryableByName)]
struct SalesRow {
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = BigInt)]
    net: i64,
}

/// Σ net amount (amount − refunded) of the purchases made in [$1, $2) that no live won
/// opportunity is linked to, per currency (`$3`: that currency only; `$4`: the customers
/// that owner manages; `$5`: owned-only access). Reads purchases_occurred_idx.
static OUTSIDE_FUNNEL_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT p.currency, coalesce(sum(p.amount - p.refunded), 0)::bigint AS net
         FROM purchases p
         WHERE p.occurred_at >= $1 AND p.occurred_at < $2
           AND ($3::text IS NULL OR p.currency = $3)
           AND ($4::uuid IS NULL OR p.customer_id IN
                (SELECT id FROM customers WHERE account_manager_id = $4::uuid))
           AND {}
           AND NOT EXISTS (SELECT 1 FROM opportunities o
                           WHERE o.id = p.opportunity_id AND o.status = 'won'
                             AND o.deleted_at IS NULL)
         GROUP BY p.currency
         ORDER BY p.currency",
        crate::auth::ownership::sql_condition("p.customer_id", 5)
    )
});

async fn outside_funnel(
    conn: &mut AsyncPgConnection,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    filter: &Filter,
) -> QueryResult<Vec<SalesRow>> {
    diesel::sql_query(OUTSIDE_FUNNEL_SQL.as_str())
        .bind::<Timestamptz, _>(start)
        .bind::<Timestamptz, _>(end)
        .bind::<Nullable<Text>, _>(filter.currency.as_deref())
        .bind::<Nullable<SqlUuid>, _>(filter.owner_id)
        .bind::<Nullable<SqlUuid>, _>(filter.account_manager_id)
        .prepared()
        .load(conn)
        .await
}

/// A forecast's figures against a target: the gap is `target − won`; the coverage is the
/// weighted open pipeline over that gap, in hundredths rounded half away from zero, and
/// `null` once the gap is 0 or less (the target is met: nothing is left to cover).
pub fn against(target: Option<i64>, figures: &Figures) -> TargetFigures {
    let Some(target) = target else {
        return TargetFigures::default();
    };
    let gap = target - figures.won_amount;
    let coverage = (gap > 0).then(|| {
        // Exact in i128: weighted × 100 / gap, rounded half away from zero (both ≥ 0).
        let (n, d) = (i128::from(figures.weighted_open) * 100, i128::from(gap));
        let hundredths = (2 * n + d) / (2 * d);
        hundredths as f64 / 100.0
    });
    TargetFigures {
        target: Some(target),
        gap_to_target: Some(gap),
        coverage,
        target_met: Some(gap <= 0),
    }
}

/// The entry of `currency`, added (with zero figures) when the period has none yet.
fn entry<'a>(
    currencies: &'a mut Vec<CurrencyForecast>,
    currency: &str,
) -> &'a mut CurrencyForecast {
    let at = match currencies.iter().position(|c| c.currency == currency) {
        Some(at) => at,
        None => {
            currencies.push(CurrencyForecast {
                currency: currency.to_owned(),
                figures: Figures::default(),
                target: TargetFigures::default(),
                outside_funnel_sales: 0,
                by_owner: Vec::new(),
                by_stage: Vec::new(),
            });
            currencies.len() - 1
        }
    };
    &mut currencies[at]
}

/// Puts the targets and the sales outside the funnel beside the figures: a currency's total
/// against the team's target (`owner`'s when the forecast is for one owner), each owner
/// against theirs (owners with a target and nothing in the period get a row of zeros).
fn add_targets_and_sales(
    currencies: &mut Vec<CurrencyForecast>,
    targets: &[TargetRow],
    outside: &[SalesRow],
    owner: Option<Uuid>,
) {
    for sales in outside {
        entry(currencies, &sales.currency).outside_funnel_sales = sales.net;
    }
    for t in targets {
        let current = entry(currencies, &t.currency);
        if let Some(owner_id) = t.owner_id
            && !current.by_owner.iter().any(|o| o.owner_id == owner_id)
        {
            current.by_owner.push(OwnerForecast {
                owner_id,
                figures: Figures::default(),
                target: TargetFigures::default(),
            });
        }
    }
    for current in currencies.iter_mut() {
        let target_of = |who: Option<Uuid>| {
            targets
                .iter()
                .find(|t| t.currency == current.currency && t.owner_id == who)
                .map(|t| t.amount)
        };
        current.target = against(target_of(owner), &current.figures);
        let owners: Vec<(Uuid, Option<i64>)> = current
            .by_owner
            .iter()
            .map(|o| (o.owner_id, target_of(Some(o.owner_id))))
            .collect();
        for (o, (_, target)) in current.by_owner.iter_mut().zip(owners) {
            o.target = against(target, &o.figures);
        }
    }
    currencies.sort_by(|a, b| a.currency.cmp(&b.currency));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    fn span(text: &str) -> Option<(NaiveDate, NaiveDate)> {
        parse_period(text).map(|p| (p.from, p.to))
    }

    #[test]
    fn periods_are_years_quarters_and_months() {
        assert_eq!(span("2026"), Some((day(2026, 1, 1), day(2026, 12, 31))));
        assert_eq!(span("2026-Q1"), Some((day(2026, 1, 1), day(2026, 3, 31))));
        assert_eq!(span("2026-Q4"), Some((day(2026, 10, 1), day(2026, 12, 31))));
        assert_eq!(span("2026-11"), Some((day(2026, 11, 1), day(2026, 11, 30))));
        assert_eq!(span("2028-02"), Some((day(2028, 2, 1), day(2028, 2, 29))));
        assert_eq!(span("2026-12"), Some((day(2026, 12, 1), day(2026, 12, 31))));
        for bad in [
            "",
            "26",
            "20261",
            "2026-Q0",
            "2026-Q5",
            "2026-q4",
            "2026-13",
            "2026-00",
            "2026-1",
            "2026-11-01",
            "1800",
            "+2026",
            "2026-Q10",
            "abcd",
        ] {
            assert_eq!(span(bad), None, "{bad}");
        }
    }

    fn won_and_weighted(won_amount: i64, weighted_open: i64) -> Figures {
        Figures {
            won_amount,
            weighted_open,
            forecast: won_amount + weighted_open,
            ..Figures::default()
        }
    }

    #[test]
    fn coverage_is_the_weighted_pipeline_over_what_is_left_to_win() {
        // No target: nothing to compare with.
        assert_eq!(
            against(None, &won_and_weighted(100, 50)),
            TargetFigures::default()
        );
        // Target 10 000, won 4 000: 6 000 left; weighted 9 000 covers it 9000/6000 = 1.5.
        let t = against(Some(10_000), &won_and_weighted(4_000, 9_000));
        assert_eq!(t.gap_to_target, Some(6_000));
        assert_eq!(t.coverage, Some(1.5));
        assert_eq!(t.target_met, Some(false));
        // 1 000 / 3 000 = 0.3333… → 0.33; 2 000 / 3 000 = 0.6666… → 0.67.
        assert_eq!(
            against(Some(3_000), &won_and_weighted(0, 1_000)).coverage,
            Some(0.33)
        );
        assert_eq!(
            against(Some(3_000), &won_and_weighted(0, 2_000)).coverage,
            Some(0.67)
        );
        // Half a hundredth rounds away from zero: 1 / 200 = 0.005 → 0.01.
        assert_eq!(
            against(Some(200), &won_and_weighted(0, 1)).coverage,
            Some(0.01)
        );
        // Nothing open: coverage 0.
        assert_eq!(
            against(Some(500), &won_and_weighted(0, 0)).coverage,
            Some(0.0)
        );
        // Target met exactly, and exceeded: the gap is 0 or negative, no coverage.
        let met = against(Some(5_000), &won_and_weighted(5_000, 700));
        assert_eq!(
            (met.gap_to_target, met.coverage, met.target_met),
            (Some(0), None, Some(true))
        );
        let beyond = against(Some(5_000), &won_and_weighted(6_500, 0));
        assert_eq!(beyond.gap_to_target, Some(-1_500));
        assert_eq!(beyond.coverage, None);
        // A target of 0 is met at once.
        assert_eq!(
            against(Some(0), &won_and_weighted(0, 10)).target_met,
            Some(true)
        );
    }

    #[test]
    fn the_default_period_is_the_current_quarter() {
        let p = period(&ForecastQuery::default(), day(2026, 11, 23)).ok();
        assert_eq!(
            p,
            Some(Period {
                label: Some("2026-Q4".to_owned()),
                from: day(2026, 10, 1),
                to: day(2026, 12, 31)
            })
        );
        let both = ForecastQuery {
            period: Some("2026".to_owned()),
            from: Some(day(2026, 1, 1)),
            ..ForecastQuery::default()
        };
        assert!(period(&both, day(2026, 1, 1)).is_err());
        let reversed = ForecastQuery {
            period: None,
            from: Some(day(2026, 2, 1)),
            to: Some(day(2026, 1, 1)),
            ..ForecastQuery::default()
        };
        assert!(period(&reversed, day(2026, 1, 1)).is_err());
    }
}
