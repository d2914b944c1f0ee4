//! Pure customer logic: applying a JSON merge patch to a customer with every field validated,
//! masking sensitive data, deriving the age. No database, no HTTP.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::json::{
    Address, AddressInput, AuthoritySource, ConsentInput, Credit, CreditInput, CustomerInput,
    CustomerKind, LifecycleStage, Qualification, QualificationInput, RelationshipLevel,
};
use super::store::CustomerDraft;
use crate::domain::{
    ChurnCause, Email, Phone, clearable_text as text, country_code, optional_text, required_text,
};
use crate::http::error::FieldError;
use crate::http::patch::{Patch, nullable, required};
use crate::http::validation::Checks;

pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_LEN: usize = 50;
pub const MAX_ATTRIBUTE_KEYS: usize = 100;
pub const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;

impl CustomerDraft {
    /// What a new customer starts from before its input applies.
    pub fn blank() -> Self {
        CustomerDraft {
            kind: CustomerKind::Individual,
            name: String::new(),
            organization_name: None,
            email: None,
            phone: None,
            address: None,
            region_type: None,
            birth_date: None,
            gender: None,
            occupation: None,
            income_band: None,
            national_id: None,
            preferred_channel: None,
            consent_email: false,
            consent_email_at: None,
            consent_sms: false,
            consent_sms_at: None,
            tags: Vec::new(),
            attributes: Value::Object(Map::new()),
            source: None,
            external_id: None,
            account_manager_id: None,
            lifecycle_stage: LifecycleStage::Prospect,
            relationship_level: RelationshipLevel::Basic,
            qualification: None,
            parent_id: None,
            referred_by_id: None,
            influential: false,
            credit: None,
            buyer_type: None,
            organization_type: None,
        }
    }
}

/// The deepest a group of organizations goes: its root and nine levels below.
pub const MAX_GROUP_LEVELS: usize = 10;

/// The cycle that making `parent` the parent of `child` would close, given `ancestors`:
/// `parent` and its parents upwards, `parent` first. The cycle's ids in order, beginning and
/// ending with `child` (`child → parent → … → child`); `None` when there is none.
pub fn cycle(child: Uuid, ancestors: &[Uuid]) -> Option<Vec<Uuid>> {
    let at = ancestors.iter().position(|a| *a == child)?;
    let mut ids = Vec::with_capacity(at + 2);
    ids.push(child);
    ids.extend_from_slice(&ancestors[..=at]);
    Some(ids)
}

/// What the single endpoints answer about a change of group, given what it would make of the
/// groups (`parent`: `ok`, `missing` or `individual`; `cycle`: the ids of a cycle it closes;
/// `levels`: the group's levels through the customer; `stranded`: no organization any more,
/// yet with subsidiaries): the field and message, or `None` when it is fine. Shared with the
/// set-wise check of an import, so that a row fails as its `PATCH` would.
pub fn group_problem(
    parent_id: Option<Uuid>,
    parent: &str,
    cycle: &[Uuid],
    levels: usize,
    stranded: bool,
) -> Option<(&'static str, String)> {
    if stranded {
        return Some((
            "kind",
            "an organization with subsidiaries stays an organization: move them first".to_owned(),
        ));
    }
    let parent_id = parent_id?;
    if !cycle.is_empty() {
        return Some((
            "parent_id",
            format!("would make a cycle: {}", cycle_text(cycle)),
        ));
    }
    match parent {
        "missing" => return Some(("parent_id", format!("names no customer ({parent_id})"))),
        "individual" => {
            return Some((
                "parent_id",
                "must be an organization (it names an individual)".to_owned(),
            ));
        }
        _ => {}
    }
    (levels > MAX_GROUP_LEVELS).then(|| {
        (
            "parent_id",
            format!("a group has at most {MAX_GROUP_LEVELS} levels; this one would have {levels}"),
        )
    })
}

/// A cycle as the error names it: `a → b → a`.
pub fn cycle_text(ids: &[Uuid]) -> String {
    ids.iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(" → ")
}

/// The result of applying input: the new draft, and the reason for a stage change, if given.
#[derive(Debug)]
pub struct Applied {
    pub draft: CustomerDraft,
    pub lifecycle_reason: Option<String>,
    /// Why the customer was lost, with a move into `dissolution` or `churned`.
    pub reason_code: Option<ChurnCause>,
}

