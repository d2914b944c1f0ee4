//! The data-subject access document as the API shows it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::customers::json::{Customer, LifecycleChange};

/// Everything Rapport holds on one person (data-subject access).
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerExport {
    /// When this document was made.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub exported_at: DateTime<Utc>,
    /// The record, unmasked.
    pub customer: Customer,
    /// Every change of lifecycle stage, oldest first.
    pub lifecycle: Vec<LifecycleChange>,
    /// Every interaction with the customer (deleted ones too), oldest first.
    pub interactions: Vec<crate::interactions::json::Interaction>,
    /// Every purchase of the customer, oldest first.
    pub purchases: Vec<crate::purchases::json::Purchase>,
    /// The customer's loyalty points ledger, oldest first.
    pub points: Vec<crate::loyalty::json::LedgerEntry>,
    /// The customer's loyalty tier history, oldest first.
    pub tier_history: Vec<crate::loyalty::json::TierChange>,
    /// The customer's survey responses, oldest first.
    pub survey_responses: Vec<crate::surveys::json::SurveyResponse>,
    /// The customer's sales opportunities (deleted ones too), oldest first.
    pub opportunities: Vec<crate::pipeline::json::Opportunity>,
    /// The advances recorded on those opportunities (销售进展: demos, meetings with the
    /// decision maker, trials…), deleted opportunities' too, oldest first.
    pub opportunity_advances: Vec<crate::pipeline::json::Advance>,
    /// A person's links to the organizations they work at, current and past, oldest first.
    pub organizations: Vec<crate::contacts::json::Contact>,
    /// Every recorded change to the record.
    pub audit: Vec<crate::audit::AuditEvent>,
}
