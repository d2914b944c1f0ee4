//! Service tokens' rules, without database or HTTP.

use super::json::MAX_REASON;
use crate::http::error::ApiError;

/// A revocation's reason as kept: trimmed, none when blank; `422` on `reason` when too long.
pub fn reason(given: Option<&str>) -> Result<Option<&str>, ApiError> {
    let reason = given.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON) {
        return Err(ApiError::invalid_field(
            "reason",
            format!("must be at most {MAX_REASON} characters"),
        ));
    }
    Ok(reason)
}