/// Applies `input` to `base` (a new customer's blank, or the current record), checking every
/// field and reporting every error at once.
pub fn apply(
    input: CustomerInput,
    base: &CustomerDraft,
    creating: bool,
    now: DateTime<Utc>,
) -> Result<Applied, Vec<FieldError>> {
    let mut checks = Checks::new();
    let mut draft = base.clone();
    let today = now.date_naive();

    required(&mut checks, "kind", input.kind, &mut draft.kind, Ok);
    required(&mut checks, "name", input.name, &mut draft.name, |raw| {
        required_text(&raw, 200)
    });
    nullable(
        &mut checks,
        "organization_name",
        input.organization_name,
        &mut draft.organization_name,
        text(200),
    );
    nullable(&mut checks, "email", input.email, &mut draft.email, |raw| {
        Email::parse(&raw)
    });
    let new_phone = match input.phone {
        Patch::Absent => None,
        Patch::Null => {
            draft.phone = None;
            None
        }
        Patch::Value(raw) => Some(raw),
    };
    match input.address {
        Patch::Absent => {}
        Patch::Null => draft.address = None,
        Patch::Value(patch) => {
            let merged = merge_address(
                &mut checks,
                draft.address.clone().unwrap_or_default(),
                patch,
            );
            draft.address = (merged != Address::default()).then_some(merged);
        }
    }
    if let Some(raw) = new_phone {
        let country = draft.address.as_ref().and_then(|a| a.country.as_deref());
        if let Some(phone) = checks.check("phone", Phone::parse(&raw, country)) {
            draft.phone = Some(phone);
        }
    }
    nullable(
        &mut checks,
        "region_type",
        input.region_type,
        &mut draft.region_type,
        Ok,
    );
    nullable(
        &mut checks,
        "birth_date",
        input.birth_date,
        &mut draft.birth_date,
        |date| {
            let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default();
            if date > today {
                Err("must not be in the future".to_owned())
            } else if date < earliest {
                Err("must not be before 1900-01-01".to_owned())
            } else {
                Ok(date)
            }
        },
    );
    nullable(&mut checks, "gender", input.gender, &mut draft.gender, Ok);
    nullable(
        &mut checks,
        "occupation",
        input.occupation,
        &mut draft.occupation,
        text(100),
    );
    nullable(
        &mut checks,
        "income_band",
        input.income_band,
        &mut draft.income_band,
        Ok,
    );
    nullable(
        &mut checks,
        "national_id",
        input.national_id,
        &mut draft.national_id,
        national_id,
    );
    nullable(
        &mut checks,
        "preferred_channel",
        input.preferred_channel,
        &mut draft.preferred_channel,
        Ok,
    );
    if let Some(consent) = input.consent {
        if let Some(email) = consent.email {
            apply_consent(
                &mut checks,
                "consent.email",
                email,
                now,
                &mut draft.consent_email,
                &mut draft.consent_email_at,
            );
        }
        if let Some(sms) = consent.sms {
            apply_consent(
                &mut checks,
                "consent.sms",
                sms,
                now,
                &mut draft.consent_sms,
                &mut draft.consent_sms_at,
            );
        }
    }
    match input.tags {
        Patch::Absent => {}
        Patch::Null => draft.tags = Vec::new(),
        Patch::Value(tags) => {
            if let Some(tags) = checks.check("tags", clean_tags(tags)) {
                draft.tags = tags;
            }
        }
    }
    match input.attributes {
        Patch::Absent => {}
        Patch::Null => draft.attributes = Value::Object(Map::new()),
        Patch::Value(patch @ Value::Object(_)) => {
            let mut merged = draft.attributes.clone();
            merge_patch(&mut merged, &patch);
            if let Some(merged) = checks.check("attributes", check_attributes(merged)) {
                draft.attributes = merged;
            }
        }
        Patch::Value(_) => checks.fail("attributes", "must be a JSON object"),
    }
    nullable(
        &mut checks,
        "source",
        input.source,
        &mut draft.source,
        text(100),
    );
    nullable(
        &mut checks,
        "external_id",
        input.external_id,
        &mut draft.external_id,
        external_id,
    );
    nullable(
        &mut checks,
        "account_manager_id",
        input.account_manager_id,
        &mut draft.account_manager_id,
        Ok::<Uuid, String>,
    );
    let stage_before = draft.lifecycle_stage;
    required(
        &mut checks,
        "lifecycle_stage",
        input.lifecycle_stage,
        &mut draft.lifecycle_stage,
        Ok,
    );
    let lifecycle_reason = match input.lifecycle_reason {
        None => None,
        // On creation the reason explains the first stage; later, it explains a change.
        Some(_) if !creating && draft.lifecycle_stage == stage_before => {
            checks.fail("lifecycle_reason", "goes with a change of lifecycle_stage");
            None
        }
        Some(reason) => checks
            .check("lifecycle_reason", optional_text(Some(&reason), 500))
            .flatten(),
    };
    let reason_code = check_reason_code(
        &mut checks,
        input.reason_code,
        creating || draft.lifecycle_stage != stage_before,
        draft.lifecycle_stage,
    );
    required(
        &mut checks,
        "relationship_level",
        input.relationship_level,
        &mut draft.relationship_level,
        Ok,
    );
    match input.qualification {
        Patch::Absent => {}
        Patch::Null => draft.qualification = None,
        Patch::Value(q) => {
            if let Some(q) =
                checks.check("qualification", merge_qualification(draft.qualification, q))
            {
                draft.qualification = Some(q);
            }
        }
    }
    nullable(
        &mut checks,
        "parent_id",
        input.parent_id,
        &mut draft.parent_id,
        Ok::<Uuid, String>,
    );
    nullable(
        &mut checks,
        "referred_by_id",
        input.referred_by_id,
        &mut draft.referred_by_id,
        Ok::<Uuid, String>,
    );
    required(
        &mut checks,
        "influential",
        input.influential,
        &mut draft.influential,
        Ok,
    );
    if draft.parent_id.is_some() && draft.kind != CustomerKind::Organization {
        checks.fail(
            "parent_id",
            "only an organization belongs to a group (this customer is an individual)",
        );
    }
    match input.credit {
        Patch::Absent => {}
        Patch::Null => draft.credit = None,
        Patch::Value(c) => {
            if let Some(c) = merge_credit(&mut checks, draft.credit.clone(), c, now) {
                draft.credit = Some(c);
            }
        }
    }
    nullable(
        &mut checks,
        "buyer_type",
        input.buyer_type,
        &mut draft.buyer_type,
        Ok,
    );
    nullable(
        &mut checks,
        "organization_type",
        input.organization_type,
        &mut draft.organization_type,
        Ok,
    );
    check_classification_kind(&mut checks, &draft);
    if draft.name.is_empty() && checks.is_ok() {
        checks.fail("name", "is required");
    }
    if draft
        .qualification
        .is_some_and(|q| q.authority_source == AuthoritySource::Derived)
        && draft.kind != CustomerKind::Organization
    {
        checks.fail(
            "qualification.authority_source",
            "only an organization derives its authority from its contacts",
        );
    }
    match checks.finish() {
        Ok(()) => Ok(Applied {
            draft,
            lifecycle_reason,
            reason_code,
        }),
        Err(err) => Err(err.errors().to_vec()),
    }
}

