//! Customers written in bulk (imports): each row checked by the very rules of the single
//! endpoints, then a batch written set-wise: one statement inserts the new customers with
//! their first lifecycle entry, one updates the changed ones (only if unchanged since read:
//! no lost update) with their stage changes.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use super::json::{MatchAction, RowMatch};
use super::{Failure, Mode, Outcome, Raw, Row};
use crate::auth::{Actor, CustomerAccess};
use crate::customers::MatchedEarlier;
use crate::customers::json::{AuthoritySource, CustomerInput, DuplicateReason, OnDuplicate};
use crate::customers::store::{self, CustomerDraft, CustomerRecord, written_records};
use crate::customers::{matching, rules};
use crate::domain::{ChurnCause, Email};
use crate::http::patch::Patch;
use crate::journal;

/// The natural key a row is matched on: its external id, else its email.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    External(String),
    Email(String),
}

impl Key {
    fn of(input: &CustomerInput) -> Option<Key> {
        match (&input.external_id, &input.email) {
            (Patch::Value(id), _) if !id.trim().is_empty() => {
                Some(Key::External(id.trim().to_owned()))
            }
            (_, Patch::Value(email)) if !email.trim().is_empty() => {
                Some(Key::Email(email.trim().to_lowercase()))
            }
            _ => None,
        }
    }

    fn field(&self) -> &'static str {
        match self {
            Key::External(_) => "external_id",
            Key::Email(_) => "email",
        }
    }
}

/// A row ready to write.
struct Ready {
    /// The customer's id: the matched one, or the one a new customer is created with.
    id: Uuid,
    line: u64,
    raw: Raw,
    base: Option<CustomerRecord>,
    draft: CustomerDraft,
    reason: Option<String>,
    reason_code: Option<ChurnCause>,
    /// Later rows of the batch matched to the new customer this row creates
    /// (`on_duplicate=skip|merge`): they stand or fall with it.
    riders: Vec<Rider>,
}

/// A row skipped as a duplicate of, or merged into, the new customer an earlier row of its
/// batch creates.
struct Rider {
    line: u64,
    raw: Raw,
    matched: RowMatch,
    /// Merged, and it added something to the customer.
    added: bool,
}

