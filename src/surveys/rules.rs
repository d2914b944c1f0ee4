//! Survey rules, without a database: what a question and an answer may be, and every metric
//! of DOMAIN.md section 4 computed from counts of answers.

use std::collections::{BTreeMap, HashSet};

use chrono::{Datelike, Months, NaiveDate};
use serde_json::{Map, Value};

use super::json::{
    AttributeVerdict, CesResult, ChoiceCount, CsatResult, FollowUpRule, GapOf, GapResult,
    KanoCategory, KanoResult, Metrics, NpsCategory, NpsResult, Question, QuestionResult,
    QuestionType, ValueCount, Verdict, VerdictCounts,
};
use crate::domain::{optional_text, required_text};
use crate::http::error::ApiError;
use crate::http::validation::Checks;

pub const MAX_QUESTIONS: usize = 100;
pub const MAX_CHOICES: usize = 50;
pub const MAX_TEXT_ANSWER: usize = 2000;

/// The scale of a scored question type, lowest and highest answer.
pub fn scale(q: &Question) -> Option<(i16, i16)> {
    match q.question_type {
        QuestionType::Nps => Some((0, 10)),
        QuestionType::Csat => Some((1, 5)),
        QuestionType::Ces => Some((1, 7)),
        QuestionType::Rating | QuestionType::ExpectationPerformance => {
            Some((1, q.scale_max.unwrap_or(5)))
        }
        _ => None,
    }
}

pub fn nps_category(score: i16) -> NpsCategory {
    match score {
        9.. => NpsCategory::Promoter,
        7..=8 => NpsCategory::Passive,
        _ => NpsCategory::Detractor,
    }
}

/// Whether `key` may be a question key.
pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && key.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks a survey's questions, recording errors under `questions[i].field`, and fills in
/// the defaults (scale 1–5, weight 1).
pub fn questions(checks: &mut Checks, input: Vec<Question>) -> Vec<Question> {
    if input.is_empty() || input.len() > MAX_QUESTIONS {
        checks.fail(
            "questions",
            format!("must hold 1 to {MAX_QUESTIONS} questions"),
        );
    }
    let mut keys = HashSet::new();
    let mut out = Vec::with_capacity(input.len());
    for (i, mut q) in input.into_iter().enumerate() {
        let at = |field: &str| format!("questions[{i}].{field}");
        if !valid_key(&q.key) {
            checks.fail(
                &at("key"),
                "must be 1 to 40 lower case letters, digits or `_`, starting with a letter",
            );
        } else if !keys.insert(q.key.clone()) {
            checks.fail(&at("key"), "is used by an earlier question");
        }
        if let Some(text) = checks.check(&at("text"), required_text(&q.text, 500)) {
            q.text = text;
        }
        let t = q.question_type;
        let scaled = matches!(
            t,
            QuestionType::Rating | QuestionType::ExpectationPerformance
        );
        let choosing = matches!(t, QuestionType::SingleChoice | QuestionType::MultiChoice);
        let attribute = t == QuestionType::ExpectationPerformance;
        let refuse = |checks: &mut Checks, field: &str, allowed: &str| {
            checks.fail(&at(field), format!("is only for {allowed} questions"));
        };
        if scaled {
            let max = q.scale_max.unwrap_or(5);
            if !(2..=10).contains(&max) {
                checks.fail(&at("scale_max"), "must be from 2 to 10");
            }
            q.scale_max = Some(max);
            if let Some(labels) = &mut q.labels {
                if labels.len() != max as usize {
                    checks.fail(
                        &at("labels"),
                        format!("must hold one label per point of the scale: {max}"),
                    );
                }
                for (j, label) in labels.iter_mut().enumerate() {
                    if let Some(text) =
                        checks.check(&at(&format!("labels[{j}]")), required_text(label, 100))
                    {
                        *label = text;
                    }
                }
            }
        } else {
            if q.scale_max.is_some() {
                refuse(checks, "scale_max", "rating and expectation_performance");
            }
            if q.labels.is_some() {
                refuse(checks, "labels", "rating and expectation_performance");
            }
        }
        if choosing {
            match &mut q.choices {
                None => checks.fail(&at("choices"), "is required for choice questions"),
                Some(choices) => {
                    if !(2..=MAX_CHOICES).contains(&choices.len()) {
                        checks.fail(
                            &at("choices"),
                            format!("must hold 2 to {MAX_CHOICES} choices"),
                        );
                    }
                    let mut seen = HashSet::new();
                    for (j, choice) in choices.iter_mut().enumerate() {
                        let field = at(&format!("choices[{j}]"));
                        if let Some(text) = checks.check(&field, required_text(choice, 100)) {
                            if !seen.insert(text.clone()) {
                                checks.fail(&field, "is listed twice");
                            }
                            *choice = text;
                        }
                    }
                }
            }
        } else if q.choices.is_some() {
            refuse(checks, "choices", "single_choice and multi_choice");
        }
        if attribute {
            if q.kano.is_none() {
                checks.fail(
                    &at("kano"),
                    "is required for expectation_performance questions",
                );
            }
            let weight = q.weight.unwrap_or(1.0);
            if !(weight.is_finite() && weight > 0.0 && weight <= 1000.0) {
                checks.fail(&at("weight"), "must be more than 0 and at most 1000");
            }
            q.weight = Some(weight);
        } else {
            if q.kano.is_some() {
                refuse(checks, "kano", "expectation_performance");
            }
            if q.weight.is_some() {
                refuse(checks, "weight", "expectation_performance");
            }
        }
        out.push(q);
    }
    out
}