/// A buyer type belongs to an individual, an organization type to an organization (the
/// course classifies the two kinds apart): either on the other kind is refused, naming it,
/// also when the kind changes under a classification already set.
fn check_classification_kind(checks: &mut Checks, draft: &CustomerDraft) {
    if draft.buyer_type.is_some() && draft.kind != CustomerKind::Individual {
        checks.fail(
            "buyer_type",
            "belongs to individuals only (set `organization_type` for an organization)",
        );
    }
    if draft.organization_type.is_some() && draft.kind != CustomerKind::Organization {
        checks.fail(
            "organization_type",
            "belongs to organizations only (set `buyer_type` for an individual)",
        );
    }
}

/// Whether a stage is one a customer is lost in (or being lost: `dissolution`), so that a
/// move into it needs a reason code.
pub fn is_loss(stage: LifecycleStage) -> bool {
    matches!(stage, LifecycleStage::Dissolution | LifecycleStage::Churned)
}

/// A move into `dissolution` or `churned` must say why with a code (a lost customer whose
/// cause was never asked teaches nothing: DOMAIN.md, lost customers); no other change takes
/// one.
fn check_reason_code(
    checks: &mut Checks,
    code: Option<ChurnCause>,
    moved: bool,
    stage: LifecycleStage,
) -> Option<ChurnCause> {
    match code {
        None if moved && is_loss(stage) => {
            checks.fail(
                "reason_code",
                "is required with a move into dissolution or churned",
            );
            None
        }
        Some(_) if !moved => {
            checks.fail("reason_code", "goes with a change of lifecycle_stage");
            None
        }
        Some(_) if !is_loss(stage) => {
            checks.fail(
                "reason_code",
                "goes only with a move into dissolution or churned",
            );
            None
        }
        code => code,
    }
}