/// Checks and writes one batch of customer rows, in `conn`'s transaction. With owned-only
/// access, a row that matches a customer the sender does not manage fails as a missing one
/// would (`update_only`) or as the duplicate its creation would be; a created customer is
/// the sender's, and a row naming another account manager fails.
pub async fn import(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    (mode, on_duplicate): (Mode, Option<OnDuplicate>),
    rows: &[Row],
) -> Result<Outcome, crate::http::error::ApiError> {
    let mut outcome = Outcome::default();
    let mut parsed = Vec::with_capacity(rows.len());
    for row in rows {
        match super::typed::<CustomerInput>(row) {
            Ok(input) => parsed.push((row, input)),
            Err(failures) => outcome.failures.extend(failures),
        }
    }
    // The records the rows name, in one query.
    let mut found: HashMap<Key, CustomerRecord> = HashMap::new();
    if mode != Mode::Insert {
        let keys: Vec<Key> = parsed.iter().filter_map(|(_, i)| Key::of(i)).collect();
        let externals: Vec<String> = keys
            .iter()
            .filter_map(|k| match k {
                Key::External(id) => Some(id.clone()),
                Key::Email(_) => None,
            })
            .collect();
        let emails: Vec<String> = keys
            .iter()
            .filter_map(|k| match k {
                Key::Email(e) => Some(e.clone()),
                Key::External(_) => None,
            })
            .collect();
        let records = store::by_keys(conn, &externals, &emails).await?;
        for record in records {
            if let Some(id) = &record.draft.external_id {
                found.insert(Key::External(id.clone()), record.clone());
            }
            if let Some(email) = &record.draft.email {
                found.insert(Key::Email(email.lowercase()), record);
            }
        }
    }
    let now = Utc::now();
    let mut ready = Vec::with_capacity(parsed.len());
    let mut claimed: HashMap<Uuid, u64> = HashMap::new();
    for (row, input) in parsed {
        let key = Key::of(&input);
        let base = key.as_ref().and_then(|k| found.get(k)).cloned();
        let fail = |field: &str, message: String| Failure {
            line: row.line,
            field: field.to_owned(),
            message,
            raw: row.raw.clone(),
        };
        if mode != Mode::Insert && key.is_none() {
            outcome.failures.push(fail(
                "external_id",
                "is required to match a customer (or an email)".to_owned(),
            ));
            continue;
        }
        if let (Mode::UpdateOnly, None, Some(key)) = (mode, &base, &key) {
            outcome
                .failures
                .push(fail(key.field(), "matches no customer".to_owned()));
            continue;
        }
        if let (Some(record), Some(key)) = (&base, &key)
            && !access.allows(record.draft.account_manager_id)
        {
            let message = match mode {
                Mode::UpdateOnly => "matches no customer",
                _ => "is already in use",
            };
            outcome.failures.push(fail(key.field(), message.to_owned()));
            continue;
        }
        if let (Some(record), Some(key)) = (&base, &key) {
            if record.erased_at.is_some() || record.deleted_at.is_some() {
                outcome.failures.push(fail(
                    key.field(),
                    "matches a deleted or erased customer".to_owned(),
                ));
                continue;
            }
            if let Some(line) = claimed.insert(record.id, row.line) {
                outcome.failures.push(fail(
                    key.field(),
                    format!("matches the customer of line {line} too: one row per customer"),
                ));
                continue;
            }
        }
        // A derived authority is computed from the contacts by the single endpoints; the
        // set-wise writes here do not read them.
        if let Patch::Value(q) = &input.qualification
            && q.authority_source == Some(AuthoritySource::Derived)
        {
            outcome.failures.push(fail(
                "qualification.authority_source",
                "cannot be set by an import: use PATCH /v1/customers/{id}".to_owned(),
            ));
            continue;
        }
        let creating = base.is_none();
        let blank = CustomerDraft::blank();
        let from = base.as_ref().map_or(&blank, |r| &r.draft);
        match rules::apply(input, from, creating, now) {
            Err(errors) => outcome.failures.extend(errors.into_iter().map(|e| Failure {
                line: row.line,
                field: e.field,
                message: e.message,
                raw: row.raw.clone(),
            })),
            Ok(applied) if !creating && applied.draft == *from => outcome.unchanged += 1,
            Ok(mut applied) => {
                if applied.draft.referred_by_id.is_some()
                    && applied.draft.referred_by_id == base.as_ref().map(|b| b.id)
                {
                    outcome.failures.push(fail(
                        "referred_by_id",
                        "cannot be the customer itself".to_owned(),
                    ));
                    continue;
                }
                if let Some(me) = access.owner() {
                    if creating && applied.draft.account_manager_id.is_none() {
                        applied.draft.account_manager_id = Some(me);
                    }
                    if applied.draft.account_manager_id != Some(me) {
                        outcome.failures.push(fail(
                            "account_manager_id",
                            "must be your own id: your access is limited to the customers you \
                             manage"
                                .to_owned(),
                        ));
                        continue;
                    }
                }
                ready.push(Ready {
                    id: base.as_ref().map_or_else(Uuid::now_v7, |b| b.id),
                    line: row.line,
                    raw: row.raw.clone(),
                    base,
                    draft: applied.draft,
                    reason: applied.lifecycle_reason,
                    reason_code: applied.reason_code,
                    riders: Vec::new(),
                });
            }
        }
    }
    // Account managers must be active staff users: one query for the batch.
    let managers: Vec<Uuid> = ready
        .iter()
        .filter(|r| {
            r.draft.account_manager_id != r.base.as_ref().and_then(|b| b.draft.account_manager_id)
        })
        .filter_map(|r| r.draft.account_manager_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let active = crate::users::store::active_among(conn, &managers).await?;
    let (ready, bad): (Vec<Ready>, Vec<Ready>) = ready.into_iter().partition(|r| {
        r.draft.account_manager_id.is_none_or(|m| {
            active.contains(&m)
                || r.base.as_ref().and_then(|b| b.draft.account_manager_id) == Some(m)
        })
    });
    outcome.failures.extend(bad.into_iter().map(|r| Failure {
        line: r.line,
        field: "account_manager_id".to_owned(),
        message: "must be the id of an active staff user".to_owned(),
        raw: r.raw,
    }));
    // Referrers must be live customers the sender can see: one query for the batch.
    let referrers: Vec<Uuid> = ready
        .iter()
        .filter(|r| r.draft.referred_by_id != r.base.as_ref().and_then(|b| b.draft.referred_by_id))
        .filter_map(|r| r.draft.referred_by_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let live: HashSet<Uuid> = store::live_among(conn, &referrers, access.owner())
        .await?
        .into_iter()
        .collect();
    let (ready, bad): (Vec<Ready>, Vec<Ready>) = ready.into_iter().partition(|r| {
        r.draft.referred_by_id.is_none_or(|id| {
            live.contains(&id) || r.base.as_ref().and_then(|b| b.draft.referred_by_id) == Some(id)
        })
    });
    outcome.failures.extend(bad.into_iter().map(|r| Failure {
        line: r.line,
        field: "referred_by_id".to_owned(),
        message: "names no customer".to_owned(),
        raw: r.raw,
    }));
    let ready = match on_duplicate {
        Some(on) => {
            let mut check = Check {
                access,
                on,
                now,
                claimed: &mut claimed,
                outcome: &mut outcome,
                merging: HashMap::new(),
            };
            check.duplicates(conn, ready).await?
        }
        None => ready,
    };
    let ready = check_groups(conn, access, ready, &mut outcome).await?;
    let (new, changed): (Vec<Ready>, Vec<Ready>) =
        ready.into_iter().partition(|r| r.base.is_none());
    insert(conn, actor, new, &mut outcome).await?;
    update(conn, actor, changed, &mut outcome).await?;
    Ok(outcome)
}

/// The duplicate check of `on_duplicate` over a batch's rows.
struct Check<'a> {
    access: CustomerAccess,
    on: OnDuplicate,
    now: chrono::DateTime<Utc>,
    /// The customers rows of the batch write, with the first row's line.
    claimed: &'a mut HashMap<Uuid, u64>,
    outcome: &'a mut Outcome,
    /// `merge`: the stored customers rows of the batch merge into, each as the update of
    /// the first such row, with the later ones as its riders.
    merging: HashMap<Uuid, Ready>,
}

/// What a new row of a batch came to in the duplicate check, so that a later row matching
/// it comes to the same customer.
#[derive(Clone, Copy)]
enum Fate {
    /// Matched to a stored customer (whether it failed, was skipped or merged into it).
    Stored(Uuid),
    /// The row creating a new customer that it is (or is a duplicate of): its index among
    /// the batch's creating rows.
    Creates(usize),
}

impl Check<'_> {
    /// Checks the rows that would create a customer by the duplicate rules, in two
    /// statements: against the live customers (the rules of `POST /v1/customers?on_duplicate=`),
    /// and against each other (an earlier new row of the batch, by the same keys). A row that
    /// matches a live customer fails naming it (`fail`), is left out (`skip`), or becomes an
    /// update of it with its empty fields filled and tags and attributes added (`merge`). A
    /// row that matches only an earlier new row is held to the customer that row comes to:
    /// the new one it creates (failing naming its line, left out, or folded into it as into a
    /// live customer), or the stored one it matched. Returns the rows to write.
    ///
    /// Only the batch is held: the rows of earlier batches are written by then (committed,
    /// or in the one transaction of a dry run or an all-or-nothing import), so a later batch
    /// finds their customers among the live ones, and memory stays bounded by the batch.
    async fn duplicates(
        &mut self,
        conn: &mut AsyncPgConnection,
        ready: Vec<Ready>,
    ) -> Result<Vec<Ready>, crate::http::error::ApiError> {
        let (new, mut kept): (Vec<Ready>, Vec<Ready>) =
            ready.into_iter().partition(|r| r.base.is_none());
        let drafts: Vec<&CustomerDraft> = new.iter().map(|r| &r.draft).collect();
        let found = crate::customers::find_matches_many(conn, &drafts, None, self.access).await?;
        let earlier = crate::customers::find_matches_within(conn, &drafts).await?;
        let targets: HashMap<Uuid, CustomerRecord> = if self.on == OnDuplicate::Merge {
            let ids: HashSet<Uuid> = found
                .iter()
                .filter_map(|m| m.first().map(|b| b.id))
                .collect();
            written_records(conn, &ids)
                .await?
                .into_iter()
                .map(|r| (r.id, r))
                .collect()
        } else {
            HashMap::new()
        };
        let lines: Vec<u64> = new.iter().map(|r| r.line).collect();
        let mut fates: Vec<Fate> = Vec::with_capacity(new.len());
        let mut creating: Vec<Ready> = Vec::new();
        for ((row, matches), earlier) in new.into_iter().zip(found).zip(earlier) {
            if let Some(best) = matches.first() {
                fates.push(Fate::Stored(best.id));
                self.stored(row, best, None, &targets);
                continue;
            }
            let Some(first) = earlier.first() else {
                fates.push(Fate::Creates(creating.len()));
                creating.push(row);
                continue;
            };
            let fate = fates[first.index];
            fates.push(fate);
            let line = lines[first.index];
            match fate {
                Fate::Stored(id) => {
                    let best = crate::customers::Matched {
                        id,
                        reasons: first.reasons.clone(),
                    };
                    self.stored(row, &best, Some(line), &targets);
                }
                Fate::Creates(k) => self.onto_new(row, first, line, &mut creating[k]),
            }
        }
        kept.extend(creating);
        for (_, merged) in self.merging.drain() {
            if merged
                .base
                .as_ref()
                .is_some_and(|b| b.draft == merged.draft)
            {
                // Nothing added to the customer by any of its rows.
                self.outcome.unchanged += 1;
                settle(merged.riders, self.outcome);
            } else {
                kept.push(merged);
            }
        }
        kept.sort_by_key(|r| r.line);
        Ok(kept)
    }

    /// A row matched to the stored customer `best`: directly, or through the earlier new row
    /// of line `via` that matched it (`best.reasons` then those of the two rows).
    fn stored(
        &mut self,
        row: Ready,
        best: &crate::customers::Matched,
        via: Option<u64>,
        targets: &HashMap<Uuid, CustomerRecord>,
    ) {
        let matched = |action| RowMatch {
            line: row.line as i64,
            customer_id: best.id,
            score: best.score(),
            reasons: best.reasons.clone(),
            action,
            matched_line: via.map(|l| l as i64),
        };
        let describe = match via {
            None => best.describe(),
            Some(line) => format!(
                "matches line {line} ({}), which matches customer {}",
                reasons_text(&best.reasons),
                best.id
            ),
        };
        let fail = |message: String| -> Vec<Failure> {
            best.fields()
                .into_iter()
                .map(|field| Failure {
                    line: row.line,
                    field: field.to_owned(),
                    message: message.clone(),
                    raw: row.raw.clone(),
                })
                .collect()
        };
        match self.on {
            OnDuplicate::Fail => self.outcome.failures.extend(fail(describe)),
            OnDuplicate::Skip => {
                self.outcome.unchanged += 1;
                self.outcome.matches.push(matched(MatchAction::Skipped));
            }
            OnDuplicate::Merge => {
                let Some(target) = targets.get(&best.id) else {
                    self.outcome
                        .failures
                        .extend(fail(format!("{describe}, which is gone since")));
                    return;
                };
                if let Some(first) = self.merging.get_mut(&best.id) {
                    // An earlier row of the batch merges into this customer too: this one is
                    // folded into that row's update, as into the customer.
                    let rider = matched(MatchAction::Merged);
                    fold(first, row, rider, self.now);
                    return;
                }
                if let Some(line) = self.claimed.insert(best.id, row.line) {
                    self.outcome.failures.extend(fail(format!(
                        "{describe}, which line {line} writes too: one row per customer"
                    )));
                    return;
                }
                let sides = [
                    matching::Side {
                        draft: &target.draft,
                        updated_at: target.updated_at,
                    },
                    matching::Side {
                        draft: &row.draft,
                        updated_at: self.now,
                    },
                ];
                let draft = matching::combine(&sides, &HashMap::new());
                self.outcome.matches.push(matched(MatchAction::Merged));
                let first = Ready {
                    id: target.id,
                    line: row.line,
                    raw: row.raw,
                    base: Some(target.clone()),
                    draft,
                    reason: None,
                    reason_code: None,
                    riders: Vec::new(),
                };
                self.merging.insert(target.id, first);
            }
        }
    }

    /// A row matched to the earlier new row of line `line` (by `m`), which is, or is a
    /// duplicate of, `creator`: the row creating a new customer. `fail` fails the row naming
    /// both; `skip` and `merge` make it a rider of `creator` (merged: folded into its draft as
    /// into a live customer's), counted and listed once `creator` is written.
    fn onto_new(&mut self, row: Ready, m: &MatchedEarlier, line: u64, creator: &mut Ready) {
        let via = if line == creator.line {
            String::new()
        } else {
            format!(", a duplicate of line {}", creator.line)
        };
        let matched = |action| RowMatch {
            line: row.line as i64,
            customer_id: creator.id,
            score: m.score(),
            reasons: m.reasons.clone(),
            action,
            matched_line: Some(line as i64),
        };
        match self.on {
            OnDuplicate::Fail => {
                let message = format!(
                    "matches line {line} ({}){via}, which creates customer {}",
                    reasons_text(&m.reasons),
                    creator.id
                );
                self.outcome.failures.extend(
                    crate::customers::fields_of(&m.reasons)
                        .into_iter()
                        .map(|field| Failure {
                            line: row.line,
                            field: field.to_owned(),
                            message: message.clone(),
                            raw: row.raw.clone(),
                        }),
                );
            }
            OnDuplicate::Skip => {
                let rider = Rider {
                    line: row.line,
                    raw: row.raw,
                    matched: matched(MatchAction::Skipped),
                    added: false,
                };
                creator.riders.push(rider);
            }
            OnDuplicate::Merge => {
                let rider = matched(MatchAction::Merged);
                fold(creator, row, rider, self.now);
            }
        }
    }
}