/// The verdict of perceived performance P against expectation E (DOMAIN.md section 4).
pub fn verdict(performance: i16, expectation: i16) -> Verdict {
    match performance.cmp(&expectation) {
        std::cmp::Ordering::Greater => Verdict::Satisfied,
        std::cmp::Ordering::Equal => Verdict::Acceptable,
        std::cmp::Ordering::Less => Verdict::Dissatisfied,
    }
}

/// The answered `expectation_performance` attributes of stored answers, with their verdicts,
/// by key. Only those answers are objects of an expectation and a performance.
pub fn verdicts(answers: &Value) -> Vec<AttributeVerdict> {
    let Some(answers) = answers.as_object() else {
        return Vec::new();
    };
    let mut out: Vec<AttributeVerdict> = answers
        .iter()
        .filter_map(|(key, value)| {
            let part = |name: &str| {
                value
                    .get(name)
                    .and_then(Value::as_i64)
                    .and_then(|v| i16::try_from(v).ok())
            };
            let (expectation, performance) = (part("expectation")?, part("performance")?);
            Some(AttributeVerdict {
                key: key.clone(),
                expectation,
                performance,
                gap: performance - expectation,
                verdict: verdict(performance, expectation),
            })
        })
        .collect();
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

/// One answered attribute's gap, for a follow-up rule: its key, weight and P − E.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeGap {
    pub key: String,
    pub weight: f64,
    pub gap: i16,
}

/// The gaps of a response's answered `expectation_performance` attributes, in the survey's
/// order.
pub fn gaps(questions: &[Question], answered: &Answered) -> Vec<AttributeGap> {
    questions
        .iter()
        .filter(|q| q.question_type == QuestionType::ExpectationPerformance)
        .filter_map(|q| {
            let of = |part: fn(&StatRow) -> Option<i16>| {
                answered
                    .stats
                    .iter()
                    .filter(|r| r.question_key == q.key)
                    .find_map(part)
            };
            Some(AttributeGap {
                key: q.key.clone(),
                weight: q.weight.unwrap_or(1.0),
                gap: of(|r| r.score)? - of(|r| r.expectation)?,
            })
        })
        .collect()
}

/// Checks a follow-up rule against the survey's questions.
pub fn follow_up(checks: &mut Checks, rule: &FollowUpRule, questions: &[Question]) {
    let has = |t: QuestionType| questions.iter().any(|q| q.question_type == t);
    if !rule.detractors && rule.csat_at_most.is_none() && rule.gap_at_most.is_none() {
        checks.fail(
            "follow_up",
            "must open follow-ups for detractors, a low CSAT, a shortfall of performance \
             (`gap_at_most`) or several; send null for none",
        );
    }
    match rule.gap_at_most {
        Some(at_most) if !(-9..=-1).contains(&at_most) => {
            checks.fail("follow_up.gap_at_most", "must be from -9 to -1");
        }
        Some(_) if !has(QuestionType::ExpectationPerformance) => checks.fail(
            "follow_up.gap_at_most",
            "needs an expectation_performance question in the survey",
        ),
        Some(_) => {}
        None if rule.gap_of.is_some() => {
            checks.fail("follow_up.gap_of", "goes with `gap_at_most`");
        }
        None => {}
    }
    if rule.detractors && !has(QuestionType::Nps) {
        checks.fail(
            "follow_up.detractors",
            "needs an nps question in the survey",
        );
    }
    if let Some(at_most) = rule.csat_at_most {
        if !(1..=4).contains(&at_most) {
            checks.fail("follow_up.csat_at_most", "must be from 1 to 4");
        } else if !has(QuestionType::Csat) {
            checks.fail(
                "follow_up.csat_at_most",
                "needs a csat question in the survey",
            );
        }
    }
    if !(1..=720).contains(&rule.due_in_hours) {
        checks.fail("follow_up.due_in_hours", "must be from 1 to 720");
    }
}

