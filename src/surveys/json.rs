//! Surveys, responses and results as the API shows and accepts them (DOMAIN.md section 4).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::customers::json::{LifecycleStage, RegionType};
use crate::http::patch::Patch;

crate::text_enum! {
    /// Where a survey stands: `draft` (being written, takes no responses), `active` (takes
    /// responses) or `closed` (takes none; can be reactivated).
    pub enum SurveyStatus {
        Draft = "draft",
        Active = "active",
        Closed = "closed",
    }
}

crate::text_enum! {
    /// What a question asks: `nps` (0–10, "would you recommend"), `csat` (1–5), `ces`
    /// (customer effort, 1–7), `rating` (1..`scale_max` with labels), `single_choice`,
    /// `multi_choice`, `text`, or `expectation_performance` (one service attribute rated
    /// twice on 1..`scale_max`: what the customer expected, E, and what they perceived, P).
    pub enum QuestionType {
        Nps = "nps",
        Csat = "csat",
        Ces = "ces",
        Rating = "rating",
        SingleChoice = "single_choice",
        MultiChoice = "multi_choice",
        Text = "text",
        ExpectationPerformance = "expectation_performance",
    }
}

crate::text_enum! {
    /// The Kano category of a service attribute: `must_be` (missing, it dissatisfies;
    /// present, it goes unnoticed), `performance` (the better, the more satisfied) or
    /// `attractive` (a delighter, with an outsized effect on loyalty).
    pub enum KanoCategory {
        MustBe = "must_be",
        Performance = "performance",
        Attractive = "attractive",
    }
}

/// One question of a survey. The fields after `required` belong to some types only, and
/// are refused on the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Question {
    /// Stable key the answers use: lower case letters, digits and `_`, starting with a
    /// letter, up to 40 characters, unique in the survey.
    #[schema(
        example = "recommend",
        min_length = 1,
        max_length = 40,
        pattern = "^[a-z][a-z0-9_]*$"
    )]
    pub key: String,
    /// The question as the customer reads it, 1 to 500 characters.
    #[schema(
        example = "How likely are you to recommend us to a friend?",
        min_length = 1,
        max_length = 500
    )]
    pub text: String,
    /// What it asks.
    #[serde(rename = "type")]
    pub question_type: QuestionType,
    /// Whether a response must answer it (false by default).
    #[serde(default)]
    #[schema(example = true)]
    pub required: bool,
    /// `rating` and `expectation_performance`: the top of the scale, 2 to 10 (5 by default);
    /// the scale starts at 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 5, minimum = 2, maximum = 10)]
    pub scale_max: Option<i16>,
    /// `rating` and `expectation_performance`: optional labels, one per point of the scale,
    /// lowest first, each 1 to 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(["very poor", "poor", "fair", "good", "excellent"]))]
    pub labels: Option<Vec<String>>,
    /// `single_choice` and `multi_choice`: the choices, 2 to 50, unique, each 1 to 100
    /// characters; answers name them exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = json!(["email", "phone", "in_store"]), min_items = 2, max_items = 50)]
    pub choices: Option<Vec<String>>,
    /// `expectation_performance` (required there): the attribute's Kano category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kano: Option<KanoCategory>,
    /// `expectation_performance`: the attribute's weight in the satisfaction index, more
    /// than 0 and at most 1000 (1 by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 2.0)]
    pub weight: Option<f64>,
}

crate::text_enum! {
    /// What a follow-up rule's `gap_at_most` is held against: each answered attribute's
    /// P − E (`any_attribute`), or their mean weighted by the attributes' weights
    /// (`weighted_mean`).
    pub enum GapOf {
        AnyAttribute = "any_attribute",
        WeightedMean = "weighted_mean",
    }
}

crate::text_enum! {
    /// Satisfaction as the course defines it, perceived performance P against expectation
    /// E: `satisfied` (P > E), `acceptable` (P = E), `dissatisfied` (P < E).
    pub enum Verdict {
        Satisfied = "satisfied",
        Acceptable = "acceptable",
        Dissatisfied = "dissatisfied",
    }
}

