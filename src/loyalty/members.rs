//! One member's points and standing: earning on a purchase, taking back on a refund,
//! redemptions and adjustments, and the standing the API shows. Every write locks the
//! member's account first, so that concurrent requests queue and the balance stays exact.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use uuid::Uuid;

use super::evaluation::{self, ChangeRecord, Contribution, Expiring, Standing};
use super::json::{
    EntryKind, ExpiringPoints, HeldTier, Keep, LedgerEntry, LoyaltyStatus, NextTier, PointsInput,
    PointsRequestKind, PointsSummary, Posting, Program, QualificationBasis, Qualifying, Tier,
    TierChange,
};
use super::ledger::{self, Debit, EntryRecord, Postings, PurchaseRef};
use super::store;
use crate::auth::Actor;
use crate::domain::optional_text;
use crate::events::{EventType, NewEvent};
use crate::http::error::{ApiError, FieldError};
use crate::http::validation::Checks;
use crate::journal::{self, Change};

pub fn entry_view(r: EntryRecord) -> LedgerEntry {
    LedgerEntry {
        id: r.id,
        kind: r.kind,
        points: r.points,
        lot_id: r.lot_id,
        expires_at: r.expires_at,
        purchase_id: r.purchase_id,
        posting_id: r.posting_id,
        reason: r.reason,
        occurred_at: r.occurred_at,
        created_at: r.created_at,
    }
}

pub fn change_view(r: ChangeRecord) -> TierChange {
    TierChange {
        id: r.id,
        customer_id: r.customer_id,
        from_tier: r.from_tier,
        to_tier: r.to_tier,
        direction: r.direction,
        reason: r.reason,
        basis: r.basis,
        qualifying: r.qualifying,
        threshold: r.threshold,
        window_from: r.window_from,
        window_to: r.window_to,
        changed_at: r.changed_at,
        config_version: r.config_version,
    }
}

fn moved(entries: &[EntryRecord]) -> i64 {
    entries.iter().map(|e| e.points).sum()
}

/// What a change wrote to members' accounts (ledger entries, tier moves), for its events.
#[derive(Debug, Default)]
pub struct Changes {
    pub entries: Vec<EntryRecord>,
    pub moves: Vec<ChangeRecord>,
}

impl Changes {
    fn add(&mut self, other: Changes) {
        self.entries.extend(other.entries);
        self.moves.extend(other.moves);
    }

    /// The change's events, for its journal entry: `loyalty.points_changed` for each member
    /// whose balance moved (`previous.balance`: their ledger balance before the change),
    /// then `loyalty.tier_changed` for each tier move (`previous.tier`: the tier left). The
    /// members are read once, after the change, whatever their number.
    pub async fn events(
        &self,
        conn: &mut AsyncPgConnection,
        now: DateTime<Utc>,
    ) -> Result<Vec<NewEvent>, ApiError> {
        let program = store::program(conn).await?;
        Ok(self.announced(conn, &program, now).await?.0)
    }

