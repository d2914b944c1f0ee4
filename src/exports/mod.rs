//! Exports: every customer, interaction, purchase or survey response a list query selects, as
//! one CSV or NDJSON download, in constant memory whatever the table's size.
//!
//! An export takes its list's filters (parsed and checked by the list's own code) and streams
//! the rows in the list's order, a batch at a time: each batch is one short keyset query (the
//! rows after the last one served), so no transaction or cursor stays open while a slow client
//! reads, and memory holds one batch. The price: an export is not a snapshot; a row inserted
//! or changed while it runs may be in it or not, as with paging through the list.
//!
//! The first batch is read before the answer starts, so a failure to reach the database is
//! still a proper `503`; a failure later can no longer change the status, and cuts the body
//! short instead (logged with the request id).
//!
//! A CSV row is the resource's [`tabular`](crate::http::tabular) row, the shape imports read;
//! an NDJSON line is exactly the item the list endpoint answers.

mod routes;

use std::future::Future;
use std::marker::PhantomData;

use actix_web::http::header::{self, HeaderMap};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use chrono::Utc;
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use serde::Serialize;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterIn};

use crate::db::replicas::ReadPool;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::query::invalid;
use crate::http::request_id;
use crate::http::response::CutShort;
use crate::http::tabular::{self, Column};
use crate::state::AppState;

pub use routes::configure;

/// Rows per query: enough that the round trips cost little, few enough that what one batch
/// holds (the records, then their text) stays small whatever the table's size.
pub const BATCH: i64 = 1000;

/// The formats an export is written in, chosen by the request's `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// RFC 4180: a header row, CRLF line ends, fields quoted where needed, UTF-8 without BOM.
    Csv,
    /// One JSON object per line (LF), each the list endpoint's item.
    Ndjson,
}

impl Format {
    pub const CSV: &'static str = "text/csv";
    pub const NDJSON: &'static str = "application/x-ndjson";

    /// The `Content-Type` of the answer.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => Self::NDJSON,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Ndjson => "ndjson",
        }
    }

    /// The format `Accept` prefers (RFC 9110 section 12.5.1): the highest `q`, then the more
    /// specific range (`application/x-ndjson, */*` is NDJSON), then CSV. No `Accept` (or an
    /// empty one) is CSV; one that allows neither format is `406`.
    pub fn negotiate(headers: &HeaderMap) -> Result<Self, ApiError> {
        let ranges: Vec<&str> = headers
            .get_all(header::ACCEPT)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .collect();
        if ranges.is_empty() {
            return Ok(Self::Csv);
        }
        // For each format, (q, specificity) of the most specific range matching it.
        let mut best: [Option<(f32, u8)>; 2] = [None, None];
        for range in ranges {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let mut q = 1.0_f32;
            for param in parts {
                if let Some((name, value)) = param.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    q = value.trim().parse().unwrap_or(0.0);
                }
            }
            for (slot, format) in [Self::Csv, Self::Ndjson].into_iter().enumerate() {
                let Some(specificity) = format.matched_by(&media) else {
                    continue;
                };
                if best[slot].is_none_or(|(_, s)| specificity > s) {
                    best[slot] = Some((q, specificity));
                }
            }
        }
        let score = |slot: usize| best[slot].filter(|(q, _)| *q > 0.0);
        match (score(0), score(1)) {
            (None, None) => Err(ApiError::new(
                ErrorCode::NotAcceptable,
                format!(
                    "exports are written as `{}` or `{}`; the Accept header allows neither",
                    Self::CSV,
                    Self::NDJSON
                ),
            )),
            (Some(_), None) => Ok(Self::Csv),
            (None, Some(_)) => Ok(Self::Ndjson),
            (Some((qc, sc)), Some((qn, sn))) => {
                if qn > qc || (qn == qc && sn > sc) {
                    Ok(Self::Ndjson)
                } else {
                    Ok(Self::Csv)
                }
            }
        }
    }

    /// How specifically `media` (lower case, without parameters) names this format: 2 by
    /// name, 1 by its type (`text/*`), 0 by `*/*`; `None` when it does not.
    fn matched_by(self, media: &str) -> Option<u8> {
        let name = match self {
            Self::Csv => Self::CSV,
            Self::Ndjson => Self::NDJSON,
        };
        let kind = name.split('/').next().unwrap_or_default();
        match media.split_once('/') {
            _ if media == name => Some(2),
            Some((t, "*")) if t == kind => Some(1),
            Some(("*", "*")) => Some(0),
            _ => None,
        }
    }
}

