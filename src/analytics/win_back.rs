//! The win-back report (流失客户, the leaking bucket): per month or per reason code, the share
//! of active customers lost, how many of those losses were won back and how fast, and the
//! losses themselves, paged. Definitions in docs/analytics.md.

use chrono::{DateTime, Days, NaiveDate, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use super::json::{ChurnedCustomer, WinBackGrouping, WinBackPeriod, WinBackReport};
use super::{rules, store};
use crate::domain::ChurnCause;
use crate::http::error::ApiError;
use crate::http::pagination::{self, Page, PageRequest};

/// A checked win-back request.
#[derive(Debug, Clone, Copy)]
pub struct WinBackRequest {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group_by: WinBackGrouping,
    /// Owned-only access: the manager whose customers count.
    pub owner: Option<Uuid>,
}

/// The cursor's order name.
pub const ORDER: &str = "churned_at";

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// The day after `day` at 00:00 UTC: the end of a period that includes `day`.
fn end_of(day: NaiveDate) -> DateTime<Utc> {
    midnight(day.checked_add_days(Days::new(1)).unwrap_or(day))
}

/// The report: its figures (the same on every page) and one page of its losses.
pub async fn report(
    conn: &mut AsyncPgConnection,
    request: WinBackRequest,
    page: &PageRequest<(DateTime<Utc>, Uuid)>,
) -> Result<WinBackReport, ApiError> {
    let (start, end) = (midnight(request.from), end_of(request.to));
    let spans: Vec<(NaiveDate, NaiveDate)> = match request.group_by {
        WinBackGrouping::Month => rules::months(request.from, request.to),
        WinBackGrouping::ReasonCode => vec![(request.from, request.to)],
    };
    let starts: Vec<DateTime<Utc>> = spans.iter().map(|s| midnight(s.0)).collect();
    let ends: Vec<DateTime<Utc>> = spans.iter().map(|s| end_of(s.1)).collect();
    let by_reason = request.group_by == WinBackGrouping::ReasonCode;
    let rows =
        store::win_back_figures(conn, start, end, request.owner, &starts, &ends, by_reason).await?;
    let periods = if by_reason {
        by_reason_code(&rows, (request.from, request.to))
    } else {
        by_month(&rows, &spans)
    };
    let losses =
        store::win_back_losses(conn, start, end, request.owner, page.after, page.fetch()).await?;
    let keyed: Vec<(ChurnedCustomer, (DateTime<Utc>, Uuid))> = losses
        .into_iter()
        .map(|l| {
            let key = (l.churned_at, l.id);
            let entry = ChurnedCustomer {
                customer_id: l.customer_id,
                name: l.name,
                churned_at: l.churned_at,
                reason_code: l.reason_code,
                reason: l.reason,
                won_back_at: l.won_back_at,
                days_to_win_back: l
                    .won_back_at
                    .map(|at| rules::days_between(l.churned_at, at)),
            };
            (entry, key)
        })
        .collect();
    let Page { data, next_cursor } = pagination::page_keyed(keyed, page, ORDER);
    Ok(WinBackReport {
        from: request.from,
        to: request.to,
        group_by: request.group_by,
        periods,
        data,
        next_cursor,
    })
}

fn period(
    span: (NaiveDate, NaiveDate),
    month: Option<String>,
    reason_code: Option<ChurnCause>,
    active: i64,
    row: Option<&store::WinBackRow>,
) -> WinBackPeriod {
    let lost = row.map_or(0, |r| r.lost);
    let won_back = row.map_or(0, |r| r.won_back);
    WinBackPeriod {
        month,
        reason_code,
        from: span.0,
        to: span.1,
        active_at_start: active,
        lost,
        churn_rate: rules::rate(lost, active),
        won_back,
        win_back_rate: rules::rate(won_back, lost),
        median_days_to_win_back: row.and_then(|r| r.median_days),
    }
}

/// One row per month, in order (the statement gives each period exactly one).
fn by_month(rows: &[store::WinBackRow], spans: &[(NaiveDate, NaiveDate)]) -> Vec<WinBackPeriod> {
    spans
        .iter()
        .zip(1i64..)
        .map(|(span, ord)| {
            let row = rows.iter().find(|r| r.ord == ord);
            let active = row.map_or(0, |r| r.active_at_start);
            period(
                *span,
                Some(span.0.format("%Y-%m").to_string()),
                None,
                active,
                row,
            )
        })
        .collect()
}

/// One row per reason code in the list's order, codes without losses included, then the
/// losses recorded without a code, if any.
fn by_reason_code(rows: &[store::WinBackRow], span: (NaiveDate, NaiveDate)) -> Vec<WinBackPeriod> {
    // Every row carries the one period's customers active at its start.
    let active = rows.first().map_or(0, |r| r.active_at_start);
    let mut periods: Vec<WinBackPeriod> = ChurnCause::ALL
        .iter()
        .map(|code| {
            let row = rows.iter().find(|r| r.reason_code == Some(*code));
            period(span, None, Some(*code), active, row)
        })
        .collect();
    if let Some(uncoded) = rows.iter().find(|r| r.reason_code.is_none() && r.lost > 0) {
        periods.push(period(span, None, None, active, Some(uncoded)));
    }
    periods
}
