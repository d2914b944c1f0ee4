//! The loyalty programme (DOMAIN.md section 6).
//!
//! - here: the programme's configuration and its tiers, validated, versioned and audited;
//! - `ledger`: the points ledger and its expiry lots, written set-wise;
//! - `evaluation`: the qualifying sums and tier moves, set-wise;
//! - `members`: one member's points and standing (purchases, refunds, redemptions);
//! - `pass`: the evaluation pass, its schedule, and the simulation of proposed tiers.
//!
//! Points for many customers at once (`POST /v1/loyalty/points/bulk`) select them with a
//! customer query, so they live in `customer_query/points.rs`.

pub mod evaluation;
pub mod json;
pub mod ledger;
pub mod members;
pub mod pass;
mod routes;
pub mod store;

use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::audit;
use crate::auth::Actor;
use crate::domain::required_text;
use crate::http::error::ApiError;
use crate::http::etag::IfMatch;
use crate::http::validation::Checks;
use crate::journal::{self, Change};
use json::{DowngradePolicy, ExpiryPolicy, Program, ProgramInput, Qualification, Tier};

pub use routes::configure;

pub const MAX_TIERS: usize = 20;
/// The most points one request moves.
pub const MAX_POINTS: i64 = 1_000_000_000_000;

/// Checks the points of an adjustment: not 0, at most `MAX_POINTS` either way.
pub fn adjustment(points: i64) -> Result<i64, String> {
    if points != 0 && (-MAX_POINTS..=MAX_POINTS).contains(&points) {
        Ok(points)
    } else {
        Err(format!(
            "must not be 0, and from -{MAX_POINTS} to {MAX_POINTS}"
        ))
    }
}

/// Checks a qualification rule.
pub fn validate_qualification(q: &Qualification) -> Result<(), ApiError> {
    let mut checks = Checks::new();
    check_qualification(&mut checks, "qualification", q);
    checks.finish()
}

fn check_qualification(checks: &mut Checks, at: &str, q: &Qualification) {
    if !(1..=120).contains(&q.months) {
        checks.fail(&format!("{at}.months"), "must be from 1 to 120");
    }
}

/// Checks a programme configuration, reporting every error at once.
pub fn validate_program(input: &ProgramInput) -> Result<(), ApiError> {
    let mut checks = Checks::new();
    checks.check("currency", crate::domain::currency_code(&input.currency));
    if !(1..=1_000_000).contains(&input.earn.points) {
        checks.fail("earn.points", "must be from 1 to 1000000");
    }
    if !(1..=100_000_000).contains(&input.earn.per_amount) {
        checks.fail("earn.per_amount", "must be from 1 to 100000000 minor units");
    }
    match (input.expiry.policy, input.expiry.days) {
        (ExpiryPolicy::AfterDays, Some(days)) if (1..=3650).contains(&days) => {}
        (ExpiryPolicy::AfterDays, _) => {
            checks.fail("expiry.days", "must be from 1 to 3650 with `after_days`");
        }
        (_, Some(_)) => checks.fail("expiry.days", "goes with `after_days` only"),
        (_, None) => {}
    }
    check_qualification(&mut checks, "qualification", &input.qualification);
    match (input.downgrade.policy, input.downgrade.grace_days) {
        (DowngradePolicy::GracePeriod, Some(days)) if (1..=365).contains(&days) => {}
        (DowngradePolicy::GracePeriod, _) => checks.fail(
            "downgrade.grace_days",
            "must be from 1 to 365 with `grace_period`",
        ),
        (_, Some(_)) => checks.fail("downgrade.grace_days", "goes with `grace_period` only"),
        (_, None) => {}
    }
    checks.finish()
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= 50
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks and cleans the ordered tiers: unique keys, first threshold 0, each next higher.
pub fn validate_tiers(tiers: Vec<Tier>) -> Result<Vec<Tier>, ApiError> {
    let mut checks = Checks::new();
    if tiers.len() > MAX_TIERS {
        checks.fail("tiers", format!("must hold at most {MAX_TIERS} tiers"));
    }
    let mut cleaned = Vec::with_capacity(tiers.len());
    let mut previous: Option<i64> = None;
    for (i, tier) in tiers.into_iter().enumerate() {
        let at = |field: &str| format!("tiers[{i}].{field}");
        if !valid_key(&tier.key) {
            checks.fail(
                &at("key"),
                "must be lower case letters, digits or `_`, starting with a letter, up to 50",
            );
        } else if cleaned.iter().any(|t: &Tier| t.key == tier.key) {
            checks.fail(&at("key"), "is given to another tier");
        }
        let name = checks.check(&at("name"), required_text(&tier.name, 100));
        match previous {
            None if tier.threshold != 0 => {
                checks.fail(&at("threshold"), "must be 0 for the first tier");
            }
            Some(p) if tier.threshold <= p => {
                checks.fail(&at("threshold"), "must be higher than the previous tier's");
            }
            _ if tier.threshold < 0 => checks.fail(&at("threshold"), "must not be negative"),
            _ => {}
        }
        previous = Some(tier.threshold);
        if !(0..=1000).contains(&tier.multiplier_percent) {
            checks.fail(&at("multiplier_percent"), "must be from 0 to 1000");
        }
        if tier.benefits.len() > 20 {
            checks.fail(&at("benefits"), "must hold at most 20 lines");
        }
        let mut benefits = Vec::with_capacity(tier.benefits.len());
        for (j, benefit) in tier.benefits.iter().enumerate() {
            if let Some(b) = checks.check(
                &format!("{}[{j}]", at("benefits")),
                required_text(benefit, 200),
            ) {
                benefits.push(b);
            }
        }
        if let Some(name) = name {
            cleaned.push(Tier {
                name,
                benefits,
                ..tier
            });
        }
    }
    checks.finish()?;
    Ok(cleaned)
}

/// Replaces the programme's configuration; a new version, audited. Nothing is written when
/// nothing changes.
pub async fn set_program(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    if_match: &IfMatch,
    input: ProgramInput,
) -> Result<Program, ApiError> {
    validate_program(&input)?;
    conn.transaction(async |conn| {
        let before = store::lock_program(conn).await?;
        if_match.check(before.version)?;
        if before.config == input {
            return Ok(before);
        }
        let after = store::update_program(conn, &input).await?;
        journal::record(
            conn,
            actor,
            Change::audited(
                "loyalty.program_changed",
                "loyalty_program",
                "program",
                audit::diff(&before.config, &after.config),
            ),
        )
        .await?;
        Ok(after)
    })
    .await
}

/// Replaces the tiers; the configuration's version moves on, audited.
pub async fn set_tiers(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    if_match: &IfMatch,
    tiers: Vec<Tier>,
) -> Result<(Vec<Tier>, i64), ApiError> {
    let tiers = validate_tiers(tiers)?;
    conn.transaction(async |conn| {
        let program = store::lock_program(conn).await?;
        if_match.check(program.version)?;
        let before = store::tiers(conn).await?;
        if before == tiers {
            return Ok((before, program.version));
        }
        store::replace_tiers(conn, &tiers).await?;
        let version = store::bump_version(conn).await?;
        journal::record(
            conn,
            actor,
            Change::audited(
                "loyalty.tiers_changed",
                "loyalty_program",
                "tiers",
                serde_json::json!({"tiers": {"from": before, "to": tiers}}),
            ),
        )
        .await?;
        Ok((tiers, version))
    })
    .await
}