/// Folds a row merged into the customer `into` writes (a new one, or a stored one an
/// earlier row of the batch merges into) into its draft, as into a stored customer's: empty
/// fields filled, tags and attribute keys added. The row becomes a rider of `into`, counted
/// and listed once `into` is written.
fn fold(into: &mut Ready, row: Ready, matched: RowMatch, now: chrono::DateTime<Utc>) {
    let sides = [
        matching::Side {
            draft: &into.draft,
            updated_at: now,
        },
        matching::Side {
            draft: &row.draft,
            updated_at: now,
        },
    ];
    let draft = matching::combine(&sides, &HashMap::new());
    let added = draft != into.draft;
    into.draft = draft;
    into.riders.push(Rider {
        line: row.line,
        raw: row.raw,
        matched,
        added,
    });
}

/// `score {score}, by {reasons}`: a match's score and reasons as a message gives them.
fn reasons_text(reasons: &[DuplicateReason]) -> String {
    let names: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
    format!(
        "score {}, by {}",
        matching::score(reasons),
        names.join(", ")
    )
}

/// Counts a written row's riders (skipped: `unchanged`; merged: `updated`, or `unchanged`
/// when they added nothing) and lists them in `matched`.
fn settle(riders: Vec<Rider>, outcome: &mut Outcome) {
    for rider in riders {
        if rider.added {
            outcome.updated += 1;
        } else {
            outcome.unchanged += 1;
        }
        outcome.matches.push(rider.matched);
    }
}