    /// [`Self::events`] under a programme already read, with the standings after the change of
    /// the members it moved (by customer id).
    async fn announced(
        &self,
        conn: &mut AsyncPgConnection,
        program: &Program,
        now: DateTime<Utc>,
    ) -> Result<(Vec<NewEvent>, BTreeMap<Uuid, LoyaltyStatus>), ApiError> {
        let mut moved: BTreeMap<Uuid, i64> = BTreeMap::new();
        for e in &self.entries {
            *moved.entry(e.customer_id).or_default() += e.points;
        }
        moved.retain(|_, points| *points != 0);
        let mut ids: Vec<Uuid> = moved.keys().copied().collect();
        ids.extend(self.moves.iter().map(|m| m.customer_id));
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok((Vec::new(), BTreeMap::new()));
        }
        let (views, tiers) = views_under(conn, program, &ids, now, EXPIRING_DAYS).await?;
        let views: BTreeMap<Uuid, LoyaltyStatus> =
            views.into_iter().map(|v| (v.customer_id, v)).collect();
        let mut out = Vec::with_capacity(moved.len() + self.moves.len());
        for (id, points) in &moved {
            if let Some(view) = views.get(id) {
                out.push(
                    NewEvent::new(EventType::LoyaltyPointsChanged, id, view)
                        .previous(json!({ "balance": view.balance - points })),
                );
            }
        }
        for change in &self.moves {
            if let Some(view) = views.get(&change.customer_id) {
                let left = change.from_tier.clone().map(|key| HeldTier {
                    tier: tiers.iter().find(|t| t.key == key).cloned(),
                    key,
                    // Held since the move before this one (the history is oldest first).
                    since: view
                        .history
                        .iter()
                        .position(|h| h.id == change.id)
                        .and_then(|i| i.checked_sub(1))
                        .map(|i| view.history[i].changed_at),
                });
                out.push(
                    NewEvent::new(EventType::LoyaltyTierChanged, change.customer_id, view)
                        .previous(json!({ "tier": left })),
                );
            }
        }
        Ok((out, views))
    }
}