/// Whether a response with these scores and attribute gaps opens a follow-up under `rule`,
/// and why.
pub fn follow_up_reason(
    rule: &FollowUpRule,
    nps: Option<i16>,
    csat: Option<i16>,
    gaps: &[AttributeGap],
) -> Option<String> {
    let mut reasons = Vec::new();
    if let Some(score) =
        nps.filter(|s| rule.detractors && nps_category(*s) == NpsCategory::Detractor)
    {
        reasons.push(format!("NPS {score} (detractor)"));
    }
    if let (Some(score), Some(at_most)) = (csat, rule.csat_at_most)
        && score <= at_most
    {
        reasons.push(format!("CSAT {score} (at most {at_most})"));
    }
    if let Some(at_most) = rule.gap_at_most {
        match rule.gap_of.unwrap_or(GapOf::AnyAttribute) {
            GapOf::AnyAttribute => {
                for g in gaps.iter().filter(|g| g.gap <= at_most) {
                    reasons.push(format!("{}: P − E = {} (at most {at_most})", g.key, g.gap));
                }
            }
            GapOf::WeightedMean => {
                let weights: f64 = gaps.iter().map(|g| g.weight).sum();
                let weighted: f64 = gaps.iter().map(|g| g.weight * f64::from(g.gap)).sum();
                // Σ w·gap / Σ w ≤ t, with Σ w > 0, compared without dividing.
                if weights > 0.0 && weighted <= f64::from(at_most) * weights {
                    reasons.push(format!(
                        "weighted mean P − E = {} (at most {at_most})",
                        round2(weighted / weights)
                    ));
                }
            }
        }
    }
    (!reasons.is_empty()).then(|| reasons.join(", "))
}

/// One count an answer adds to the results: see the `survey_stats` table. An answer to an
/// `expectation_performance` question adds three (`attribute_rows`), not one per (P, E).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatRow {
    pub question_key: String,
    pub score: Option<i16>,
    pub expectation: Option<i16>,
    pub choice: Option<String>,
}

impl StatRow {
    fn new(key: &str) -> Self {
        StatRow {
            question_key: key.to_owned(),
            score: None,
            expectation: None,
            choice: None,
        }
    }
}

/// What an answer P, E to an `expectation_performance` question adds to the roll-up, each
/// counted apart (migration `survey_attributes_apart`): the answer with its P (`score`), its E
/// alone (`expectation`, not another answer), and its verdict by name (`choice`; such a
/// question has no choices). Every figure of the results needs only these, and a group's rows
/// grow with the scale instead of its square.
fn attribute_rows(key: &str, performance: i16, expectation: i16) -> [StatRow; 3] {
    [
        StatRow {
            score: Some(performance),
            ..StatRow::new(key)
        },
        StatRow {
            expectation: Some(expectation),
            ..StatRow::new(key)
        },
        StatRow {
            choice: Some(verdict(performance, expectation).as_str().to_owned()),
            ..StatRow::new(key)
        },
    ]
}

/// A response's answers once checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Answered {
    /// The answers as stored (text trimmed, unanswered questions left out).
    pub answers: Map<String, Value>,
    pub nps: Option<i16>,
    pub csat: Option<i16>,
    pub ces: Option<i16>,
    /// What the response adds to the results, the response itself counted first.
    pub stats: Vec<StatRow>,
}

fn whole(value: &Value, (low, high): (i16, i16)) -> Result<i16, String> {
    value
        .as_i64()
        .filter(|v| (i64::from(low)..=i64::from(high)).contains(v))
        .map(|v| v as i16)
        .ok_or_else(|| format!("must be a whole number from {low} to {high}"))
}