fn merge_address(checks: &mut Checks, mut address: Address, patch: AddressInput) -> Address {
    let fields = [
        ("address.line1", patch.line1, &mut address.line1, 200),
        ("address.line2", patch.line2, &mut address.line2, 200),
        ("address.city", patch.city, &mut address.city, 100),
        ("address.region", patch.region, &mut address.region, 100),
        (
            "address.postal_code",
            patch.postal_code,
            &mut address.postal_code,
            20,
        ),
    ];
    for (field, patch, current, max) in fields {
        nullable(checks, field, patch, current, text(max));
    }
    nullable(
        checks,
        "address.country",
        patch.country,
        &mut address.country,
        |raw| country_code(&raw),
    );
    address
}

fn apply_consent(
    checks: &mut Checks,
    field: &str,
    input: ConsentInput,
    now: DateTime<Utc>,
    granted: &mut bool,
    at: &mut Option<DateTime<Utc>>,
) {
    if let Some(when) = input.at {
        if when > now + chrono::Duration::minutes(5) {
            checks.fail(&format!("{field}.at"), "must not be in the future");
            return;
        }
        *at = Some(when);
    } else if input.granted != *granted {
        *at = Some(now);
    }
    *granted = input.granted;
}

/// Merges credit changes into the current credit (if any), each bad field named under
/// `credit.`. The review time is the one given, else now when the grade or limit changes.
fn merge_credit(
    checks: &mut Checks,
    current: Option<Credit>,
    input: CreditInput,
    now: DateTime<Utc>,
) -> Option<Credit> {
    let before = current.clone();
    let grade = match (input.grade, &current) {
        (Some(g), _) => Some(g),
        (None, Some(c)) => Some(c.grade),
        (None, None) => {
            checks.fail("credit.grade", "is required when the credit is first set");
            None
        }
    };
    let mut limit = current.as_ref().and_then(|c| c.limit);
    let mut currency = current.as_ref().and_then(|c| c.currency.clone());
    match input.limit {
        Patch::Absent => {}
        Patch::Null => {
            limit = None;
            currency = None;
        }
        Patch::Value(v) => limit = checks.check("credit.limit", crate::domain::money(v)),
    }
    let limit_bad = matches!(input.limit, Patch::Value(_)) && limit.is_none();
    let currency_given = matches!(input.currency, Patch::Value(_));
    match input.currency {
        Patch::Absent => {}
        Patch::Null => currency = None,
        Patch::Value(c) => {
            currency = checks.check("credit.currency", crate::domain::currency_code(&c));
        }
    }
    let currency_bad = currency_given && currency.is_none();
    if !limit_bad && !currency_bad {
        match (limit, &currency) {
            (Some(_), None) => checks.fail("credit.currency", "is required with a `limit`"),
            (None, Some(_)) => checks.fail("credit.currency", "goes with a `limit` only"),
            _ => {}
        }
    }
    if let Some(at) = input.reviewed_at
        && at > now + chrono::Duration::minutes(1)
    {
        checks.fail("credit.reviewed_at", "must not be in the future");
    }
    let grade = grade?;
    let changed = before
        .as_ref()
        .is_none_or(|b| b.grade != grade || b.limit != limit || b.currency != currency);
    let reviewed_at = match (input.reviewed_at, &before) {
        (Some(at), _) => at,
        (None, Some(b)) if !changed => b.reviewed_at,
        (None, _) => now,
    };
    Some(Credit {
        grade,
        limit,
        currency,
        reviewed_at,
    })
}