/// Locks members' accounts (making them members if need be, on the tier they reach), and
/// writes what lapsed: what every change of points starts with. Their balances then, and
/// what was written (to announce with the rest of the change).
pub async fn open_accounts(
    conn: &mut AsyncPgConnection,
    customer_ids: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(Vec<ledger::Balance>, Changes), ApiError> {
    let mut balances = ledger::lock_accounts(conn, customer_ids).await?;
    let basis = store::program(conn).await?.config.qualification.basis;
    let settled = settle(conn, basis, customer_ids, now).await?;
    for b in &mut balances {
        b.balance += moved_for(&settled.entries, b.customer_id);
    }
    Ok((balances, settled))
}

/// For locked accounts: writes what lapsed and moves up the members whose qualifying sum
/// reaches a higher tier (or who have none yet). The expiry entries and moves written.
/// Both statements are sent together: the evaluation, run after the expiry, sees it.
async fn settle(
    conn: &AsyncPgConnection,
    basis: QualificationBasis,
    customer_ids: &[Uuid],
    now: DateTime<Utc>,
) -> diesel::QueryResult<Changes> {
    let (entries, moves) = tokio::try_join!(
        ledger::expire(conn, customer_ids, now),
        evaluation::evaluate(conn, basis, customer_ids, now, true),
    )?;
    Ok(Changes { entries, moves })
}

async fn open_account(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(i64, Changes), ApiError> {
    let (balances, changes) = open_accounts(conn, &[customer_id], now).await?;
    Ok((balances.first().map_or(0, |b| b.balance), changes))
}

fn moved_for(entries: &[EntryRecord], customer_id: Uuid) -> i64 {
    entries
        .iter()
        .filter(|e| e.customer_id == customer_id)
        .map(|e| e.points)
        .sum()
}

/// After a merge summed other members' points into `customer_id`'s account (in the merge's
/// transaction): moves the member up when the summed qualifying points reach a higher tier,
/// as a purchase would (never down; nothing lapses here: the next pass does that). The tier
/// moves written, with their events.
pub async fn after_merge(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> Result<(Vec<ChangeRecord>, Vec<NewEvent>), ApiError> {
    let program = store::program(conn).await?;
    let now = Utc::now();
    let customer = [customer_id];
    ledger::lock_accounts(conn, &customer).await?;
    let basis = program.config.qualification.basis;
    let moves = evaluation::evaluate(conn, basis, &customer, now, true).await?;
    let changes = Changes {
        entries: Vec::new(),
        moves,
    };
    let events = changes.events(conn, now).await?;
    Ok((changes.moves, events))
}

async fn tier_of(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> Result<Option<String>, ApiError> {
    Ok(store::account_tier(conn, customer_id).await?.flatten())
}

/// What the programme needs to know of a purchase (the purchases area, which calls the
/// programme, describes its records with it).
#[derive(Debug, Clone, Copy)]
pub struct PurchaseFacts<'a> {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub currency: &'a str,
    /// In minor units.
    pub amount: i64,
    /// What was refunded so far, in minor units.
    pub refunded: i64,
    pub occurred_at: DateTime<Utc>,
}

/// Earns a new purchase's points and moves the customer up when it crosses a threshold; in
/// the purchase's transaction, with `program` as read in it. `None` when the purchase is not
/// in the programme's currency. With the events of what it changed, for the purchase's
/// journal entry.
pub async fn on_purchase(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    program: &Program,
    purchase: &PurchaseFacts<'_>,
) -> Result<(Option<PointsSummary>, Vec<NewEvent>), ApiError> {
    if purchase.currency != program.config.currency {
        return Ok((None, Vec::new()));
    }
    let now = Utc::now();
    let customer = [purchase.customer_id];
    let mut balance = ledger::lock_accounts(conn, &customer)
        .await?
        .first()
        .map_or(0, |b| b.balance);
    // The points are earned at the tier held before this purchase; they may have lapsed
    // already when the purchase is back-dated. Sent with the settling, which runs after it.
    let basis = program.config.qualification.basis;
    let shared: &AsyncPgConnection = conn;
    let bought = [purchase.id];
    let (earned, settled) = tokio::try_join!(
        ledger::earn(shared, actor, &bought),
        settle(shared, basis, &customer, now),
    )?;
    let points = moved(&earned);
    balance += points;
    let mut changes = Changes {
        entries: earned,
        moves: Vec::new(),
    };
    balance += moved(&settled.entries);
    changes.add(settled);
    let (events, standings) = changes.announced(conn, program, now).await?;
    // The standing read for the events holds the tier, unless nothing moved.
    let tier = match standings.get(&purchase.customer_id) {
        Some(standing) => standing.tier.as_ref().map(|held| held.key.clone()),
        None => tier_of(conn, purchase.customer_id).await?,
    };
    let summary = PointsSummary {
        points,
        balance,
        tier,
    };
    Ok((Some(summary), events))
}

/// What a recorded purchase earned, with the balance and tier now (the answer to a
/// re-sent purchase). `None` when it is not in the programme's currency.
pub async fn summary(
    conn: &mut AsyncPgConnection,
    program: &Program,
    purchase: &PurchaseFacts<'_>,
) -> Result<Option<PointsSummary>, ApiError> {
    if purchase.currency != program.config.currency {
        return Ok(None);
    }
    let customer_id = purchase.customer_id;
    Ok(Some(PointsSummary {
        points: ledger::purchase_points(conn, purchase.id).await?.earned,
        balance: ledger::available(conn, customer_id, Utc::now()).await?,
        tier: tier_of(conn, customer_id).await?,
    }))
}

/// Takes back the points of the refunded share of a purchase: the refund of `amount` (of
/// the purchase's new refunded total) takes `floor(earned × refunded / total)` less what the
/// earlier refunds took, so that the refunds of a whole purchase take back exactly what it
/// earned. Points the customer has spent already are not taken from later ones: the entry
/// takes what the balance holds and its reason says what could not be taken.
pub async fn on_refund(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    purchase: &PurchaseFacts<'_>,
    amount: i64,
) -> Result<(Option<PointsSummary>, Vec<NewEvent>), ApiError> {
    let earned = ledger::purchase_points(conn, purchase.id).await?;
    if earned.earned == 0 || purchase.amount == 0 {
        return Ok((None, Vec::new()));
    }
    let share = |refunded: i64| {
        let points = i128::from(earned.earned) * i128::from(refunded) / i128::from(purchase.amount);
        i64::try_from(points).unwrap_or(i64::MAX)
    };
    let due = share(purchase.refunded) - share(purchase.refunded - amount);
    let customer_id = purchase.customer_id;
    let now = Utc::now();
    let (mut balance, mut changes) = open_account(conn, customer_id, now).await?;
    let taken = due.min(balance);
    if taken > 0 {
        let reason = if taken < due {
            format!(
                "refund of {amount} minor units: {due} points due, {} already spent",
                due - taken
            )
        } else {
            format!("refund of {amount} minor units")
        };
        let entries = ledger::debit(
            conn,
            actor,
            &Postings {
                customer_ids: &[customer_id],
                posting_ids: &[Uuid::now_v7()],
                points: &[taken],
                reason: Some(&reason),
            },
            Debit {
                kind: EntryKind::Reverse,
                purchase: Some(PurchaseRef {
                    id: purchase.id,
                    occurred_at: purchase.occurred_at,
                    lot_id: earned.lot_id,
                }),
            },
        )
        .await?;
        balance += moved(&entries);
        changes.entries.extend(entries);
    }
    let events = changes.events(conn, now).await?;
    let summary = PointsSummary {
        points: -taken,
        balance,
        tier: tier_of(conn, customer_id).await?,
    };
    Ok((Some(summary), events))
}

/// Checks a points request: the points moved (signed) and the reason.
fn validate(input: &PointsInput) -> Result<(i64, Option<String>), ApiError> {
    let mut checks = Checks::new();
    let checked = input
        .reason
        .as_ref()
        .map(|raw| checks.check("reason", optional_text(Some(raw), 500)));
    // A reason that failed its check is reported once, not also as missing.
    let reason_failed = matches!(checked, Some(None));
    let reason = checked.flatten().flatten();
    match input.kind {
        PointsRequestKind::Redeem if !(1..=super::MAX_POINTS).contains(&input.points) => {
            checks.fail("points", format!("must be from 1 to {}", super::MAX_POINTS));
        }
        PointsRequestKind::Redeem => {}
        PointsRequestKind::Adjust => match super::adjustment(input.points) {
            Err(message) => checks.fail("points", message),
            Ok(_) if reason.is_none() && !reason_failed => {
                checks.fail("reason", "is required to adjust points");
            }
            Ok(_) => {}
        },
    }
    checks.finish()?;
    let signed = match input.kind {
        PointsRequestKind::Redeem => -input.points,
        PointsRequestKind::Adjust => input.points,
    };
    Ok((signed, reason))
}

/// The `409` of a request for more points than are available.
pub fn overdrawn(available: i64) -> ApiError {
    ApiError::conflict(format!("only {available} points are available")).with_errors(vec![
        FieldError::new("points", format!("must be at most {available}")),
    ])
}

/// The audit action of a manual posting of `kind`.
fn posting_action(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Redeem => "loyalty.points_redeem",
        EntryKind::Adjust => "loyalty.points_adjust",
        EntryKind::Earn => "loyalty.points_earn",
        EntryKind::Expire => "loyalty.points_expire",
        EntryKind::Reverse => "loyalty.points_reverse",
    }
}

/// Redeems or adjusts a live customer's points; audited. Never overdraws, whatever runs at
/// the same time: the account is locked while its lots are spent.
pub async fn post_points(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    customer_id: Uuid,
    input: PointsInput,
) -> Result<Posting, ApiError> {
    let (points, reason) = validate(&input)?;
    let kind = match input.kind {
        PointsRequestKind::Redeem => EntryKind::Redeem,
        PointsRequestKind::Adjust => EntryKind::Adjust,
    };
    conn.transaction(async |conn| {
        crate::customers::lock_live(conn, customer_id).await?;
        let now = Utc::now();
        let (balance, mut changes) = open_account(conn, customer_id, now).await?;
        if balance + points < 0 {
            return Err(overdrawn(balance));
        }
        let posting_id = Uuid::now_v7();
        let postings = Postings {
            customer_ids: &[customer_id],
            posting_ids: &[posting_id],
            points: &[points.abs()],
            reason: reason.as_deref(),
        };
        let entries = if points > 0 {
            ledger::credit(conn, actor, &postings).await?
        } else {
            let debit = Debit {
                kind,
                purchase: None,
            };
            ledger::debit(conn, actor, &postings, debit).await?
        };
        let posting = Posting {
            id: posting_id,
            customer_id,
            kind,
            points,
            balance: balance + moved(&entries),
            entries: entries.iter().cloned().map(entry_view).collect(),
        };
        changes.entries.extend(entries);
        let change = Change::audited(
            posting_action(kind),
            "customer",
            customer_id,
            json!({"points": {"from": balance, "to": posting.balance},
                   "posting_id": posting_id, "reason": reason}),
        );
        let events = changes.events(conn, now).await?;
        journal::record(conn, actor, change.and_all(events)).await?;
        Ok(posting)
    })
    .await
}

/// Until when the contributions already in the window keep the sum at `threshold`: the
/// time the oldest ones leave the window and the sum drops below it.
fn secure_until(
    contributions: &[evaluation::Contribution],
    sum: i64,
    threshold: i64,
    months: i32,
) -> Option<DateTime<Utc>> {
    if threshold == 0 || sum < threshold {
        return None;
    }
    let mut left = sum;
    for c in contributions {
        left -= c.value;
        if left < threshold {
            let months = chrono::Months::new(u32::try_from(months).unwrap_or(0));
            return c.at.checked_add_months(months);
        }
    }
    None
}

fn explanation(basis: QualificationBasis, sum: i64, q: &Qualifying, tier: Option<&Tier>) -> String {
    let what = match basis {
        QualificationBasis::PointsEarned => format!("{sum} points earned"),
        QualificationBasis::AmountSpent => format!("{sum} minor units spent"),
    };
    let window = format!(
        "from {} to {}",
        q.window_from.format("%Y-%m-%d"),
        q.window_to.format("%Y-%m-%d")
    );
    match tier {
        Some(t) if sum >= t.threshold => {
            format!("{what} {window} reach {} ({})", t.key, t.threshold)
        }
        Some(t) => format!(
            "{what} {window} are below {}'s threshold ({}); the tier is kept by the downgrade policy",
            t.key, t.threshold
        ),
        None => format!("{what} {window}"),
    }
}

/// The points lapsing soon that a member's view lists unless asked otherwise (days ahead).
pub const EXPIRING_DAYS: i32 = 90;

/// A customer's standing: balance, tier and why, what the next tier takes, what keeps the
/// current one, the points lapsing within `expiring_days`, and the tier history.
pub async fn status(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    expiring_days: i32,
) -> Result<LoyaltyStatus, ApiError> {
    let (views, _) = views(conn, &[customer_id], Utc::now(), expiring_days).await?;
    views
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("a standing query returned no row"))
}

/// Customers' standings at `now` (as `GET /v1/customers/{id}/loyalty` shows them), in id
/// order, read with one statement whatever their number; with the programme's tiers.
pub async fn views(
    conn: &mut AsyncPgConnection,
    customer_ids: &[Uuid],
    now: DateTime<Utc>,
    expiring_days: i32,
) -> Result<(Vec<LoyaltyStatus>, Vec<Tier>), ApiError> {
    let program: Program = store::program(conn).await?;
    views_under(conn, &program, customer_ids, now, expiring_days).await
}

/// [`views`] under a programme already read.
async fn views_under(
    conn: &AsyncPgConnection,
    program: &Program,
    customer_ids: &[Uuid],
    now: DateTime<Utc>,
    expiring_days: i32,
) -> Result<(Vec<LoyaltyStatus>, Vec<Tier>), ApiError> {
    let horizon = now + Duration::days(i64::from(expiring_days));
    let basis = program.config.qualification.basis;
    let (tiers, standings) = tokio::try_join!(
        store::tiers(conn),
        evaluation::standings(conn, basis, customer_ids, now, horizon),
    )?;
    let views = standings
        .into_iter()
        .map(|s| view(program, &tiers, s))
        .collect::<Result<_, _>>()?;
    Ok((views, tiers))
}

/// A standing as the API shows it.
fn view(program: &Program, tiers: &[Tier], standing: Standing) -> Result<LoyaltyStatus, ApiError> {
    let basis = program.config.qualification.basis;
    let sum = standing.qualifying;
    let contributions: Vec<Contribution> =
        serde_json::from_value(standing.contributions).map_err(ApiError::internal)?;
    let expiring: Vec<Expiring> =
        serde_json::from_value(standing.expiring).map_err(ApiError::internal)?;
    let history: Vec<ChangeRecord> =
        serde_json::from_value(standing.history).map_err(ApiError::internal)?;
    // Not yet a member: the tier their (empty) sum would reach.
    let held_key = match (&standing.member_since, &standing.tier_key) {
        (None, _) => tiers.first().map(|t| t.key.clone()),
        (Some(_), key) => key.clone(),
    };
    let held = held_key
        .as_ref()
        .and_then(|key| tiers.iter().position(|t| &t.key == key));
    let mut qualifying = Qualifying {
        basis,
        sum,
        window_from: standing.window_from,
        window_to: standing.window_to,
        explanation: String::new(),
    };
    qualifying.explanation = explanation(basis, sum, &qualifying, held.map(|i| &tiers[i]));
    let next_tier = match held {
        Some(i) => tiers.get(i + 1),
        None if held_key.is_none() => tiers.first(),
        None => None,
    }
    .map(|t| NextTier {
        key: t.key.clone(),
        threshold: t.threshold,
        missing: (t.threshold - sum).max(0),
    });
    let keep = held.map(|i| {
        let threshold = tiers[i].threshold;
        let downgrade = program.config.downgrade.clone();
        Keep {
            threshold,
            shortfall: (threshold - sum).max(0),
            secure_until: secure_until(
                &contributions,
                sum,
                threshold,
                program.config.qualification.months,
            ),
            downgrade: downgrade.policy,
            below_since: standing.below_since,
            downgrade_after: standing
                .below_since
                .zip(downgrade.grace_days)
                .map(|(since, days)| since + Duration::days(i64::from(days))),
        }
    });
    let tier = held_key.map(|key| HeldTier {
        tier: tiers.iter().find(|t| t.key == key).cloned(),
        key,
        since: standing.tier_since,
    });
    Ok(LoyaltyStatus {
        customer_id: standing.customer_id,
        member_since: standing.member_since,
        balance: standing.balance,
        tier,
        qualifying,
        next_tier,
        keep,
        expiring: expiring
            .into_iter()
            .map(|e| ExpiringPoints {
                expires_at: e.expires_at,
                points: e.points,
            })
            .collect(),
        history: history.into_iter().map(change_view).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).unwrap()
    }

    #[test]
    fn the_tier_is_secure_until_the_contribution_that_drops_the_sum_leaves() {
        let c = [
            evaluation::Contribution {
                at: at(1),
                value: 300,
            },
            evaluation::Contribution {
                at: at(5),
                value: 500,
            },
            evaluation::Contribution {
                at: at(9),
                value: 400,
            },
        ];
        // 1200 in the window; 1000 needed: losing 300 leaves 900 < 1000.
        assert_eq!(
            secure_until(&c, 1200, 1000, 12),
            Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap())
        );
        // 800 needed: 900, then 400 < 800 when the second leaves.
        assert_eq!(
            secure_until(&c, 1200, 800, 12),
            Some(Utc.with_ymd_and_hms(2027, 1, 5, 0, 0, 0).unwrap())
        );
        assert_eq!(secure_until(&c, 1200, 0, 12), None);
        assert_eq!(secure_until(&c, 1200, 1300, 12), None);
    }
}