/// ` (with line 3, 5 merged into it)` for a row that later rows of its batch were merged
/// into, so that an error on a value one of them brought names them; empty otherwise.
fn folded_lines(r: &Ready) -> String {
    if r.riders.is_empty() {
        return String::new();
    }
    let lines: Vec<String> = r.riders.iter().map(|x| x.line.to_string()).collect();
    let noun = if lines.len() == 1 { "line" } else { "lines" };
    format!(" (with {noun} {} merged into it)", lines.join(", "))
}

/// A row that failed fails its riders too: the customer they were matched to is not
/// written, so they go to the error file to be sent again.
fn fail_riders(r: &mut Ready, why: &str, outcome: &mut Outcome) {
    let line = r.line;
    outcome.failures.extend(
        std::mem::take(&mut r.riders)
            .into_iter()
            .map(|rider| Failure {
                line: rider.line,
                field: "row".to_owned(),
                message: format!("is a duplicate of line {line}, which failed: {why}"),
                raw: rider.raw,
            }),
    );
}

/// The change of group a row makes, if any: a parent set, changed or removed, or a kind
/// changed.
fn group_change(r: &Ready) -> Option<store::GroupChange> {
    let before = r.base.as_ref().map(|b| &b.draft);
    let parent_changed = before.map_or(r.draft.parent_id.is_some(), |b| {
        b.parent_id != r.draft.parent_id
    });
    let kind_changed = before.is_some_and(|b| b.kind != r.draft.kind);
    (parent_changed || kind_changed).then_some(store::GroupChange {
        id: r.id,
        parent_id: r.draft.parent_id,
        kind: r.draft.kind,
        parent_changed,
    })
}