/// One answered service attribute of a response, with its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AttributeVerdict {
    /// The `expectation_performance` question's key.
    #[schema(example = "speed")]
    pub key: String,
    /// Expectation E.
    #[schema(example = 4)]
    pub expectation: i16,
    /// Perceived performance P.
    #[schema(example = 3)]
    pub performance: i16,
    /// P − E.
    #[schema(example = -1)]
    pub gap: i16,
    /// `satisfied` (P > E), `acceptable` (P = E) or `dissatisfied` (P < E).
    pub verdict: Verdict,
}

/// How many answers to one attribute fall on each side of expectation, and their shares.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VerdictCounts {
    /// Answers with P > E.
    #[schema(example = 60)]
    pub satisfied: i64,
    /// Answers with P = E.
    #[schema(example = 80)]
    pub acceptable: i64,
    /// Answers with P < E.
    #[schema(example = 40)]
    pub dissatisfied: i64,
    /// satisfied / n × 100, rounded to 2 decimals.
    #[schema(example = 33.33)]
    pub satisfied_share: f64,
    /// acceptable / n × 100, rounded to 2 decimals.
    #[schema(example = 44.44)]
    pub acceptable_share: f64,
    /// dissatisfied / n × 100, rounded to 2 decimals.
    #[schema(example = 22.22)]
    pub dissatisfied_share: f64,
}

/// When a response opens a follow-up interaction (a `callback` due `due_in_hours` after the
/// response, assigned to the customer's account manager, unassigned when they have none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpRule {
    /// Open one for a detractor (0 to 6 on the survey's first NPS question).
    #[serde(default)]
    #[schema(example = true)]
    pub detractors: bool,
    /// Open one when the answer to the survey's first CSAT question is at most this, 1 to 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 2, minimum = 1, maximum = 4)]
    pub csat_at_most: Option<i16>,
    /// Open one when perceived performance falls short of expectation by this much or more:
    /// P − E at most this, −9 to −1 (−2: two points short), on any answered
    /// `expectation_performance` attribute or, with `gap_of: weighted_mean`, on the
    /// weighted mean Σ wₐ · (Pₐ − Eₐ) / Σ wₐ of the answered attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = -2, minimum = -9, maximum = -1)]
    pub gap_at_most: Option<i16>,
    /// What `gap_at_most` is held against: `any_attribute` (the default) or `weighted_mean`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_of: Option<GapOf>,
    /// Hours from the response to the follow-up's `due_at`, 1 to 720 (24 by default).
    #[serde(default = "default_due_in_hours")]
    #[schema(example = 24, minimum = 1, maximum = 720)]
    pub due_in_hours: i32,
}

fn default_due_in_hours() -> i32 {
    24
}

/// A survey to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyInput {
    /// 1 to 200 characters.
    #[schema(example = "After-sales satisfaction", min_length = 1, max_length = 200)]
    pub name: String,
    /// Up to 2000 characters.
    #[schema(example = "Sent a week after each purchase.", max_length = 2000)]
    pub description: Option<String>,
    /// The questions, in order, 1 to 100.
    #[schema(min_items = 1, max_items = 100)]
    pub questions: Vec<Question>,
    /// Whether a customer may respond more than once (false by default: a second response
    /// is a `409`).
    #[serde(default)]
    #[schema(example = false)]
    pub allow_multiple_responses: bool,
    /// When a response opens a follow-up interaction; never by default.
    pub follow_up: Option<FollowUpRule>,
}

/// Changes to a survey (JSON merge patch). `questions` and `allow_multiple_responses` cannot
/// change once the survey has responses: create a revision instead.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SurveyPatch {
    /// 1 to 200 characters.
    #[serde(default)]
    #[schema(value_type = String, example = "After-sales satisfaction", min_length = 1, max_length = 200)]
    pub name: Patch<String>,
    /// Up to 2000 characters; `null` clears it.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Sent a week after each purchase.", max_length = 2000)]
    pub description: Patch<String>,
    /// The whole new list of questions.
    #[serde(default)]
    #[schema(value_type = Vec<Question>, min_items = 1, max_items = 100)]
    pub questions: Patch<Vec<Question>>,
    /// Whether a customer may respond more than once.
    #[serde(default)]
    #[schema(value_type = bool, example = true)]
    pub allow_multiple_responses: Patch<bool>,
    /// The follow-up rule; `null` turns follow-ups off.
    #[serde(default)]
    #[schema(value_type = Option<FollowUpRule>)]
    pub follow_up: Patch<FollowUpRule>,
    /// `draft` → `active` → `closed`, and `closed` → `active` to reopen.
    #[serde(default)]
    #[schema(value_type = SurveyStatus)]
    pub status: Patch<SurveyStatus>,
}