/// Checks answers against the questions, every error at once (under `answers.<key>`).
pub fn answers(questions: &[Question], input: Map<String, Value>) -> Result<Answered, ApiError> {
    let mut checks = Checks::new();
    for key in input.keys() {
        if !questions.iter().any(|q| &q.key == key) {
            checks.fail(
                &format!("answers.{key}"),
                "is not a question of this survey",
            );
        }
    }
    let mut out = Answered {
        answers: Map::new(),
        nps: None,
        csat: None,
        ces: None,
        stats: vec![StatRow::new("")],
    };
    for q in questions {
        let field = format!("answers.{}", q.key);
        let value = match input.get(&q.key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if q.question_type == QuestionType::Text => {
                match optional_text(Some(s), MAX_TEXT_ANSWER) {
                    Ok(text) => text.map(Value::String),
                    Err(message) => {
                        checks.fail(&field, message);
                        continue;
                    }
                }
            }
            Some(value) => Some(value.clone()),
        };
        let Some(value) = value else {
            if q.required {
                checks.fail(&field, "is required");
            }
            continue;
        };
        let mut row = StatRow::new(&q.key);
        let mut extra = Vec::new();
        let ok = match q.question_type {
            QuestionType::Nps | QuestionType::Csat | QuestionType::Ces | QuestionType::Rating => {
                match whole(&value, scale(q).unwrap_or((1, 5))) {
                    Ok(score) => {
                        row.score = Some(score);
                        let first = match q.question_type {
                            QuestionType::Nps => Some(&mut out.nps),
                            QuestionType::Csat => Some(&mut out.csat),
                            QuestionType::Ces => Some(&mut out.ces),
                            _ => None,
                        };
                        if let Some(first) = first {
                            first.get_or_insert(score);
                        }
                        true
                    }
                    Err(message) => {
                        checks.fail(&field, message);
                        false
                    }
                }
            }
            QuestionType::SingleChoice | QuestionType::MultiChoice => {
                let choices = q.choices.as_deref().unwrap_or_default();
                let named: Vec<&Value> = match (&value, q.question_type) {
                    (Value::String(_), QuestionType::SingleChoice) => vec![&value],
                    (Value::Array(items), QuestionType::MultiChoice) if !items.is_empty() => {
                        items.iter().collect()
                    }
                    (_, QuestionType::SingleChoice) => vec![],
                    _ => vec![],
                };
                if named.is_empty() {
                    checks.fail(
                        &field,
                        if q.question_type == QuestionType::SingleChoice {
                            "must be one of the question's choices (a string)"
                        } else {
                            "must be a non-empty list of the question's choices"
                        },
                    );
                    false
                } else {
                    let mut seen = HashSet::new();
                    let mut fine = true;
                    for item in named {
                        match item.as_str().filter(|c| choices.iter().any(|k| k == c)) {
                            Some(choice) if seen.insert(choice) => extra.push(StatRow {
                                choice: Some(choice.to_owned()),
                                ..StatRow::new(&q.key)
                            }),
                            Some(choice) => {
                                checks.fail(&field, format!("names `{choice}` twice"));
                                fine = false;
                            }
                            None => {
                                checks.fail(
                                    &field,
                                    format!("must name choices among: {}", choices.join(", ")),
                                );
                                fine = false;
                            }
                        }
                    }
                    fine
                }
            }
            QuestionType::Text => {
                if value.is_string() {
                    true
                } else {
                    checks.fail(&field, "must be a string");
                    false
                }
            }
            QuestionType::ExpectationPerformance => {
                let range = scale(q).unwrap_or((1, 5));
                match value.as_object() {
                    Some(pair) => {
                        for key in pair.keys() {
                            if key != "expectation" && key != "performance" {
                                checks.fail(
                                    &format!("{field}.{key}"),
                                    "is not a known field: expected expectation, performance",
                                );
                            }
                        }
                        let mut part = |name: &str| {
                            let at = format!("{field}.{name}");
                            match pair.get(name) {
                                None | Some(Value::Null) => {
                                    checks.fail(&at, "is required");
                                    None
                                }
                                Some(v) => checks.check(&at, whole(v, range)),
                            }
                        };
                        let expectation = part("expectation");
                        let performance = part("performance");
                        match (expectation, performance) {
                            (Some(e), Some(p)) => {
                                let [answer, expected, verdict] = attribute_rows(&q.key, p, e);
                                row = answer;
                                extra.extend([expected, verdict]);
                                true
                            }
                            _ => false,
                        }
                    }
                    None => {
                        checks.fail(
                            &field,
                            "must be an object: {\"expectation\": E, \"performance\": P}",
                        );
                        false
                    }
                }
            }
        };
        if ok {
            out.answers.insert(q.key.clone(), value);
            out.stats.push(row);
            out.stats.extend(extra);
        }
    }
    checks.done(Some(out))
}

/// A cell of the roll-up: (question key, score, expectation, choice).
type Cell = (String, Option<i16>, Option<i16>, Option<String>);

/// Answers counted by value: one group's rows of the roll-up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Answers per cell.
    pub cells: BTreeMap<Cell, i64>,
}

impl Counts {
    pub fn add(
        &mut self,
        key: &str,
        score: Option<i16>,
        expectation: Option<i16>,
        choice: Option<String>,
        n: i64,
    ) {
        *self
            .cells
            .entry((key.to_owned(), score, expectation, choice))
            .or_default() += n;
    }

    pub fn merge(&mut self, other: &Counts) {
        for (cell, n) in &other.cells {
            *self.cells.entry(cell.clone()).or_default() += n;
        }
    }

    fn of<'a>(
        &'a self,
        key: &'a str,
    ) -> impl Iterator<Item = (Option<i16>, Option<i16>, Option<&'a String>, i64)> + 'a {
        self.cells
            .iter()
            .filter(move |((k, ..), _)| k == key)
            .map(|((_, s, e, c), n)| (*s, *e, c.as_ref(), *n))
    }
}

/// Where a range of days is read from the roll-up: the months it covers (mostly or wholly)
/// from the monthly roll-up, the rest from the daily one. A month more than half covered is
/// read whole and the days it should not count are subtracted (`sign` -1), so no more than
/// half a month of days is read at either end of the range, however long it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollUpReads {
    /// The first days of the first and last month read whole; every month between is too.
    pub months: Option<(NaiveDate, NaiveDate)>,
    /// Day ranges read from the daily roll-up: first day, last day, and the sign they count with.
    pub days: Vec<(NaiveDate, NaiveDate, i32)>,
}

impl RollUpReads {
    /// Every day from `from` to `to` from the daily roll-up (for periods that do not align
    /// with months, such as weeks).
    pub fn daily(from: NaiveDate, to: NaiveDate) -> Self {
        Self {
            months: None,
            days: vec![(from, to, 1)],
        }
    }