/// Checks the batch's changes of parents and kinds as `PATCH` does (the parent a live
/// organization the sender can see, no cycle, at most ten levels, no organization with
/// subsidiaries turned individual), set-wise: one statement over the stored groups with every
/// row's change in place, under the lock every change of a parent takes (held until the
/// batch commits). Only offending rows fail, naming the ids; a failed row keeps its stored
/// parent, which may in turn close a cycle with another row's change, so the check runs again
/// on what is left until no row fails.
async fn check_groups(
    conn: &mut AsyncPgConnection,
    access: CustomerAccess,
    mut ready: Vec<Ready>,
    outcome: &mut Outcome,
) -> QueryResult<Vec<Ready>> {
    let mut locked = false;
    loop {
        let changes: Vec<store::GroupChange> = ready.iter().filter_map(group_change).collect();
        if changes.is_empty() {
            return Ok(ready);
        }
        if !locked {
            store::lock_groups(conn).await?;
            locked = true;
        }
        let verdicts: HashMap<Uuid, store::GroupVerdict> =
            store::groups_of_batch(conn, &changes, access.owner())
                .await?
                .into_iter()
                .map(|v| (v.id, v))
                .collect();
        let problem = |r: &Ready| {
            let v = verdicts.get(&r.id)?;
            let parent_id = group_change(r)
                .filter(|c| c.parent_changed)
                .and_then(|c| c.parent_id);
            rules::group_problem(
                parent_id,
                &v.parent,
                &v.cycle,
                usize::try_from(v.levels).unwrap_or(0),
                v.stranded,
            )
        };
        let (good, bad): (Vec<Ready>, Vec<Ready>) =
            ready.into_iter().partition(|r| problem(r).is_none());
        if bad.is_empty() {
            return Ok(good);
        }
        for mut r in bad {
            if let Some((field, message)) = problem(&r) {
                fail_riders(&mut r, &message, outcome);
                outcome.failures.push(Failure {
                    line: r.line,
                    field: field.to_owned(),
                    message,
                    raw: r.raw,
                });
            }
        }
        ready = good;
    }
}