/// A survey.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Survey {
    /// Survey id (UUIDv7).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e80")]
    pub id: Uuid,
    /// The name.
    #[schema(example = "After-sales satisfaction")]
    pub name: String,
    /// The description.
    #[schema(example = "Sent a week after each purchase.")]
    pub description: Option<String>,
    /// Where it stands.
    pub status: SurveyStatus,
    /// The questions, in order.
    pub questions: Vec<Question>,
    /// Whether a customer may respond more than once.
    #[schema(example = false)]
    pub allow_multiple_responses: bool,
    /// When a response opens a follow-up interaction; `null`: never.
    pub follow_up: Option<FollowUpRule>,
    /// 1 for a new survey, one more for each revision.
    #[schema(example = 1)]
    pub revision: i32,
    /// The survey this one revises.
    #[schema(example = json!(null))]
    pub revises: Option<Uuid>,
    /// When it was last activated.
    #[schema(example = "2026-11-23T09:00:00Z")]
    pub activated_at: Option<DateTime<Utc>>,
    /// When it was last closed.
    #[schema(example = json!(null))]
    pub closed_at: Option<DateTime<Utc>>,
    /// When it was created.
    #[schema(example = "2026-11-20T09:00:00Z")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[schema(example = "2026-11-23T09:00:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change; the `ETag` is this number in quotes.
    #[schema(example = 2)]
    pub version: i64,
}

/// Filters of a survey list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SurveysQuery {
    /// Only surveys in this status.
    #[param(inline)]
    pub status: Option<SurveyStatus>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A response to record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseInput {
    /// The customer who answered (a live one).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Uuid,
    /// The interaction the survey follows, one of this customer's.
    #[schema(example = json!(null))]
    pub interaction_id: Option<Uuid>,
    /// The purchase the survey follows, one of this customer's.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e70")]
    pub purchase_id: Option<Uuid>,
    /// When the customer answered; not in the future. Now by default.
    #[schema(example = "2026-11-23T10:00:00Z")]
    pub submitted_at: Option<DateTime<Utc>>,
    #[schema(schema_with = answers_input_schema)]
    pub answers: Map<String, Value>,
}

fn answers_input_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::free_object(
        "The answers by question key: a whole number for `nps`, `csat`, `ces` and `rating`; a \
         choice for `single_choice`; a list of distinct choices for `multi_choice`; text (up \
         to 2000 characters) for `text`; `{\"expectation\": E, \"performance\": P}` for \
         `expectation_performance`. `null` or absent leaves a question unanswered (refused \
         when it is required).",
        serde_json::json!({"recommend": 9, "csat": 4,
            "speed": {"expectation": 4, "performance": 5}, "channels": ["email"],
            "comment": "Quick and friendly."}),
        false,
    )
}

fn answers_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::free_object(
        "The answers by question key, as checked (text trimmed, unanswered questions left \
         out; text answers are removed when the customer's personal data is erased).",
        serde_json::json!({"recommend": 9, "csat": 4,
            "speed": {"expectation": 4, "performance": 5}}),
        false,
    )
}

/// The customer's segments when they responded.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResponseSegment {
    /// Their loyalty tier's key; `null` outside the programme's tiers.
    #[schema(example = "gold")]
    pub loyalty_tier: Option<String>,
    /// Their lifecycle stage.
    pub lifecycle_stage: LifecycleStage,
    /// Urban or rural.
    pub region_type: Option<RegionType>,
}

