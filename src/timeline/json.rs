//! The timeline's wire types.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::customers::json::LifecycleChange;
use crate::interactions::json::Interaction;
use crate::loyalty::json::TierChange;
use crate::purchases::json::Purchase;
use crate::surveys::json::SurveyResponse;

crate::text_enum! {
    /// What a timeline item is.
    pub enum ItemType {
        Interaction = "interaction",
        LifecycleChange = "lifecycle_change",
        Purchase = "purchase",
        SurveyResponse = "survey_response",
        TierChange = "tier_change",
    }
}

/// An item of the timeline: its type, time, and the object under the field its type names.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineItem {
    /// What the item is; the object is in the field of that name.
    #[serde(rename = "type")]
    pub item_type: ItemType,
    /// When it happened (for a pending follow-up: when it is due).
    #[schema(example = "2026-11-23T09:30:00Z")]
    pub at: DateTime<Utc>,
    /// Id of the object.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e60")]
    pub id: Uuid,
    /// The interaction, for `interaction` items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interaction: Option<Interaction>,
    /// The change of lifecycle stage, for `lifecycle_change` items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_change: Option<LifecycleChange>,
    /// The purchase, for `purchase` items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchase: Option<Purchase>,
    /// The survey response, for `survey_response` items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey_response: Option<SurveyResponse>,
    /// The change of loyalty tier, for `tier_change` items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier_change: Option<TierChange>,
}
