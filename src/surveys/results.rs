//! A survey's results over a range of days, overall and per period or segment, read from
//! the roll-up (a few rows per day and question, however many responses there are) and the
//! counts responses appended since it was last folded.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use diesel_async::AsyncPgConnection;

use super::json::{GroupBy, Question, ResultGroup, ResultsQuery, SurveyResults};
use super::rules::{self, Counts, RollUpReads};
use super::store::{self, Grouping, SurveyRecord};
use crate::http::error::ApiError;
use crate::http::query::invalid;

/// At most this many periods in one answer (ten years of weeks).
pub const MAX_PERIODS: usize = 520;

/// The periods from `from` to `to`, each as (key, first day, last day), clipped to the range.
pub fn periods(
    group_by: GroupBy,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<(String, NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to && out.len() <= MAX_PERIODS {
        let (key, next) = match group_by {
            GroupBy::Week => {
                let week = start.iso_week();
                let monday =
                    start - Duration::days(i64::from(start.weekday().num_days_from_monday()));
                (
                    format!("{}-W{:02}", week.year(), week.week()),
                    monday + Duration::days(7),
                )
            }
            _ => {
                let next = if start.month() == 12 {
                    NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)
                };
                (
                    format!("{}-{:02}", start.year(), start.month()),
                    next.unwrap_or(NaiveDate::MAX),
                )
            }
        };
        let last = (next - Duration::days(1)).min(to);
        out.push((key, start, last));
        start = next;
    }
    out
}

fn grouping(group_by: Option<GroupBy>) -> Grouping {
    match group_by {
        None => Grouping::None,
        Some(GroupBy::Month) => Grouping::Month,
        Some(GroupBy::Week) => Grouping::Week,
        Some(GroupBy::Tier) => Grouping::Segment("tier"),
        Some(GroupBy::LifecycleStage) => Grouping::Segment("lifecycle_stage"),
        Some(GroupBy::RegionType) => Grouping::Segment("region_type"),
    }
}

/// The results of `survey` as `query` asks.
pub async fn of(
    conn: &mut AsyncPgConnection,
    survey: &SurveyRecord,
    questions: &[Question],
    query: &ResultsQuery,
) -> Result<SurveyResults, ApiError> {
    if let (Some(from), Some(to)) = (query.from, query.to)
        && to < from
    {
        return Err(invalid("to", "must not be before `from`"));
    }
    let range = match (query.from, query.to) {
        (Some(from), Some(to)) => Some((from, to)),
        (from, to) => {
            let days = store::days(conn, survey.id).await?;
            let from = from.or(days.first).or(to);
            let to = to.or(days.last).or(from);
            from.zip(to).filter(|(f, t)| f <= t)
        }
    };
    let group_by = query.group_by;
    let mut groups: BTreeMap<String, Counts> = BTreeMap::new();
    if let Some((from, to)) = range {
        let period = matches!(group_by, Some(GroupBy::Month | GroupBy::Week));
        if period && periods(group_by.unwrap_or(GroupBy::Month), from, to).len() > MAX_PERIODS {
            return Err(invalid(
                "group_by",
                format!("makes more than {MAX_PERIODS} periods: narrow `from` and `to`"),
            ));
        }
        let reads = if group_by == Some(GroupBy::Week) {
            RollUpReads::daily(from, to)
        } else {
            RollUpReads::of(from, to)
        };
        for row in store::stats(conn, survey.id, grouping(group_by), (from, to), &reads).await? {
            groups.entry(row.grp).or_default().add(
                &row.question_key,
                row.score,
                row.expectation,
                row.choice,
                row.n,
            );
        }
    }
    let mut overall = Counts::default();
    for counts in groups.values() {
        overall.merge(counts);
    }
    let metrics = |counts: &Counts| rules::metrics(questions, counts);
    let groups = match (group_by, range) {
        (None, _) | (_, None) => Vec::new(),
        (Some(g @ (GroupBy::Month | GroupBy::Week)), Some((from, to))) => periods(g, from, to)
            .into_iter()
            .map(|(key, first, last)| ResultGroup {
                metrics: metrics(groups.get(&key).unwrap_or(&Counts::default())),
                key,
                from: Some(first),
                to: Some(last),
            })
            .collect(),
        (Some(_), Some(_)) => {
            let mut list: Vec<ResultGroup> = groups
                .iter()
                .map(|(key, counts)| ResultGroup {
                    key: key.clone(),
                    from: None,
                    to: None,
                    metrics: metrics(counts),
                })
                .collect();
            list.sort_by(|a, b| {
                b.metrics
                    .responses
                    .cmp(&a.metrics.responses)
                    .then_with(|| a.key.cmp(&b.key))
            });
            list
        }
    };
    Ok(SurveyResults {
        survey_id: survey.id,
        from: range.map(|r| r.0),
        to: range.map(|r| r.1),
        group_by,
        overall: metrics(&overall),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn months_are_clipped_to_the_range() {
        let p = periods(GroupBy::Month, day(2025, 12, 15), day(2026, 2, 3));
        assert_eq!(
            p,
            vec![
                ("2025-12".to_owned(), day(2025, 12, 15), day(2025, 12, 31)),
                ("2026-01".to_owned(), day(2026, 1, 1), day(2026, 1, 31)),
                ("2026-02".to_owned(), day(2026, 2, 1), day(2026, 2, 3)),
            ]
        );
    }

    #[test]
    fn weeks_are_iso_weeks() {
        // 2026-01-01 is a Thursday in ISO week 2026-W01; 2025-12-29 is its Monday.
        let p = periods(GroupBy::Week, day(2026, 1, 1), day(2026, 1, 12));
        assert_eq!(
            p,
            vec![
                ("2026-W01".to_owned(), day(2026, 1, 1), day(2026, 1, 4)),
                ("2026-W02".to_owned(), day(2026, 1, 5), day(2026, 1, 11)),
                ("2026-W03".to_owned(), day(2026, 1, 12), day(2026, 1, 12)),
            ]
        );
    }
}