/// A survey response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SurveyResponse {
    /// Response id (UUIDv7).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e90")]
    pub id: Uuid,
    /// The survey.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e80")]
    pub survey_id: Uuid,
    /// The customer.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Uuid,
    /// The interaction it follows.
    #[schema(example = json!(null))]
    pub interaction_id: Option<Uuid>,
    /// The purchase it follows.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e70")]
    pub purchase_id: Option<Uuid>,
    /// When the customer answered.
    #[schema(example = "2026-11-23T10:00:00Z")]
    pub submitted_at: DateTime<Utc>,
    #[schema(schema_with = answers_schema)]
    pub answers: Value,
    /// The answer to the survey's first NPS question.
    #[schema(example = 9)]
    pub nps: Option<i16>,
    /// `promoter` (9–10), `passive` (7–8) or `detractor` (0–6), from `nps`.
    pub nps_category: Option<NpsCategory>,
    /// The answer to the survey's first CSAT question.
    #[schema(example = 4)]
    pub csat: Option<i16>,
    /// The answer to the survey's first CES question.
    #[schema(example = json!(null))]
    pub ces: Option<i16>,
    /// Each answered `expectation_performance` attribute with its verdict, by key.
    pub verdicts: Vec<AttributeVerdict>,
    /// The customer's segments when they responded.
    pub segment: ResponseSegment,
    /// The follow-up interaction the response opened, by the survey's follow-up rule.
    #[schema(example = json!(null))]
    pub follow_up_interaction_id: Option<Uuid>,
    /// When it was recorded.
    #[schema(example = "2026-11-23T10:00:01Z")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[schema(example = "2026-11-23T10:00:01Z")]
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change; the `ETag` is this number in quotes.
    #[schema(example = 1)]
    pub version: i64,
}

crate::text_enum! {
    /// Where an NPS answer falls: `promoter` (9–10), `passive` (7–8), `detractor` (0–6).
    pub enum NpsCategory {
        Promoter = "promoter",
        Passive = "passive",
        Detractor = "detractor",
    }
}

crate::text_enum! {
    /// Order of a response list: `-submitted_at` newest first (the default) or
    /// `submitted_at`.
    pub enum ResponseSort {
        SubmittedAt = "submitted_at",
        SubmittedAtDesc = "-submitted_at",
    }
}

/// Filters of a response list, combined with AND. Score filters apply to the survey's first
/// question of that type; segments are the customer's when they responded.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResponsesQuery {
    /// Only this survey's responses. On `/v1/surveys/{id}/responses` it may be left out;
    /// given, it must be the survey of the path.
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e80")]
    pub survey_id: Option<Uuid>,
    /// Only this customer's responses.
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Option<Uuid>,
    /// Answered at or after (RFC 3339).
    #[param(example = "2026-11-01T00:00:00Z")]
    pub submitted_after: Option<DateTime<Utc>>,
    /// Answered before (RFC 3339).
    #[param(example = "2026-12-01T00:00:00Z")]
    pub submitted_before: Option<DateTime<Utc>>,
    /// NPS at least, 0 to 10.
    #[param(minimum = 0, maximum = 10, example = 0)]
    pub nps_min: Option<i16>,
    /// NPS at most, 0 to 10 (6: detractors); not below `nps_min`.
    #[param(minimum = 0, maximum = 10, example = 6)]
    pub nps_max: Option<i16>,
    /// CSAT at least, 1 to 5.
    #[param(minimum = 1, maximum = 5, example = 1)]
    pub csat_min: Option<i16>,
    /// CSAT at most, 1 to 5; not below `csat_min`.
    #[param(minimum = 1, maximum = 5, example = 2)]
    pub csat_max: Option<i16>,
    /// CES at least, 1 to 7.
    #[param(minimum = 1, maximum = 7, example = 5)]
    pub ces_min: Option<i16>,
    /// CES at most, 1 to 7; not below `ces_min`.
    #[param(minimum = 1, maximum = 7, example = 7)]
    pub ces_max: Option<i16>,
    /// Loyalty tier keys separated by commas, or `none` for customers in no tier.
    #[param(example = "gold,platinum")]
    pub loyalty_tier: Option<String>,
    /// Lifecycle stages separated by commas.
    #[param(example = "stable,commitment")]
    pub lifecycle_stage: Option<String>,
    /// Only urban or only rural customers.
    pub region_type: Option<RegionType>,
    /// `-submitted_at` (default) or `submitted_at`.
    #[param(inline)]
    pub sort: Option<ResponseSort>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

crate::text_enum! {
    /// How results are broken down: by `month` or ISO `week` (UTC, every period of the range
    /// listed, empty ones too), or by the customer's `tier`, `lifecycle_stage` or
    /// `region_type` when they responded.
    pub enum GroupBy {
        Month = "month",
        Week = "week",
        Tier = "tier",
        LifecycleStage = "lifecycle_stage",
        RegionType = "region_type",
    }
}