/// A list's query parameters as an export takes them: all but `limit` and `cursor`.
pub struct Filters<Q>(PhantomData<Q>);

impl<Q: IntoParams> IntoParams for Filters<Q> {
    fn into_params(parameter_in_provider: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        Q::into_params(parameter_in_provider)
            .into_iter()
            .filter(|p| p.name != "limit" && p.name != "cursor")
            .collect()
    }
}

/// Exports take their list's query struct, paging aside: a `400` naming `limit` or `cursor`.
pub fn refuse_paging(limit: Option<u32>, cursor: Option<&str>) -> Result<(), ApiError> {
    for (name, given) in [("limit", limit.is_some()), ("cursor", cursor.is_some())] {
        if given {
            return Err(invalid(
                name,
                "is not a parameter of exports: an export holds every row the filters select",
            ));
        }
    }
    Ok(())
}

/// What an export reads: one resource under the filters of one request.
pub trait Source: 'static {
    /// A row's sort key: where the next batch starts.
    type Key: Clone + 'static;
    /// A row as its list endpoint serialises it.
    type Item: Serialize;
    /// The resource's CSV columns.
    const COLUMNS: &'static [Column];
    /// A failed batch can be read again from the same key (on another connection).
    const RESUMABLE: bool = true;

    /// Up to `limit` rows after `after` (from the start with `None`), in the export's order,
    /// each with its key.
    fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        after: Option<Self::Key>,
        limit: i64,
    ) -> impl Future<Output = QueryResult<Vec<(Self::Item, Self::Key)>>>;
}

/// The answer to an export request: reads the first batch (a failure is still an error
/// status), then streams the file, named `<name>-<UTC time>.<csv|ndjson>`.
pub async fn respond<S: Source>(
    state: &AppState,
    req: &HttpRequest,
    format: Format,
    name: &'static str,
    source: S,
) -> Result<HttpResponse, ApiError> {
    let mut pool = state.read_pool(req)?;
    let first = read_batch(&mut pool, &source, None).await?;
    let filename = format!(
        "{name}-{}.{}",
        Utc::now().format("%Y%m%dT%H%M%SZ"),
        format.extension()
    );
    let export = Export {
        source,
        pool,
        format,
        pending: Some(first),
        after: None,
        header: format == Format::Csv,
        done: false,
        name,
        request_id: request_id::current(),
    };
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::VARY, "Accept"))
        .streaming(futures_util::stream::unfold(export, Export::next)))
}