/// Merges qualification changes. A hand-set `authority` is `manual`; `authority_source:
/// derived` leaves `authority` to the service, which derives it from the contacts.
fn merge_qualification(
    current: Option<Qualification>,
    input: QualificationInput,
) -> Result<Qualification, String> {
    if input.authority.is_some() && input.authority_source == Some(AuthoritySource::Derived) {
        return Err("give `authority` by hand or `authority_source: derived`, not both".to_owned());
    }
    let authority_source = match (input.authority, input.authority_source) {
        (Some(_), _) => AuthoritySource::Manual,
        (None, Some(source)) => source,
        (None, None) => current.map_or(AuthoritySource::Manual, |q| q.authority_source),
    };
    match current {
        Some(q) => Ok(Qualification {
            money: input.money.unwrap_or(q.money),
            authority: input.authority.unwrap_or(q.authority),
            need: input.need.unwrap_or(q.need),
            authority_source,
        }),
        None => match (input.money, input.authority, input.need, authority_source) {
            (Some(money), authority, Some(need), AuthoritySource::Derived) => Ok(Qualification {
                money,
                authority: authority.unwrap_or(false),
                need,
                authority_source,
            }),
            (Some(money), Some(authority), Some(need), _) => Ok(Qualification {
                money,
                authority,
                need,
                authority_source,
            }),
            _ => Err("needs money, authority and need (true or false) when first set".to_owned()),
        },
    }
}

fn national_id(raw: String) -> Result<String, String> {
    let id = raw.trim().to_owned();
    let ok = !id.is_empty()
        && id.chars().count() <= 64
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '/');
    if ok {
        Ok(id)
    } else {
        Err("must be 1 to 64 letters, digits, spaces, `-` or `/`".to_owned())
    }
}

/// Valid in a URL path segment as it is: visible ASCII other than `/ ? # %`.
fn external_id(raw: String) -> Result<String, String> {
    let ok = !raw.is_empty()
        && raw.len() <= 255
        && raw
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"/?#%".contains(&b));
    if ok {
        Ok(raw)
    } else {
        Err("must be 1 to 255 visible ASCII characters other than / ? # %".to_owned())
    }
}

/// Tags: trimmed, lower case, de-duplicated in order.
pub fn clean_tags(tags: Vec<String>) -> Result<Vec<String>, String> {
    if tags.len() > MAX_TAGS {
        return Err(format!("must hold at most {MAX_TAGS} tags"));
    }
    let mut clean: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = tag.trim().to_lowercase();
        // Commas separate tags in query strings, semicolons in CSV cells.
        if tag.is_empty() || tag.chars().count() > MAX_TAG_LEN || tag.contains([',', ';']) {
            return Err(format!(
                "each tag must be 1 to {MAX_TAG_LEN} characters without commas or semicolons"
            ));
        }
        if !clean.contains(&tag) {
            clean.push(tag);
        }
    }
    Ok(clean)
}

fn check_attributes(attributes: Value) -> Result<Value, String> {
    let Value::Object(map) = &attributes else {
        return Err("must be a JSON object".to_owned());
    };
    if map.len() > MAX_ATTRIBUTE_KEYS {
        return Err(format!("must hold at most {MAX_ATTRIBUTE_KEYS} keys"));
    }
    if let Some(bad) = map.keys().find(|k| !valid_attribute_key(k)) {
        return Err(format!(
            "key `{bad}` must be 1 to 64 letters, digits, `_` or `-`"
        ));
    }
    if attributes.to_string().len() > MAX_ATTRIBUTES_BYTES {
        return Err(format!(
            "must be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON"
        ));
    }
    Ok(attributes)
}

pub fn valid_attribute_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// RFC 7396: merges `patch` into `target`; `null` members remove keys.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// `****1234`: only the last four characters of a sensitive value.
pub fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let visible: String = if chars.len() > 4 {
        chars[chars.len() - 4..].iter().collect()
    } else {
        String::new()
    };
    format!("****{visible}")
}

/// Age in whole years on `today`.
pub fn age(birth: NaiveDate, today: NaiveDate) -> Option<u32> {
    let mut years = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    u32::try_from(years).ok()
}

/// What the course teaches about one lifecycle stage (DOMAIN.md sections 2 and 9), beside
/// Rapport's own reading of it.
#[derive(Debug, Clone, Copy)]
pub struct StageGuide {
    pub stage: LifecycleStage,
    /// The course's name; `None` for the stages the course does not name (`prospect`,
    /// `churned`: before and after the relationship it describes).
    pub course_name: Option<&'static str>,
    pub description: &'static str,
    /// Rapport's management focus (DOMAIN.md section 2).
    pub focus: &'static [&'static str],
    /// The course's management focus; `None` where the course gives none (稳固期, 思异期).
    pub course_focus: Option<&'static [&'static str]>,
}