async fn insert(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    rows: Vec<Ready>,
    outcome: &mut Outcome,
) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let drafts: Vec<store::NewDraft<'_>> = rows
        .iter()
        .zip(&ids)
        .map(|(r, id)| store::NewDraft {
            id: *id,
            draft: &r.draft,
            reason: store::StageReason {
                text: r.reason.as_deref(),
                code: r.reason_code,
            },
        })
        .collect();
    // Rows whose email or external id is taken (by a customer or an earlier row) are
    // skipped, and reported below.
    let written = store::insert_many(conn, actor, &drafts).await?;
    outcome.created += written.len() as i64;
    let created = written_records(conn, &written)
        .await?
        .iter()
        .map(crate::customers::created)
        .collect();
    journal::record_all(conn, actor, created).await?;
    let (done, mut skipped): (Vec<Ready>, Vec<Ready>) =
        rows.into_iter().partition(|r| written.contains(&r.id));
    for r in done {
        settle(r.riders, outcome);
    }
    if skipped.is_empty() {
        return Ok(());
    }
    // Which key each skipped row collided on.
    let emails: Vec<String> = skipped
        .iter()
        .filter_map(|r| r.draft.email.as_ref().map(Email::lowercase))
        .collect();
    let taken = store::emails_taken(conn, &emails).await?;
    for r in &mut skipped {
        let email = r
            .draft
            .email
            .as_ref()
            .is_some_and(|e| taken.contains(&e.lowercase()));
        let field = if email { "email" } else { "external_id" };
        let message = "is already in use (by a customer or an earlier row)";
        fail_riders(r, &format!("{field} {message}"), outcome);
        outcome.failures.push(Failure {
            line: r.line,
            field: field.to_owned(),
            message: message.to_owned(),
            raw: r.raw.clone(),
        });
    }
    Ok(())
}

