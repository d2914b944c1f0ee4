//! The Pareto ranking as the API shows it: a page's rows and summary, and the whole ranking
//! streamed for `GET /v1/exports/pareto`.

use diesel_async::AsyncPgConnection;

use super::json::{CustomerBand, ParetoRow, ParetoSummary, SalesBand};
use super::store::{self, CUSTOMER_BANDS, ParetoFilter, ParetoLine, SALES_BANDS};
use crate::db::replicas::ReadPool;
use crate::exports::Source;
use crate::http::tabular::Column;

/// `part` as a share of `whole`, in % with two decimals.
pub fn percent(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 * 10_000.0 / whole as f64).round() / 100.0
}

/// What the ranked customers' value aspects are read with: the last computation's settings
/// and totals.
#[derive(Debug, Clone)]
pub struct AspectBasis {
    pub used: super::json::SettingsInput,
    pub totals: store::Totals,
}

impl AspectBasis {
    /// `None` before the first computation.
    pub fn of(settings: &store::SettingsRow) -> Option<Self> {
        settings.computed_with().map(|used| Self {
            used,
            totals: settings.totals(),
        })
    }
}

/// A ranked line as the API shows it, with its rank (the list's key); `None` for the
/// summary-only line of an empty page.
pub fn row(line: &ParetoLine, basis: Option<&AspectBasis>) -> Option<(ParetoRow, i64)> {
    let aspects = basis
        .zip(line.window_sales)
        .map(|(b, sales)| super::aspects(&b.used, line.year_value, sales, &b.totals));
    let row = ParetoRow {
        lifetime_potential: aspects.as_ref().and_then(|a| a.lifetime_potential),
        demand_contribution_percent: aspects.as_ref().and_then(|a| a.demand_contribution_percent),
        credit_grade: line.credit_grade.as_deref().and_then(|g| g.parse().ok()),
        rank: line.rank?,
        customer_id: line.customer_id?,
        name: line.name.clone(),
        value: line.value?,
        purchases: line.purchases?,
        share: percent(line.value?, line.total),
        cumulative_share: percent(line.cumulative?, line.total),
        customer_percent: percent(line.rank?, line.n),
    };
    let rank = row.rank;
    Some((row, rank))
}

/// The summary a page of the ranking carries, from its first line.
pub fn summary(first: &ParetoLine) -> ParetoSummary {
    let (n, total) = (first.n, first.total);
    ParetoSummary {
        customers: n,
        total,
        top_20_percent_share: percent(first.band_values.get(1).copied().unwrap_or(0), total),
        customer_bands: CUSTOMER_BANDS
            .iter()
            .zip(&first.band_values)
            .map(|(p, value)| CustomerBand {
                customer_percent: *p,
                customers: (n * i64::from(*p) + 99) / 100,
                value: *value,
                share: percent(*value, total),
            })
            .collect(),
        sales_bands: SALES_BANDS
            .iter()
            .zip(&first.sales_customers)
            .map(|(p, customers)| SalesBand {
                sales_percent: *p,
                customers: *customers,
                customer_percent: percent(*customers, n),
            })
            .collect(),
    }
}

/// The CSV columns of the Pareto ranking.
const PARETO_COLUMNS: &[Column] = {
    use crate::http::tabular::{Kind::*, r};
    &[
        r("rank", Int),
        r("customer_id", Text),
        r("name", Text),
        r("value", Int),
        r("purchases", Int),
        r("share", Float),
        r("cumulative_share", Float),
        r("customer_percent", Float),
        r("lifetime_potential", Int),
        r("demand_contribution_percent", Float),
        r("credit_grade", Text),
    ]
};

/// The whole ranking, read by one query whose rows stream from PostgreSQL through a task
/// holding its own connection: the ranking is computed once, not once per batch, and a
/// bounded channel (two batches) keeps memory flat while a slow client reads.
pub struct Ranking {
    filter: ParetoFilter,
    basis: Option<AspectBasis>,
    pool: ReadPool,
    /// The batches, once the query started.
    rows: tokio::sync::Mutex<Option<Batches>>,
}

/// Batches of the ranking as the query yields them, or why it stopped.
type Batches = tokio::sync::mpsc::Receiver<Result<Vec<(ParetoRow, i64)>, String>>;

impl Ranking {
    pub fn new(filter: ParetoFilter, basis: Option<AspectBasis>, pool: ReadPool) -> Self {
        Self {
            filter,
            basis,
            pool,
            rows: tokio::sync::Mutex::new(None),
        }
    }

    /// Starts the query; its rows arrive in batches of [`crate::exports::BATCH`].
    fn start(&self) -> Batches {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let (mut pool, filter, basis) =
            (self.pool.clone(), self.filter.clone(), self.basis.clone());
        actix_web::rt::spawn(async move {
            if let Err(cause) = stream_ranking(&mut pool, &filter, basis.as_ref(), &tx).await {
                // The reader may be gone already; then nobody waits for the cause.
                let _ = tx.send(Err(cause)).await;
            }
        });
        rx
    }
}

/// Sends the ranking in batches until its end, or until the reader is gone.
async fn stream_ranking(
    pool: &mut ReadPool,
    filter: &ParetoFilter,
    basis: Option<&AspectBasis>,
    tx: &tokio::sync::mpsc::Sender<Result<Vec<(ParetoRow, i64)>, String>>,
) -> Result<(), String> {
    use futures_util::TryStreamExt;
    let rows = crate::exports::BATCH as usize;
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let mut lines = store::pareto_lines(&mut conn, filter)
        .await
        .map_err(|e| e.to_string())?;
    let mut batch = Vec::with_capacity(rows);
    while let Some(line) = lines.try_next().await.map_err(|e| e.to_string())? {
        batch.extend(row(&line, basis));
        if batch.len() == rows
            && tx
                .send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(rows))))
                .await
                .is_err()
        {
            return Ok(());
        }
    }
    // The last batch (short, or empty when the ranking filled the one before).
    let _ = tx.send(Ok(batch)).await;
    Ok(())
}

impl Source for Ranking {
    type Key = i64;
    type Item = ParetoRow;
    /// One query streams the whole ranking: a failed batch cannot be read again.
    const RESUMABLE: bool = false;
    const COLUMNS: &'static [Column] = PARETO_COLUMNS;

    async fn batch(
        &self,
        _conn: &mut AsyncPgConnection,
        _after: Option<i64>,
        _limit: i64,
    ) -> diesel::QueryResult<Vec<(ParetoRow, i64)>> {
        let mut rows = self.rows.lock().await;
        let rx = rows.get_or_insert_with(|| self.start());
        match rx.recv().await {
            Some(Ok(batch)) => Ok(batch),
            Some(Err(cause)) => Err(diesel::result::Error::QueryBuilderError(cause.into())),
            None => Ok(Vec::new()),
        }
    }
}