    /// The reads for the days from `from` to `to` (`from <= to`).
    pub fn of(from: NaiveDate, to: NaiveDate) -> Self {
        let month = |d: NaiveDate| d.with_day(1);
        let next = |m: NaiveDate| m.checked_add_months(Months::new(1));
        let (Some(first), Some(last)) = (month(from), month(to)) else {
            return Self::daily(from, to);
        };
        let edges = if first == last {
            vec![first]
        } else {
            vec![first, last]
        };
        let mut whole = Vec::new();
        let mut days = Vec::new();
        for start in edges {
            let Some(end) = next(start).and_then(|n| n.pred_opt()) else {
                return Self::daily(from, to);
            };
            let (a, b) = (from.max(start), to.min(end));
            let covered = (b - a).num_days() + 1;
            let length = (end - start).num_days() + 1;
            if 2 * covered > length {
                whole.push(start);
                if let Some(before) = a.pred_opt().filter(|_| a > start) {
                    days.push((start, before, -1));
                }
                if let Some(after) = b.succ_opt().filter(|_| b < end) {
                    days.push((after, end, -1));
                }
            } else {
                days.push((a, b, 1));
            }
        }
        let low = if whole.contains(&first) {
            Some(first)
        } else {
            next(first)
        };
        let high = if whole.contains(&last) {
            Some(last)
        } else {
            last.checked_sub_months(Months::new(1))
        };
        let months = low.zip(high).filter(|(l, h)| l <= h);
        Self { months, days }
    }
}

