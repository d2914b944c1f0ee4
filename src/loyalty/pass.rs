//! The evaluation pass: expires lapsed points and re-evaluates every member's tier, a batch
//! of members per transaction, set-wise in SQL. Several instances may run it at once: each
//! batch locks its accounts with `FOR UPDATE SKIP LOCKED`, so no member is changed by two
//! passes at the same instant, and a second look at a member changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use uuid::Uuid;

use super::evaluation;
use super::json::{
    ChangeDirection, EvaluationReport, Move, SimulatedTier, Simulation, SimulationInput,
};
use super::members::Changes;
use super::{ledger, store};
use crate::auth::Actor;
use crate::db::DbPool;
use crate::http::error::ApiError;
use crate::journal::{self, Change};

/// Members per transaction.
const BATCH: i64 = 5000;

/// Runs one pass over every member at `now`; what it changed. Each batch that changed a
/// member is written down under `actor` with its figures and events.
pub async fn run(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<EvaluationReport, ApiError> {
    let mut report = EvaluationReport {
        started_at: Some(Utc::now()),
        ..EvaluationReport::default()
    };
    let mut moves: BTreeMap<(Option<String>, Option<String>), i64> = BTreeMap::new();
    let mut after = Uuid::nil();
    loop {
        let batch = conn
            .transaction(async |conn| {
                let ids = store::claim_members(conn, after, BATCH).await?;
                let Some(&last) = ids.last() else {
                    return Ok::<_, ApiError>(None);
                };
                let basis = store::program(conn).await?.config.qualification.basis;
                let written = Changes {
                    entries: ledger::expire(conn, &ids, now).await?,
                    moves: evaluation::evaluate(conn, basis, &ids, now, false).await?,
                };
                if !(written.entries.is_empty() && written.moves.is_empty()) {
                    let figures = json!({"members": ids.len(),
                                         "expired_lots": written.entries.len(),
                                         "tier_changes": written.moves.len()});
                    let change = Change::audited(
                        "loyalty.evaluated",
                        "loyalty_program",
                        "evaluation",
                        figures,
                    );
                    let events = written.events(conn, now).await?;
                    journal::record(conn, actor, change.and_all(events)).await?;
                }
                Ok(Some((ids.len(), last, written.entries, written.moves)))
            })
            .await?;
        let Some((members, last, expired, changes)) = batch else {
            break;
        };
        after = last;
        report.members += i64::try_from(members).unwrap_or(i64::MAX);
        report.expired_lots += i64::try_from(expired.len()).unwrap_or(i64::MAX);
        report.expired_points -= expired.iter().map(|e| e.points).sum::<i64>();
        for change in changes {
            match change.direction {
                ChangeDirection::Up => report.upgrades += 1,
                ChangeDirection::Down => report.downgrades += 1,
                ChangeDirection::Moved => report.moved += 1,
            }
            *moves.entry((change.from_tier, change.to_tier)).or_default() += 1;
        }
    }
    report.moves = moves
        .into_iter()
        .map(|((from_tier, to_tier), members)| Move {
            from_tier,
            to_tier,
            members,
        })
        .collect();
    report.finished_at = Some(Utc::now());
    Ok(report)
}

/// Runs the pass every `every`, first after one interval, for as long as the service runs.
pub async fn schedule(pool: DbPool, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let mut conn = match pool.get().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(error = %err, "the loyalty pass found no connection");
                continue;
            }
        };
        match run(&mut conn, &ledger::programme_actor(), Utc::now()).await {
            Ok(r) => tracing::info!(
                members = r.members,
                expired_points = r.expired_points,
                upgrades = r.upgrades,
                downgrades = r.downgrades,
                "loyalty pass done"
            ),
            Err(err) => tracing::warn!(error = ?err, "the loyalty pass failed"),
        }
    }
}

/// Where members would land under proposed tiers (and qualification), changing nothing.
pub async fn simulate(
    conn: &mut AsyncPgConnection,
    input: SimulationInput,
) -> Result<Simulation, ApiError> {
    let tiers = super::validate_tiers(input.tiers)?;
    let program = store::program(conn).await?;
    let qualification = match input.qualification {
        Some(q) => {
            super::validate_qualification(&q)?;
            q
        }
        None => program.config.qualification,
    };
    let keys: Vec<String> = tiers.iter().map(|t| t.key.clone()).collect();
    let thresholds: Vec<i64> = tiers.iter().map(|t| t.threshold).collect();
    let at = Utc::now();
    let placed = evaluation::place(
        conn,
        qualification.basis,
        qualification.months,
        &keys,
        &thresholds,
        at,
    )
    .await?;
    let mut simulated: Vec<SimulatedTier> = tiers
        .iter()
        .map(|t| SimulatedTier {
            key: t.key.clone(),
            threshold: t.threshold,
            members: 0,
            unchanged: 0,
        })
        .collect();
    for p in &placed {
        if let Some(tier) = simulated
            .iter_mut()
            .find(|t| Some(&t.key) == p.proposed.as_ref())
        {
            tier.members += p.members;
            if p.current.as_ref() == Some(&tier.key) {
                tier.unchanged += p.members;
            }
        }
    }
    let mut moves: Vec<Move> = placed
        .into_iter()
        .filter(|p| p.current != p.proposed)
        .map(|p| Move {
            from_tier: p.current,
            to_tier: p.proposed,
            members: p.members,
        })
        .collect();
    moves.sort_by(|a, b| (&a.from_tier, &a.to_tier).cmp(&(&b.from_tier, &b.to_tier)));
    Ok(Simulation {
        qualification,
        at,
        members: simulated.iter().map(|t| t.members).sum(),
        tiers: simulated,
        moves,
    })
}
