//! Loyalty configuration queries.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::json::{
    Downgrade, DowngradePolicy, EarnRule, Expiry, ExpiryPolicy, Program, ProgramInput,
    Qualification, QualificationBasis, Rounding, Tier,
};
use crate::db::schema::{loyalty_accounts, loyalty_program, loyalty_tiers};
use crate::db::{NullableTexts, Prepare};

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = loyalty_program)]
struct ProgramRow {
    currency: String,
    earn_points: i32,
    earn_per_amount: i64,
    rounding: Rounding,
    expiry: ExpiryPolicy,
    expiry_days: Option<i32>,
    qualification_basis: QualificationBasis,
    qualification_months: i32,
    downgrade: DowngradePolicy,
    grace_days: Option<i32>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl From<ProgramRow> for Program {
    fn from(r: ProgramRow) -> Self {
        Program {
            config: ProgramInput {
                currency: r.currency,
                earn: EarnRule {
                    points: r.earn_points,
                    per_amount: r.earn_per_amount,
                    rounding: r.rounding,
                },
                expiry: Expiry {
                    policy: r.expiry,
                    days: r.expiry_days,
                },
                qualification: Qualification {
                    basis: r.qualification_basis,
                    months: r.qualification_months,
                },
                downgrade: Downgrade {
                    policy: r.downgrade,
                    grace_days: r.grace_days,
                },
            },
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

pub async fn program(mut conn: &AsyncPgConnection) -> QueryResult<Program> {
    loyalty_program::table
        .select(ProgramRow::as_select())
        .first(&mut conn)
        .await
        .map(Program::from)
}

/// Reads the programme and locks it (and with it the configuration) until the transaction
/// ends: configuration changes go one at a time.
pub async fn lock_program(conn: &mut AsyncPgConnection) -> QueryResult<Program> {
    loyalty_program::table
        .select(ProgramRow::as_select())
        .for_update()
        .first(conn)
        .await
        .map(Program::from)
}

pub async fn update_program(
    conn: &mut AsyncPgConnection,
    input: &ProgramInput,
) -> QueryResult<Program> {
    diesel::update(loyalty_program::table)
        .set((
            loyalty_program::currency.eq(&input.currency),
            loyalty_program::earn_points.eq(input.earn.points),
            loyalty_program::earn_per_amount.eq(input.earn.per_amount),
            loyalty_program::rounding.eq(input.earn.rounding),
            loyalty_program::expiry.eq(input.expiry.policy),
            loyalty_program::expiry_days.eq(input.expiry.days),
            loyalty_program::qualification_basis.eq(input.qualification.basis),
            loyalty_program::qualification_months.eq(input.qualification.months),
            loyalty_program::downgrade.eq(input.downgrade.policy),
            loyalty_program::grace_days.eq(input.downgrade.grace_days),
            loyalty_program::updated_at.eq(now),
            loyalty_program::version.eq(loyalty_program::version + 1),
        ))
        .returning(ProgramRow::as_returning())
        .get_result(conn)
        .await
        .map(Program::from)
}

/// Moves the configuration's version on (a tiers change); the new version.
pub async fn bump_version(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    diesel::update(loyalty_program::table)
        .set((
            loyalty_program::updated_at.eq(now),
            loyalty_program::version.eq(loyalty_program::version + 1),
        ))
        .returning(loyalty_program::version)
        .get_result(conn)
        .await
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = loyalty_tiers)]
struct TierRow {
    key: String,
    name: String,
    position: i32,
    threshold: i64,
    multiplier_percent: i32,
    #[diesel(deserialize_as = NullableTexts, serialize_as = NullableTexts)]
    benefits: Vec<String>,
}

/// The tiers, lowest first.
pub async fn tiers(mut conn: &AsyncPgConnection) -> QueryResult<Vec<Tier>> {
    let rows: Vec<TierRow> = loyalty_tiers::table
        .order(loyalty_tiers::position.asc())
        .select(TierRow::as_select())
        .load(&mut conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Tier {
            key: r.key,
            name: r.name,
            threshold: r.threshold,
            multiplier_percent: r.multiplier_percent,
            benefits: r.benefits,
        })
        .collect())
}

pub async fn replace_tiers(conn: &mut AsyncPgConnection, tiers: &[Tier]) -> QueryResult<()> {
    diesel::delete(loyalty_tiers::table).execute(conn).await?;
    let rows: Vec<TierRow> = tiers
        .iter()
        .enumerate()
        .map(|(i, t)| TierRow {
            key: t.key.clone(),
            name: t.name.clone(),
            position: i32::try_from(i).unwrap_or(i32::MAX),
            threshold: t.threshold,
            multiplier_percent: t.multiplier_percent,
            benefits: t.benefits.clone(),
        })
        .collect();
    diesel::insert_into(loyalty_tiers::table)
        .values(rows)
        .execute(conn)
        .await
        .map(drop)
}

/// The tier a member holds (`None`: not a member).
pub async fn account_tier(
    conn: &mut AsyncPgConnection,
    customer_id: uuid::Uuid,
) -> QueryResult<Option<Option<String>>> {
    loyalty_accounts::table
        .find(customer_id)
        .select(loyalty_accounts::tier_key)
        .first(conn)
        .await
        .optional()
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    customer_id: uuid::Uuid,
}

/// The next `batch` members after `after`, locked; those a request holds are skipped.
pub async fn claim_members(
    conn: &mut AsyncPgConnection,
    after: uuid::Uuid,
    batch: i64,
) -> QueryResult<Vec<uuid::Uuid>> {
    let rows: Vec<Claimed> = diesel::sql_query(
        "SELECT customer_id FROM loyalty_accounts WHERE customer_id > $1 \
         ORDER BY customer_id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind::<SqlUuid, _>(after)
    .bind::<BigInt, _>(batch)
    .prepared()
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.customer_id).collect())
}