/// The range and breakdown of survey results.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ResultsQuery {
    /// First day counted (UTC), inclusive; the first response's day by default.
    #[param(example = "2026-01-01")]
    pub from: Option<NaiveDate>,
    /// Last day counted (UTC), inclusive, not before `from`; the last response's day by
    /// default.
    #[param(example = "2026-12-31")]
    pub to: Option<NaiveDate>,
    /// Break the results down by period or segment.
    #[param(inline)]
    pub group_by: Option<GroupBy>,
}

/// A count of answers with one value.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ValueCount {
    /// The value.
    #[schema(example = 9)]
    pub value: i16,
    /// How many answers gave it.
    #[schema(example = 42)]
    pub count: i64,
}

/// A count of answers naming one choice.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChoiceCount {
    /// The choice.
    #[schema(example = "email")]
    pub choice: String,
    /// How many answers named it.
    #[schema(example = 17)]
    pub count: i64,
    /// `count` / answers × 100, rounded to 2 decimals (a multi_choice answer can name
    /// several, so shares can add up to more than 100).
    #[schema(example = 40.48)]
    pub share: f64,
}

/// Net Promoter Score: % promoters (9–10) − % detractors (0–6), from −100 to 100. Shares
/// and score are rounded to 2 decimals, each from the counts.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct NpsResult {
    /// Answers counted.
    #[schema(example = 200)]
    pub n: i64,
    /// Answers of 9 or 10.
    #[schema(example = 110)]
    pub promoters: i64,
    /// Answers of 7 or 8.
    #[schema(example = 50)]
    pub passives: i64,
    /// Answers of 0 to 6.
    #[schema(example = 40)]
    pub detractors: i64,
    /// promoters / n × 100.
    #[schema(example = 55.0)]
    pub promoter_share: f64,
    /// passives / n × 100.
    #[schema(example = 25.0)]
    pub passive_share: f64,
    /// detractors / n × 100.
    #[schema(example = 20.0)]
    pub detractor_share: f64,
    /// (promoters − detractors) / n × 100.
    #[schema(example = 35.0)]
    pub score: f64,
}

/// Customer satisfaction: the % of answers that are 4 or 5, rounded to 2 decimals.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CsatResult {
    /// Answers counted.
    #[schema(example = 200)]
    pub n: i64,
    /// Answers of 4 or 5.
    #[schema(example = 160)]
    pub satisfied: i64,
    /// satisfied / n × 100.
    #[schema(example = 80.0)]
    pub score: f64,
}

/// Customer effort: the mean answer (1–7), rounded to 2 decimals.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CesResult {
    /// Answers counted.
    #[schema(example = 200)]
    pub n: i64,
    /// Σ answers / n.
    #[schema(example = 2.35)]
    pub score: f64,
}

/// Expectation against perceived performance for one service attribute.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GapResult {
    /// The attribute's Kano category.
    pub kano: KanoCategory,
    /// The attribute's weight in the satisfaction index.
    #[schema(example = 2.0)]
    pub weight: f64,
    /// Answers counted (each rates both).
    #[schema(example = 180)]
    pub n: i64,
    /// Mean expectation E, rounded to 2 decimals.
    #[schema(example = 4.1)]
    pub mean_expectation: f64,
    /// Mean perceived performance P, rounded to 2 decimals.
    #[schema(example = 3.8)]
    pub mean_performance: f64,
    /// Mean P − mean E (= Σ(P − E) / n), rounded to 2 decimals: above 0 satisfied, 0
    /// acceptable, below 0 dissatisfied.
    #[schema(example = -0.3)]
    pub gap: f64,
    /// How many answers gave each expectation, every point of the scale listed.
    pub expectation_distribution: Vec<ValueCount>,
    /// The answers by verdict: each respondent's P against their own E.
    pub verdicts: VerdictCounts,
}

/// The results of one question.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QuestionResult {
    /// The question's key.
    #[schema(example = "recommend")]
    pub key: String,
    /// Its type.
    #[serde(rename = "type")]
    pub question_type: QuestionType,
    /// Answers to it.
    #[schema(example = 200)]
    pub n: i64,
    /// Scored questions (all but choices and text): the mean answer (for
    /// `expectation_performance`: of P), rounded to 2 decimals; `null` without answers.
    #[schema(example = 8.1)]
    pub mean: Option<f64>,
    /// Scored questions: how many answers gave each value (for `expectation_performance`:
    /// each P), every point of the scale listed, zeros included.
    pub distribution: Vec<ValueCount>,
    /// `nps` questions with answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nps: Option<NpsResult>,
    /// `csat` questions with answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csat: Option<CsatResult>,
    /// `ces` questions with answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ces: Option<CesResult>,
    /// `expectation_performance` questions with answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap: Option<GapResult>,
    /// Choice questions: how many answers named each choice, in the question's order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<ChoiceCount>,
}