async fn update(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    rows: Vec<Ready>,
    outcome: &mut Outcome,
) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // A new email or external id another customer holds fails its row, not the batch.
    let mut emails = Vec::new();
    let mut externals = Vec::new();
    for r in &rows {
        let base = r.base.as_ref().map(|b| &b.draft);
        if let Some(e) = r
            .draft
            .email
            .as_ref()
            .filter(|e| base.and_then(|b| b.email.as_ref()) != Some(e))
        {
            emails.push(e.lowercase());
        }
        if let Some(x) = r
            .draft
            .external_id
            .as_ref()
            .filter(|x| base.and_then(|b| b.external_id.as_ref()) != Some(x))
        {
            externals.push(x.clone());
        }
    }
    let holders = store::key_holders(conn, &emails, &externals).await?;
    let mut held: HashMap<(&'static str, String), Uuid> = HashMap::new();
    for (id, email, external) in holders {
        if let Some(e) = email {
            held.insert(("email", e.to_lowercase()), id);
        }
        if let Some(x) = external {
            held.insert(("external_id", x), id);
        }
    }
    let mut clear = Vec::with_capacity(rows.len());
    for mut r in rows {
        let id = r.base.as_ref().map(|b| b.id);
        // The value may come from a later row merged into this one: say which.
        let folded = folded_lines(&r);
        let clash = [
            ("email", r.draft.email.as_ref().map(Email::lowercase)),
            ("external_id", r.draft.external_id.clone()),
        ]
        .into_iter()
        .find_map(|(field, value)| {
            value
                .and_then(|v| held.get(&(field, v)))
                .filter(|holder| Some(**holder) != id)
                .map(|_| field)
        });
        match clash {
            Some(field) => {
                let mut message = "is already in use by another customer".to_owned();
                fail_riders(&mut r, &format!("{field} {message}"), outcome);
                if !folded.is_empty() {
                    message.push_str(&folded);
                }
                outcome.failures.push(Failure {
                    line: r.line,
                    field: field.to_owned(),
                    message,
                    raw: r.raw,
                });
            }
            None => clear.push(r),
        }
    }
    if clear.is_empty() {
        return Ok(());
    }
    let changed: Vec<(&CustomerRecord, store::NewDraft<'_>)> = clear
        .iter()
        .filter_map(|r| {
            r.base.as_ref().map(|b| {
                let draft = store::NewDraft {
                    id: b.id,
                    draft: &r.draft,
                    reason: store::StageReason {
                        text: r.reason.as_deref(),
                        code: r.reason_code,
                    },
                };
                (b, draft)
            })
        })
        .collect();
    // A key taken by a concurrent writer since the check aborts the statement: report the
    // batch's updates to re-send rather than fail the import.
    // Only rows unchanged since they were read are written: a concurrent change wins, and
    // its row is reported to re-send.
    // A row left unwritten keeps its stored parent, which could close a cycle with another
    // row's new one (checked with the first as changed): the groups are checked again as
    // written, and the batch's updates re-sent if they are not sound.
    let written = conn
        .transaction(async |conn| {
            let written = store::update_many(conn, actor, &changed).await?;
            let moved: Vec<store::GroupChange> = clear
                .iter()
                .filter(|r| written.contains(&r.id))
                .filter_map(group_change)
                .filter(|c| c.parent_changed)
                .collect();
            let sound = store::groups_of_batch(conn, &moved, None)
                .await?
                .iter()
                .all(|v| {
                    v.cycle.is_empty()
                        && usize::try_from(v.levels).unwrap_or(0) <= rules::MAX_GROUP_LEVELS
                });
            if sound {
                Ok(written)
            } else {
                Err(diesel::result::Error::RollbackTransaction)
            }
        })
        .await;
    let written: HashSet<Uuid> = match written {
        Ok(ids) => ids,
        Err(
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )
            | diesel::result::Error::RollbackTransaction,
        ) => HashSet::new(),
        Err(other) => return Err(other),
    };
    outcome.updated += written.len() as i64;
    let after = written_records(conn, &written).await?;
    let changes = clear
        .iter()
        .filter_map(|r| r.base.as_ref().map(|before| (r, before)))
        .filter_map(|(r, before)| {
            after
                .binary_search_by_key(&before.id, |a| a.id)
                .ok()
                .map(|i| {
                    let reason = store::StageReason {
                        text: r.reason.as_deref(),
                        code: r.reason_code,
                    };
                    crate::customers::moved(before, &after[i], reason)
                })
        })
        .collect();
    journal::record_all(conn, actor, changes).await?;
    for mut r in clear {
        if r.base.as_ref().is_some_and(|b| written.contains(&b.id)) {
            settle(r.riders, outcome);
            continue;
        }
        let message = "the customer changed while this file was imported; re-send the row";
        fail_riders(&mut r, message, outcome);
        outcome.failures.push(Failure {
            line: r.line,
            field: "row".to_owned(),
            message: message.to_owned(),
            raw: r.raw,
        });
    }
    Ok(())
}