/// The batch after `after`. When a replica fails to read it, the primary reads it and the
/// rest of the export.
async fn read_batch<S: Source>(
    pool: &mut ReadPool,
    source: &S,
    after: Option<S::Key>,
) -> Result<Vec<(S::Item, S::Key)>, ApiError> {
    loop {
        let mut conn = pool.get().await?;
        match source.batch(&mut conn, after.clone(), BATCH).await {
            Ok(rows) => return Ok(rows),
            Err(e) if S::RESUMABLE && pool.fall_back() => {
                tracing::warn!(error = %e,
                    "an export's batch failed on a read replica: the primary reads the rest");
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The state of one streaming export between chunks.
struct Export<S: Source> {
    source: S,
    /// A replica chosen when the export started, or the primary.
    pool: ReadPool,
    format: Format,
    /// The first batch, read before the answer started.
    pending: Option<Vec<(S::Item, S::Key)>>,
    /// The key of the last row written.
    after: Option<S::Key>,
    /// The CSV header row is still to be written.
    header: bool,
    /// The last batch was short: nothing follows.
    done: bool,
    name: &'static str,
    /// The request's id (the stream outlives the request's task, which holds it).
    request_id: Option<String>,
}

impl<S: Source> Export<S> {
    /// The next chunk: one batch written out; `None` at the end.
    async fn next(mut self) -> Option<(Result<Bytes, CutShort>, Self)> {
        if self.done {
            return None;
        }
        let rows = match self.pending.take() {
            Some(rows) => rows,
            None => match self.fetch().await {
                Ok(rows) => rows,
                Err(cause) => return Some(self.fail(&cause)),
            },
        };
        if (rows.len() as i64) < BATCH {
            self.done = true;
        }
        let mut out = String::new();
        if std::mem::take(&mut self.header) {
            tabular::write_record(&mut out, tabular::header(S::COLUMNS));
        }
        for (item, key) in rows {
            if let Err(cause) = self.write(&mut out, &item) {
                return Some(self.fail(&cause));
            }
            self.after = Some(key);
        }
        if out.is_empty() {
            return None;
        }
        Some((Ok(Bytes::from(out)), self))
    }

    async fn fetch(&mut self) -> Result<Vec<(S::Item, S::Key)>, String> {
        read_batch(&mut self.pool, &self.source, self.after.clone())
            .await
            .map_err(|e| e.to_string())
    }

    fn write(&self, out: &mut String, item: &S::Item) -> Result<(), String> {
        match self.format {
            Format::Csv => {
                let value = serde_json::to_value(item).map_err(|e| e.to_string())?;
                tabular::write_record(out, tabular::cells(S::COLUMNS, &value));
            }
            Format::Ndjson => {
                out.push_str(&serde_json::to_string(item).map_err(|e| e.to_string())?);
                out.push('\n');
            }
        }
        Ok(())
    }

    fn fail(mut self, cause: &str) -> (Result<Bytes, CutShort>, Self) {
        tracing::warn!(
            export = %self.name,
            request_id = self.request_id.as_deref().unwrap_or("-"),
            error = %cause,
            "export cut short"
        );
        self.done = true;
        (Err(CutShort("the export")), self)
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;
    use chrono::{DateTime, NaiveDate, TimeZone};
    use serde_json::{Value, json};
    use uuid::Uuid;

    use super::*;

    fn csv(fields: &[&str]) -> String {
        let mut out = String::new();
        tabular::write_record(&mut out, fields);
        out
    }

    #[test]
    fn fields_are_quoted_only_where_needed() {
        assert_eq!(csv(&["plain", "", "42"]), "plain,,42\r\n");
        assert_eq!(csv(&["a,b"]), "\"a,b\"\r\n");
        assert_eq!(csv(&["say \"hi\""]), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(csv(&["two\nlines", "cr\r"]), "\"two\nlines\",\"cr\r\"\r\n");
        assert_eq!(
            csv(&[" lead", "trail ", "in side"]),
            "\" lead\",\"trail \",in side\r\n"
        );
        // Formula-like values stay as they are: an export imports back unchanged.
        assert_eq!(csv(&["=1+1", "Zoë ☕"]), "=1+1,Zoë ☕\r\n");
    }

    fn accept(values: &[&str]) -> Result<Format, ErrorCode> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        }
        Format::negotiate(&headers).map_err(|e| e.code())
    }

    #[test]
    fn accept_picks_the_format() {
        use Format::*;
        assert_eq!(accept(&[]), Ok(Csv));
        assert_eq!(accept(&[""]), Ok(Csv));
        assert_eq!(accept(&["*/*"]), Ok(Csv));
        assert_eq!(accept(&["text/csv"]), Ok(Csv));
        assert_eq!(accept(&["text/*"]), Ok(Csv));
        assert_eq!(accept(&["application/x-ndjson"]), Ok(Ndjson));
        assert_eq!(accept(&["Application/X-NDJSON; charset=utf-8"]), Ok(Ndjson));
        assert_eq!(accept(&["application/*"]), Ok(Ndjson));
        assert_eq!(accept(&["application/x-ndjson, */*"]), Ok(Ndjson));
        assert_eq!(
            accept(&["text/csv;q=0.5, application/x-ndjson"]),
            Ok(Ndjson)
        );
        assert_eq!(accept(&["application/json", "text/csv"]), Ok(Csv));
        assert_eq!(accept(&["text/csv;q=0, */*"]), Ok(Ndjson));
        // A browser's default.
        assert_eq!(
            accept(&["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"]),
            Ok(Csv)
        );
        for refused in [
            &["application/xml"][..],
            &["application/json"],
            &["*/*;q=0"],
        ] {
            assert_eq!(
                accept(refused),
                Err(ErrorCode::NotAcceptable),
                "{refused:?}"
            );
        }
    }

    /// The paths of `value` (objects followed down while no column names them whole) that no
    /// column covers, and the columns that name nothing in `value`.
    fn misfits(columns: &[Column], value: &Value) -> (Vec<String>, Vec<&'static str>) {
        fn walk(columns: &[Column], value: &Value, prefix: &str, out: &mut Vec<String>) {
            let Some(object) = value.as_object() else {
                return;
            };
            for (key, inner) in object {
                let path = format!("{prefix}{key}");
                if columns.iter().any(|c| c.path == path) {
                    continue;
                }
                let nested = format!("{path}.");
                if inner.is_object() && columns.iter().any(|c| c.path.starts_with(&nested)) {
                    walk(columns, inner, &nested, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut uncovered = Vec::new();
        walk(columns, value, "", &mut uncovered);
        let unknown = columns
            .iter()
            .filter(|c| {
                c.path
                    .split('.')
                    .try_fold(value, |v, key| v.get(key))
                    .is_none()
            })
            .map(|c| c.path)
            .collect();
        (uncovered, unknown)
    }

    #[test]
    fn misfits_are_found_both_ways() {
        use crate::http::tabular::{Kind, r};
        const COLUMNS: &[Column] = &[
            r("id", Kind::Text),
            r("address.city", Kind::Text),
            r("gone", Kind::Text),
        ];
        let value = json!({"id": 1, "address": {"city": "x", "zip": "y"}, "new": 2});
        assert_eq!(
            misfits(COLUMNS, &value),
            (
                vec!["address.zip".to_owned(), "new".to_owned()],
                vec!["gone"]
            )
        );
    }

    fn assert_fits(columns: &[Column], view: &impl Serialize) {
        let value = serde_json::to_value(view).unwrap();
        let (uncovered, unknown) = misfits(columns, &value);
        assert!(
            uncovered.is_empty(),
            "fields missing from COLUMNS: {uncovered:?}"
        );
        assert!(unknown.is_empty(), "COLUMNS naming no field: {unknown:?}");
    }

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, hour, 30, 0).unwrap()
    }

    #[test]
    fn every_customer_field_is_a_column() {
        use crate::customers::json::*;
        use crate::customers::store::{CustomerDraft, CustomerRecord};
        let draft = CustomerDraft {
            kind: CustomerKind::Individual,
            name: "Ada Lovelace".into(),
            organization_name: Some("Analytical Engines Ltd".into()),
            email: crate::domain::Email::parse("ada@example.com").ok(),
            phone: crate::domain::Phone::parse("+493012345678", None).ok(),
            address: Some(Address {
                line1: Some("Unter den Linden 1".into()),
                line2: Some("3rd floor".into()),
                city: Some("Berlin".into()),
                region: Some("Berlin".into()),
                postal_code: Some("10117".into()),
                country: Some("DE".into()),
            }),
            birth_date: NaiveDate::from_ymd_opt(1990, 12, 10),
            national_id: Some("AB1234567".into()),
            consent_email: true,
            consent_email_at: Some(at(9)),
            consent_sms_at: Some(at(9)),
            tags: vec!["vip".into(), "newsletter".into()],
            attributes: json!({"plan": "gold"}),
            source: Some("webshop".into()),
            external_id: Some("shop-000123".into()),
            account_manager_id: Some(Uuid::now_v7()),
            buyer_type: Some(BuyerType::Economic),
            qualification: Some(Qualification {
                money: true,
                authority: false,
                need: true,
                authority_source: Default::default(),
            }),
            credit: Some(crate::customers::json::Credit {
                grade: crate::customers::json::CreditGrade::B,
                limit: Some(500_000),
                currency: Some("EUR".into()),
                reviewed_at: at(9),
            }),
            ..CustomerDraft::blank()
        };
        let record = CustomerRecord {
            id: Uuid::now_v7(),
            draft,
            prospect_grade: None,
            created_at: at(9),
            updated_at: at(10),
            version: 3,
            deleted_at: None,
            erased_at: None,
        };
        assert_fits(COLUMNS, &crate::customers::view(record, false));
    }

    #[test]
    fn every_interaction_field_is_a_column() {
        use crate::interactions::json::*;
        use crate::interactions::store::{InteractionDraft, InteractionRecord};
        let draft = InteractionDraft {
            channel: crate::domain::Channel::Phone,
            kind: InteractionKind::Complaint,
            subject: Some("Parcel damaged".into()),
            notes: Some("Box crushed, vase broken".into()),
            occurred_at: Some(at(9)),
            duration_seconds: Some(300),
            staff_id: Some(Uuid::now_v7()),
            outcome: Some("replacement sent".into()),
            severity: Some(Severity::High),
            resolution: Some("Sent a new one".into()),
            purchase_id: Some(Uuid::now_v7()),
            assignee_id: Some(Uuid::now_v7()),
            contact_id: Some(Uuid::now_v7()),
            ..InteractionDraft::blank()
        };
        let record = InteractionRecord {
            id: Uuid::now_v7(),
            customer_id: Uuid::now_v7(),
            draft,
            status: Some(ComplaintStatus::Resolved),
            in_progress_at: Some(at(10)),
            resolved_at: Some(at(11)),
            closed_at: None,
            reopened_at: None,
            reopen_count: 0,
            timeline_at: at(9),
            created_at: at(9),
            updated_at: at(11),
            version: 3,
            deleted_at: None,
        };
        assert_fits(COLUMNS, &crate::interactions::view(record, at(12)));
    }

    #[test]
    fn every_purchase_field_is_a_column() {
        use crate::purchases::json::COLUMNS;
        use crate::purchases::store::{PurchaseDraft, PurchaseRecord};
        let record = PurchaseRecord {
            id: Uuid::now_v7(),
            customer_id: Uuid::now_v7(),
            draft: PurchaseDraft {
                external_ref: Some("till-1".into()),
                currency: "EUR".into(),
                amount: 4900,
                cost: Some(2100),
                occurred_at: at(9),
                channel: Some(crate::domain::Channel::InStore),
                items: json!([{"sku": "VASE-01", "name": "Blue vase", "quantity": 2,
                               "unit_price": 2450}]),
                opportunity_id: Some(Uuid::now_v7()),
            },
            refunded: 900,
            created_at: at(9),
            updated_at: at(10),
            version: 2,
        };
        assert_fits(COLUMNS, &crate::purchases::view(record));
    }

    #[test]
    fn every_survey_response_field_is_a_column() {
        use crate::customers::json::{LifecycleStage, RegionType};
        use crate::surveys::json::RESPONSE_COLUMNS;
        use crate::surveys::store::ResponseRecord;
        let record = ResponseRecord {
            id: Uuid::now_v7(),
            survey_id: Uuid::now_v7(),
            customer_id: Uuid::now_v7(),
            interaction_id: Some(Uuid::now_v7()),
            purchase_id: Some(Uuid::now_v7()),
            submitted_at: at(9),
            answers: json!({"recommend": 4, "comment": "slow"}),
            nps: Some(4),
            csat: Some(2),
            ces: Some(5),
            loyalty_tier: Some("gold".into()),
            lifecycle_stage: LifecycleStage::Stable,
            region_type: Some(RegionType::Urban),
            single: true,
            follow_up_id: Some(Uuid::now_v7()),
            created_at: at(9),
            updated_at: at(9),
            version: 1,
        };
        assert_fits(RESPONSE_COLUMNS, &crate::surveys::response_view(record));
    }
}