/// Every stage in Rapport's order (the order of [`LifecycleStage::ALL`]). The course lists
/// 思异期 (`dissolution`) before 稳固期 (`commitment`); Rapport keeps dissolution after
/// commitment, where falling activity leads on to `churned`.
pub const STAGE_GUIDE: [StageGuide; 7] = [
    StageGuide {
        stage: LifecycleStage::Prospect,
        course_name: None,
        description: "Not yet a customer.",
        focus: &["qualify the prospect: money, authority, need (MAN)"],
        course_focus: None,
    },
    StageGuide {
        stage: LifecycleStage::Acquaintance,
        course_name: Some("初识期"),
        description: "First purchases: the customer and the company get to know each other.",
        focus: &["product and service quality", "breadth of offer"],
        course_focus: Some(&[
            "a rich choice of brands",
            "product and service quality",
            "a shared view of the value of goods, service and price",
            "free non-material extras",
        ]),
    },
    StageGuide {
        stage: LifecycleStage::Exploration,
        course_name: Some("矜持期"),
        description: "Cautious: the customer tests the relationship.",
        focus: &["quality", "non-material extras (free services)"],
        course_focus: Some(&[
            "a rich choice of brands",
            "quality",
            "free non-material extras",
        ]),
    },
    StageGuide {
        stage: LifecycleStage::Stable,
        course_name: Some("平稳期"),
        description: "Regular, predictable business.",
        focus: &["keep quality", "indirect contact and communication"],
        course_focus: Some(&[
            "a rich choice of brands",
            "indirect interaction and chances of contact",
        ]),
    },
    StageGuide {
        stage: LifecycleStage::Commitment,
        course_name: Some("稳固期"),
        description: "Firm and loyal: mutual dependence.",
        focus: &["value alignment", "partnership", "personal care"],
        course_focus: None,
    },
    StageGuide {
        stage: LifecycleStage::Dissolution,
        course_name: Some("思异期"),
        description: "Considering alternatives: activity is falling.",
        focus: &["find the cause", "win the customer back before they leave"],
        course_focus: None,
    },
    StageGuide {
        stage: LifecycleStage::Churned,
        course_name: None,
        description: "Gone.",
        focus: &["win-back campaigns", "learn why they left"],
        course_focus: None,
    },
];