/// The gap over the attributes of one Kano category: weighted means (by attribute weight) of
/// the attributes' mean E, mean P and gap, over the attributes with answers.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct KanoResult {
    /// The category.
    pub category: KanoCategory,
    /// Attributes of this category with answers.
    #[schema(example = 2)]
    pub attributes: i64,
    /// Answers to them.
    #[schema(example = 360)]
    pub n: i64,
    /// Σ w·mean E / Σ w, rounded to 2 decimals.
    #[schema(example = 4.2)]
    pub mean_expectation: f64,
    /// Σ w·mean P / Σ w, rounded to 2 decimals.
    #[schema(example = 3.9)]
    pub mean_performance: f64,
    /// Σ w·(mean P − mean E) / Σ w, rounded to 2 decimals.
    #[schema(example = -0.3)]
    pub gap: f64,
}

/// The figures of a set of responses.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Metrics {
    /// Responses counted.
    #[schema(example = 200)]
    pub responses: i64,
    /// Satisfaction index, 0 to 100, over the `expectation_performance` attributes with
    /// answers: Σ wₐ · (mean Pₐ − 1) / (scale_maxₐ − 1) · 100 / Σ wₐ, where wₐ is the
    /// attribute's weight, mean Pₐ its mean perceived performance and 1..scale_maxₐ its
    /// scale; rounded to 2 decimals. `null` without such answers.
    #[schema(example = 71.25)]
    pub satisfaction_index: Option<f64>,
    /// The gap per Kano category with answered attributes, in the order must_be,
    /// performance, attractive.
    pub kano: Vec<KanoResult>,
    /// One entry per question, in the survey's order.
    pub questions: Vec<QuestionResult>,
}

/// The figures of one period or segment.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ResultGroup {
    /// The period (`2026-01` for a month, `2026-W02` for an ISO week) or the segment's value
    /// (`none` for customers without one).
    #[schema(example = "2026-01")]
    pub key: String,
    /// A period's first day counted (within the range).
    #[schema(example = "2026-01-01")]
    pub from: Option<NaiveDate>,
    /// A period's last day counted (within the range).
    #[schema(example = "2026-01-31")]
    pub to: Option<NaiveDate>,
    /// Its figures.
    #[serde(flatten)]
    pub metrics: Metrics,
}

/// A survey's results over a range of days, from the answers as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SurveyResults {
    /// The survey.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e80")]
    pub survey_id: Uuid,
    /// First day counted; `null` when there is nothing to count.
    #[schema(example = "2026-01-01")]
    pub from: Option<NaiveDate>,
    /// Last day counted; `null` when there is nothing to count.
    #[schema(example = "2026-12-31")]
    pub to: Option<NaiveDate>,
    /// The breakdown asked for.
    pub group_by: Option<GroupBy>,
    /// The figures over the whole range.
    #[serde(flatten)]
    pub overall: Metrics,
    /// With `group_by`: the figures per period (in time order) or per segment (largest
    /// first); empty otherwise.
    pub groups: Vec<ResultGroup>,
}

/// A survey response as a CSV row (for exports).
pub const RESPONSE_COLUMNS: &[crate::http::tabular::Column] = {
    use crate::http::tabular::{Kind::*, r};
    &[
        r("id", Text),
        r("survey_id", Text),
        r("customer_id", Text),
        r("interaction_id", Text),
        r("purchase_id", Text),
        r("submitted_at", Text),
        r("answers", Json),
        r("nps", Int),
        r("nps_category", Text),
        r("csat", Int),
        r("ces", Int),
        r("verdicts", Json),
        r("segment.loyalty_tier", Text),
        r("segment.lifecycle_stage", Text),
        r("segment.region_type", Text),
        r("follow_up_interaction_id", Text),
        r("created_at", Text),
        r("updated_at", Text),
        r("version", Int),
    ]
};