/// `num / den` rounded half away from zero to 2 decimals, exactly.
pub fn ratio(num: i128, den: i128) -> f64 {
    if den == 0 {
        return 0.0;
    }
    let (num, den) = if den < 0 { (-num, -den) } else { (num, den) };
    let hundredths = (200 * num.abs() + den) / (2 * den);
    num.signum() as f64 * hundredths as f64 / 100.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn distribution(counts: &BTreeMap<i16, i64>, (low, high): (i16, i16)) -> Vec<ValueCount> {
    (low..=high)
        .map(|value| ValueCount {
            value,
            count: counts.get(&value).copied().unwrap_or(0),
        })
        .collect()
}

fn verdict_counts(by_verdict: &BTreeMap<Verdict, i64>, n: i64) -> VerdictCounts {
    let count = |v: Verdict| by_verdict.get(&v).copied().unwrap_or(0);
    let share = |v: Verdict| ratio(i128::from(count(v)) * 100, n.into());
    VerdictCounts {
        satisfied: count(Verdict::Satisfied),
        acceptable: count(Verdict::Acceptable),
        dissatisfied: count(Verdict::Dissatisfied),
        satisfied_share: share(Verdict::Satisfied),
        acceptable_share: share(Verdict::Acceptable),
        dissatisfied_share: share(Verdict::Dissatisfied),
    }
}

/// An answered service attribute, for the Kano breakdown.
struct Attribute {
    kano: KanoCategory,
    weight: f64,
    mean_e: f64,
    mean_p: f64,
    n: i64,
}

/// Every figure of a set of responses, from their counts.
pub fn metrics(questions: &[Question], counts: &Counts) -> Metrics {
    let responses = counts.of("").map(|(.., n)| n).sum();
    let mut results = Vec::with_capacity(questions.len());
    let mut attributes: Vec<Attribute> = Vec::new();
    let mut index = (0.0, 0.0);
    for q in questions {
        let mut n = 0;
        let mut sum: i128 = 0;
        let mut sum_e: i128 = 0;
        let mut by_score = BTreeMap::new();
        let mut by_expectation = BTreeMap::new();
        let mut by_choice: BTreeMap<&String, i64> = BTreeMap::new();
        let mut by_verdict: BTreeMap<Verdict, i64> = BTreeMap::new();
        let attribute = q.question_type == QuestionType::ExpectationPerformance;
        for (score, expectation, choice, count) in counts.of(&q.key) {
            if let Some(choice) = choice {
                match choice.parse::<Verdict>() {
                    Ok(v) if attribute => *by_verdict.entry(v).or_default() += count,
                    _ => *by_choice.entry(choice).or_default() += count,
                }
                continue;
            }
            // An attribute's E is counted apart from its answer (`attribute_rows`). A row with
            // both P and E was written before they were (a server not yet upgraded).
            match (score, expectation) {
                (None, Some(_)) => {}
                (Some(p), Some(e)) => {
                    n += count;
                    *by_verdict.entry(verdict(p, e)).or_default() += count;
                }
                _ => n += count,
            }
            if let Some(s) = score {
                sum += i128::from(s) * i128::from(count);
                *by_score.entry(s).or_default() += count;
            }
            if let Some(e) = expectation {
                sum_e += i128::from(e) * i128::from(count);
                *by_expectation.entry(e).or_default() += count;
            }
        }
        let range = scale(q);
        let counted = |f: &dyn Fn(i16) -> bool| -> i64 {
            by_score
                .iter()
                .filter(|(s, _)| f(**s))
                .map(|(_, c)| c)
                .sum()
        };
        let mut result = QuestionResult {
            key: q.key.clone(),
            question_type: q.question_type,
            n,
            mean: range.filter(|_| n > 0).map(|_| ratio(sum, n.into())),
            distribution: range
                .map(|r| distribution(&by_score, r))
                .unwrap_or_default(),
            nps: None,
            csat: None,
            ces: None,
            gap: None,
            choices: q
                .choices
                .iter()
                .flatten()
                .map(|c| {
                    let count = by_choice.get(c).copied().unwrap_or(0);
                    ChoiceCount {
                        choice: c.clone(),
                        count,
                        share: ratio(i128::from(count) * 100, n.into()),
                    }
                })
                .collect(),
        };
        if n > 0 {
            let n128 = i128::from(n);
            match q.question_type {
                QuestionType::Nps => {
                    let promoters = counted(&|s| s >= 9);
                    let passives = counted(&|s| (7..=8).contains(&s));
                    let detractors = counted(&|s| s <= 6);
                    result.nps = Some(NpsResult {
                        n,
                        promoters,
                        passives,
                        detractors,
                        promoter_share: ratio(i128::from(promoters) * 100, n128),
                        passive_share: ratio(i128::from(passives) * 100, n128),
                        detractor_share: ratio(i128::from(detractors) * 100, n128),
                        score: ratio(i128::from(promoters - detractors) * 100, n128),
                    });
                }
                QuestionType::Csat => {
                    let satisfied = counted(&|s| s >= 4);
                    result.csat = Some(CsatResult {
                        n,
                        satisfied,
                        score: ratio(i128::from(satisfied) * 100, n128),
                    });
                }
                QuestionType::Ces => {
                    result.ces = Some(CesResult {
                        n,
                        score: ratio(sum, n128),
                    });
                }
                QuestionType::ExpectationPerformance => {
                    let kano = q.kano.unwrap_or(KanoCategory::Performance);
                    let weight = q.weight.unwrap_or(1.0);
                    let (low, high) = range.unwrap_or((1, 5));
                    let mean_p = sum as f64 / n as f64;
                    let mean_e = sum_e as f64 / n as f64;
                    attributes.push(Attribute {
                        kano,
                        weight,
                        mean_e,
                        mean_p,
                        n,
                    });
                    index.0 += weight * (mean_p - f64::from(low)) / f64::from(high - low) * 100.0;
                    index.1 += weight;
                    result.gap = Some(GapResult {
                        kano,
                        weight,
                        n,
                        mean_expectation: ratio(sum_e, n128),
                        mean_performance: ratio(sum, n128),
                        gap: ratio(sum - sum_e, n128),
                        expectation_distribution: distribution(&by_expectation, (low, high)),
                        verdicts: verdict_counts(&by_verdict, n),
                    });
                }
                _ => {}
            }
        }
        results.push(result);
    }
    let kano = [
        KanoCategory::MustBe,
        KanoCategory::Performance,
        KanoCategory::Attractive,
    ]
    .into_iter()
    .filter_map(|category| {
        let of: Vec<&Attribute> = attributes.iter().filter(|a| a.kano == category).collect();
        let weights: f64 = of.iter().map(|a| a.weight).sum();
        (!of.is_empty()).then(|| {
            let mean = |f: &dyn Fn(&Attribute) -> f64| {
                round2(of.iter().map(|a| a.weight * f(a)).sum::<f64>() / weights)
            };
            KanoResult {
                category,
                attributes: of.len() as i64,
                n: of.iter().map(|a| a.n).sum(),
                mean_expectation: mean(&|a| a.mean_e),
                mean_performance: mean(&|a| a.mean_p),
                gap: mean(&|a| a.mean_p - a.mean_e),
            }
        })
    })
    .collect();
    Metrics {
        responses,
        satisfaction_index: (index.1 > 0.0).then(|| round2(index.0 / index.1)),
        kano,
        questions: results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_round_half_away_from_zero() {
        assert_eq!(ratio(1, 3), 0.33);
        assert_eq!(ratio(2, 3), 0.67);
        assert_eq!(ratio(-100, 3), -33.33);
        assert_eq!(ratio(-200, 3), -66.67);
        assert_eq!(ratio(1, 8), 0.13);
        assert_eq!(ratio(-1, 8), -0.13);
        assert_eq!(ratio(5, 0), 0.0);
    }

    fn attribute(key: &str, weight: f64) -> Question {
        serde_json::from_value(serde_json::json!({
            "key": key, "type": "expectation_performance", "text": key,
            "kano": "performance", "weight": weight, "scale_max": 5
        }))
        .unwrap()
    }

    fn rule(gap_at_most: i16, gap_of: Option<GapOf>) -> FollowUpRule {
        FollowUpRule {
            detractors: false,
            csat_at_most: None,
            gap_at_most: Some(gap_at_most),
            gap_of,
            due_in_hours: 24,
        }
    }

    #[test]
    fn verdicts_compare_p_with_e() {
        assert_eq!(verdict(5, 4), Verdict::Satisfied);
        assert_eq!(verdict(3, 3), Verdict::Acceptable);
        assert_eq!(verdict(2, 4), Verdict::Dissatisfied);
        let shown = verdicts(&serde_json::json!({
            "speed": {"expectation": 4, "performance": 2},
            "comment": "fine",
            "nps": 9,
            "care": {"expectation": 3, "performance": 3},
        }));
        let got: Vec<(&str, i16, Verdict)> = shown
            .iter()
            .map(|v| (v.key.as_str(), v.gap, v.verdict))
            .collect();
        assert_eq!(
            got,
            [
                ("care", 0, Verdict::Acceptable),
                ("speed", -2, Verdict::Dissatisfied)
            ]
        );
    }

    #[test]
    fn results_count_verdicts_per_attribute() {
        let questions = [attribute("speed", 1.0)];
        let mut counts = Counts::default();
        counts.add("", None, None, None, 7);
        // (P, E, n): 2 satisfied (5 > 4), 3 acceptable (4 = 4, 2 = 2), 2 dissatisfied (1 < 3).
        counts.add("speed", Some(5), Some(4), None, 2);
        counts.add("speed", Some(4), Some(4), None, 2);
        counts.add("speed", Some(2), Some(2), None, 1);
        counts.add("speed", Some(1), Some(3), None, 2);
        let m = metrics(&questions, &counts);
        let gap = m.questions[0].gap.clone().unwrap();
        // Shares of n = 7: 2/7 = 28.57 %, 3/7 = 42.86 %, 2/7 = 28.57 %.
        assert_eq!(
            gap.verdicts,
            VerdictCounts {
                satisfied: 2,
                acceptable: 3,
                dissatisfied: 2,
                satisfied_share: 28.57,
                acceptable_share: 42.86,
                dissatisfied_share: 28.57,
            }
        );
        assert_eq!(gap.n, 7);
        // Means in hundredths: P = (10 + 8 + 2 + 2) / 7 = 22 / 7, E = (8 + 8 + 2 + 6) / 7.
        assert_eq!(
            (gap.mean_performance, gap.mean_expectation, gap.gap),
            (ratio(22, 7), ratio(24, 7), ratio(-2, 7))
        );
        assert_eq!((ratio(24, 7), ratio(-2, 7)), (3.43, -0.29));

        // The same answers as a response counts them (each apart), and half of them each way
        // (a roll-up written partly before the upgrade): the same figures.
        let answers = [(5, 4, 2), (4, 4, 2), (2, 2, 1), (1, 3, 2)];
        let mut apart = Counts::default();
        let mut mixed = Counts::default();
        apart.add("", None, None, None, 7);
        mixed.add("", None, None, None, 7);
        for (i, (p, e, n)) in answers.into_iter().enumerate() {
            for row in attribute_rows("speed", p, e) {
                apart.add("speed", row.score, row.expectation, row.choice.clone(), n);
                if i % 2 == 0 {
                    mixed.add("speed", row.score, row.expectation, row.choice, n);
                }
            }
            if i % 2 == 1 {
                mixed.add("speed", Some(p), Some(e), None, n);
            }
        }
        assert_eq!(apart.cells.len(), 1 + 4 + 3 + 3, "rows grow with the scale");
        assert_eq!(metrics(&questions, &apart), m);
        assert_eq!(metrics(&questions, &mixed), m);
    }

    #[test]
    fn a_shortfall_opens_a_follow_up_on_any_attribute_or_the_weighted_mean() {
        let gaps = [
            AttributeGap {
                key: "speed".into(),
                weight: 3.0,
                gap: -2,
            },
            AttributeGap {
                key: "care".into(),
                weight: 1.0,
                gap: 1,
            },
        ];
        // Any attribute: speed's −2 ≤ −2.
        assert_eq!(
            follow_up_reason(&rule(-2, None), None, None, &gaps).as_deref(),
            Some("speed: P − E = -2 (at most -2)")
        );
        assert_eq!(follow_up_reason(&rule(-3, None), None, None, &gaps), None);
        // Weighted mean: (3·(−2) + 1·1) / (3 + 1) = −5/4 = −1.25: ≤ −1, not ≤ −2.
        assert_eq!(
            follow_up_reason(&rule(-1, Some(GapOf::WeightedMean)), None, None, &gaps).as_deref(),
            Some("weighted mean P − E = -1.25 (at most -1)")
        );
        assert_eq!(
            follow_up_reason(&rule(-2, Some(GapOf::WeightedMean)), None, None, &gaps),
            None
        );
        // A tie P = E is no shortfall; no attribute answered, no follow-up.
        let tie = [AttributeGap {
            key: "speed".into(),
            weight: 1.0,
            gap: 0,
        }];
        assert_eq!(follow_up_reason(&rule(-1, None), None, None, &tie), None);
        assert_eq!(
            follow_up_reason(&rule(-1, Some(GapOf::WeightedMean)), None, None, &[]),
            None
        );
    }

    #[test]
    fn a_gap_rule_is_checked() {
        let questions = [attribute("speed", 1.0)];
        for (rule, field) in [
            (rule(0, None), "follow_up.gap_at_most"),
            (rule(-10, None), "follow_up.gap_at_most"),
            (
                FollowUpRule {
                    gap_at_most: None,
                    detractors: true,
                    ..rule(-1, Some(GapOf::WeightedMean))
                },
                "follow_up.gap_of",
            ),
        ] {
            let mut checks = Checks::new();
            follow_up(&mut checks, &rule, &questions);
            let err = checks.finish().unwrap_err();
            let fields: Vec<&str> = err.errors().iter().map(|e| e.field.as_str()).collect();
            assert!(fields.contains(&field), "{fields:?}");
        }
        let mut checks = Checks::new();
        follow_up(&mut checks, &rule(-2, None), &[]);
        assert!(checks.finish().is_err(), "needs an attribute question");
        let mut checks = Checks::new();
        follow_up(
            &mut checks,
            &rule(-9, Some(GapOf::WeightedMean)),
            &questions,
        );
        assert!(checks.finish().is_ok());
    }

    #[test]
    fn nps_categories() {
        assert_eq!(nps_category(0), NpsCategory::Detractor);
        assert_eq!(nps_category(6), NpsCategory::Detractor);
        assert_eq!(nps_category(7), NpsCategory::Passive);
        assert_eq!(nps_category(8), NpsCategory::Passive);
        assert_eq!(nps_category(9), NpsCategory::Promoter);
        assert_eq!(nps_category(10), NpsCategory::Promoter);
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_year_reads_whole_months_and_a_few_days() {
        // 2025-12-02 .. 2026-12-02: December 2025 is 30 of 31 days covered, so it is read
        // whole less its first day; December 2026 is 2 of 31, read by day.
        let reads = RollUpReads::of(day(2025, 12, 2), day(2026, 12, 2));
        assert_eq!(reads.months, Some((day(2025, 12, 1), day(2026, 11, 1))));
        assert_eq!(
            reads.days,
            vec![
                (day(2025, 12, 1), day(2025, 12, 1), -1),
                (day(2026, 12, 1), day(2026, 12, 2), 1),
            ]
        );
    }

    #[test]
    fn a_range_within_one_month() {
        // 3 of 28 days: by day. 20 of 28 days (Feb 5 .. 24): the month less 4 and 4 days.
        let few = RollUpReads::of(day(2026, 2, 10), day(2026, 2, 12));
        assert_eq!(few.months, None);
        assert_eq!(few.days, vec![(day(2026, 2, 10), day(2026, 2, 12), 1)]);
        let most = RollUpReads::of(day(2026, 2, 5), day(2026, 2, 24));
        assert_eq!(most.months, Some((day(2026, 2, 1), day(2026, 2, 1))));
        assert_eq!(
            most.days,
            vec![
                (day(2026, 2, 1), day(2026, 2, 4), -1),
                (day(2026, 2, 25), day(2026, 2, 28), -1),
            ]
        );
        // Exactly half (14 of 28) is read by day; a whole month is one monthly read.
        let half = RollUpReads::of(day(2026, 2, 1), day(2026, 2, 14));
        assert_eq!(half.months, None);
        let whole = RollUpReads::of(day(2026, 2, 1), day(2026, 2, 28));
        assert_eq!(whole.months, Some((day(2026, 2, 1), day(2026, 2, 1))));
        assert!(whole.days.is_empty());
    }

    #[test]
    fn two_ragged_neighbours_share_no_whole_month() {
        // Jan 25 .. Feb 3: 7 of 31 and 3 of 28 days, both by day, no month whole.
        let reads = RollUpReads::of(day(2026, 1, 25), day(2026, 2, 3));
        assert_eq!(reads.months, None);
        assert_eq!(
            reads.days,
            vec![
                (day(2026, 1, 25), day(2026, 1, 31), 1),
                (day(2026, 2, 1), day(2026, 2, 3), 1),
            ]
        );
    }

    #[test]
    fn the_reads_count_every_day_of_the_range_once() {
        // For many ranges, the days counted (months whole, plus and minus day ranges) are
        // exactly the days of the range.
        let start = day(2024, 1, 1);
        for offset in (0..800).step_by(13) {
            for length in [0, 1, 14, 15, 16, 27, 31, 45, 59, 120, 366] {
                let from = start + chrono::Duration::days(offset);
                let to = from + chrono::Duration::days(length);
                let reads = RollUpReads::of(from, to);
                let mut counted: BTreeMap<NaiveDate, i32> = BTreeMap::new();
                if let Some((low, high)) = reads.months {
                    let mut d = low;
                    while d < high.checked_add_months(Months::new(1)).unwrap() {
                        *counted.entry(d).or_default() += 1;
                        d = d.succ_opt().unwrap();
                    }
                }
                for (a, b, sign) in &reads.days {
                    let mut d = *a;
                    while d <= *b {
                        *counted.entry(d).or_default() += sign;
                        d = d.succ_opt().unwrap();
                    }
                }
                counted.retain(|_, n| *n != 0);
                let expected: Vec<NaiveDate> = from.iter_days().take_while(|d| *d <= to).collect();
                assert_eq!(
                    counted.keys().copied().collect::<Vec<_>>(),
                    expected,
                    "{from}..{to}"
                );
                assert!(counted.values().all(|n| *n == 1), "{from}..{to}");
                let by_day: i64 = reads
                    .days
                    .iter()
                    .map(|(a, b, _)| (*b - *a).num_days() + 1)
                    .sum();
                assert!(by_day <= 32, "{from}..{to} reads {by_day} days");
            }
        }
    }
}