/// Whether a purchase moves its customer from `prospect` to `acquaintance` (DOMAIN.md
/// section 2: first purchases begin the acquaintance): only a prospect's first purchase, and
/// only while the prospect stage is the one the customer was created in. A customer moved
/// into `prospect` later was put there by hand (no automatic rule moves anyone into it), and
/// that choice stands.
pub fn moves_on_purchase(
    stage: LifecycleStage,
    first_purchase: bool,
    prospect_since_creation: bool,
) -> bool {
    stage == LifecycleStage::Prospect && first_purchase && prospect_since_creation
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_stage_guide_lists_every_stage_in_order() {
        let listed: Vec<LifecycleStage> = STAGE_GUIDE.iter().map(|g| g.stage).collect();
        assert_eq!(listed, LifecycleStage::ALL);
        // The course's five names, each once, on the stages DOMAIN.md maps them to.
        let named: Vec<(LifecycleStage, &str)> = STAGE_GUIDE
            .iter()
            .filter_map(|g| g.course_name.map(|n| (g.stage, n)))
            .collect();
        assert_eq!(
            named,
            [
                (LifecycleStage::Acquaintance, "初识期"),
                (LifecycleStage::Exploration, "矜持期"),
                (LifecycleStage::Stable, "平稳期"),
                (LifecycleStage::Commitment, "稳固期"),
                (LifecycleStage::Dissolution, "思异期"),
            ]
        );
        // The course gives a focus for its first three stages only.
        let with_focus: Vec<LifecycleStage> = STAGE_GUIDE
            .iter()
            .filter(|g| g.course_focus.is_some())
            .map(|g| g.stage)
            .collect();
        assert_eq!(
            with_focus,
            [
                LifecycleStage::Acquaintance,
                LifecycleStage::Exploration,
                LifecycleStage::Stable
            ]
        );
        assert!(STAGE_GUIDE.iter().all(|g| !g.focus.is_empty()));
    }

    #[test]
    fn only_a_prospects_first_purchase_moves_it_unless_it_was_set_by_hand() {
        use LifecycleStage::*;
        assert!(moves_on_purchase(Prospect, true, true));
        // A second purchase, a prospect put back by hand, any other stage: no move.
        assert!(!moves_on_purchase(Prospect, false, true));
        assert!(!moves_on_purchase(Prospect, true, false));
        for stage in LifecycleStage::ALL.iter().filter(|s| **s != Prospect) {
            assert!(!moves_on_purchase(*stage, true, true), "{stage}");
        }
    }

    use super::*;
    use serde_json::json;

    fn input(body: Value) -> CustomerInput {
        serde_json::from_value(body).unwrap_or_else(|e| panic!("{e}"))
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn creation_needs_a_name_and_fills_defaults() {
        let err = apply(input(json!({})), &CustomerDraft::blank(), true, now()).err();
        assert_eq!(err.map(fields), Some(vec!["name".to_owned()]));
        let applied = apply(
            input(json!({"name": " Ada "})),
            &CustomerDraft::blank(),
            true,
            now(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(applied.draft.name, "Ada");
        assert_eq!(applied.draft.kind, CustomerKind::Individual);
        assert_eq!(applied.draft.lifecycle_stage, LifecycleStage::Prospect);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let body = json!({
            "name": "", "email": "x", "phone": "12", "birth_date": "2999-01-01",
            "national_id": "<script>", "tags": ["a,b"], "attributes": {"bad key": 1},
            "external_id": "a/b", "address": {"country": "XX"},
            "consent": {"email": {"granted": true, "at": "2999-01-01T00:00:00Z"}},
            "qualification": {"money": true}, "kind": null
        });
        let err = apply(input(body), &CustomerDraft::blank(), true, now())
            .err()
            .map(fields);
        let expected = [
            "kind",
            "name",
            "email",
            "address.country",
            "phone",
            "birth_date",
            "national_id",
            "consent.email.at",
            "tags",
            "attributes",
            "external_id",
            "qualification",
        ];
        assert_eq!(
            err,
            Some(expected.iter().map(|s| (*s).to_owned()).collect())
        );
    }

    #[test]
    fn nested_objects_merge_and_null_clears() {
        let first = apply(
            input(
                json!({"name": "A", "address": {"city": "Berlin", "country": "de"},
                         "attributes": {"a": 1, "b": {"c": 2}}, "phone": "030 12345678"}),
            ),
            &CustomerDraft::blank(),
            true,
            now(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            first.draft.phone.as_ref().map(Phone::as_str),
            Some("+493012345678")
        );
        let second = apply(
            input(json!({"address": {"postal_code": "10117"}, "attributes": {"a": null, "b": {"d": 3}}})),
            &first.draft,
            false,
            now(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let address = second.draft.address.clone().unwrap_or_default();
        assert_eq!(address.city.as_deref(), Some("Berlin"));
        assert_eq!(address.postal_code.as_deref(), Some("10117"));
        assert_eq!(address.country.as_deref(), Some("DE"));
        assert_eq!(second.draft.attributes, json!({"b": {"c": 2, "d": 3}}));
        let third = apply(
            input(json!({"address": null, "phone": null})),
            &second.draft,
            false,
            now(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(third.draft.address, None);
        assert_eq!(third.draft.phone, None);
    }

    #[test]
    fn consent_time_is_kept_with_each_change() {
        let base = CustomerDraft::blank();
        let given = apply(
            input(json!({"name": "A", "consent": {"email": {"granted": true}}})),
            &base,
            true,
            now(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(given.draft.consent_email);
        assert_eq!(given.draft.consent_email_at, Some(now()));
        // Sending the same state again does not move the time.
        let later = now() + chrono::Duration::hours(1);
        let same = apply(
            input(json!({"consent": {"email": {"granted": true}}})),
            &given.draft,
            false,
            later,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(same.draft.consent_email_at, Some(now()));
        let withdrawn = apply(
            input(json!({"consent": {"email": {"granted": false}}})),
            &given.draft,
            false,
            later,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(withdrawn.draft.consent_email_at, Some(later));
    }

    #[test]
    fn a_loss_move_needs_a_reason_code_and_no_other_change_takes_one() {
        let mut base = CustomerDraft::blank();
        base.name = "A".to_owned();
        base.lifecycle_stage = LifecycleStage::Stable;
        let errors = |body: Value, base: &CustomerDraft, creating: bool| {
            apply(input(body), base, creating, now()).err().map(fields)
        };
        let named = Some(vec!["reason_code".to_owned()]);
        // Into churned or dissolution without a code: refused, naming the code.
        assert_eq!(
            errors(json!({"lifecycle_stage": "churned"}), &base, false),
            named
        );
        assert_eq!(
            errors(json!({"lifecycle_stage": "dissolution"}), &base, false),
            named
        );
        // A creation in a loss stage is a move into it.
        assert_eq!(
            errors(
                json!({"name": "B", "lifecycle_stage": "churned"}),
                &CustomerDraft::blank(),
                true
            ),
            named
        );
        // A code with no move, or with a move elsewhere: refused.
        assert_eq!(errors(json!({"reason_code": "price"}), &base, false), named);
        assert_eq!(
            errors(
                json!({"lifecycle_stage": "commitment", "reason_code": "price"}),
                &base,
                false
            ),
            named
        );
        // The same stage again is no move, so no code either.
        let mut churned = base.clone();
        churned.lifecycle_stage = LifecycleStage::Churned;
        assert_eq!(
            errors(
                json!({"lifecycle_stage": "churned", "reason_code": "price"}),
                &churned,
                false
            ),
            named
        );
        let moved = apply(
            input(json!({"lifecycle_stage": "churned", "reason_code": "competitor"})),
            &base,
            false,
            now(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(moved.reason_code, Some(ChurnCause::Competitor));
        // Leaving a loss stage needs none.
        let back = apply(
            input(json!({"lifecycle_stage": "stable"})),
            &churned,
            false,
            now(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(back.reason_code, None);
    }

    #[test]
    fn a_lifecycle_reason_needs_a_stage_change() {
        let mut base = CustomerDraft::blank();
        base.name = "A".to_owned();
        let err = apply(
            input(json!({"lifecycle_reason": "why"})),
            &base,
            false,
            now(),
        )
        .err();
        assert_eq!(err.map(fields), Some(vec!["lifecycle_reason".to_owned()]));
        let ok = apply(
            input(json!({"lifecycle_stage": "stable", "lifecycle_reason": "why"})),
            &base,
            false,
            now(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ok.lifecycle_reason.as_deref(), Some("why"));
        let created = apply(
            input(json!({"name": "B", "lifecycle_reason": "walk-in"})),
            &CustomerDraft::blank(),
            true,
            now(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(created.lifecycle_reason.as_deref(), Some("walk-in"));
    }

    #[test]
    fn masks_and_ages() {
        assert_eq!(mask("T22000129"), "****0129");
        assert_eq!(mask("123"), "****");
        let birth = NaiveDate::from_ymd_opt(1990, 12, 10).unwrap_or_default();
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).unwrap_or_default();
        assert_eq!(age(birth, day(12, 9)), Some(35));
        assert_eq!(age(birth, day(12, 10)), Some(36));
    }

    #[test]
    fn tags_are_cleaned() {
        assert_eq!(
            clean_tags(vec![" VIP ".into(), "vip".into(), "Gold".into()]),
            Ok(vec!["vip".to_owned(), "gold".to_owned()])
        );
        assert!(clean_tags(vec![String::new()]).is_err());
        assert!(clean_tags(vec!["x".into(); 51]).is_err());
    }

    #[test]
    fn a_cycle_is_named_from_the_child_back_to_itself() {
        let [a, b, c, d] = [0, 1, 2, 3].map(|_| Uuid::now_v7());
        // Making `c` a's parent, where c's parents are b then a: a → c → b → a.
        assert_eq!(cycle(a, &[c, b, a]), Some(vec![a, c, b, a]));
        assert_eq!(cycle(a, &[a]), Some(vec![a, a]));
        assert_eq!(cycle(d, &[c, b, a]), None);
        assert_eq!(cycle(d, &[]), None);
        assert_eq!(cycle_text(&[a, a]), format!("{a} → {a}"));
    }

    #[test]
    fn only_organizations_belong_to_a_group() {
        let parent = Uuid::now_v7();
        let errors = apply(
            input(json!({"name": "Ada", "parent_id": parent})),
            &CustomerDraft::blank(),
            true,
            now(),
        )
        .unwrap_err();
        assert_eq!(fields(errors), ["parent_id"]);
        let applied = apply(
            input(
                json!({"name": "Acme", "kind": "organization", "parent_id": parent,
                         "referred_by_id": parent, "influential": true}),
            ),
            &CustomerDraft::blank(),
            true,
            now(),
        )
        .unwrap();
        assert_eq!(applied.draft.parent_id, Some(parent));
        assert_eq!(applied.draft.referred_by_id, Some(parent));
        assert!(applied.draft.influential);
        let errors = apply(
            input(json!({"influential": null})),
            &applied.draft,
            false,
            now(),
        )
        .unwrap_err();
        assert_eq!(fields(errors), ["influential"]);
    }
}
