//! Free text fields: trimmed, bounded, without control characters.

fn clean(raw: &str, max: usize) -> Result<String, String> {
    let text = raw.trim();
    if text.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("must not contain control characters".to_owned());
    }
    Ok(text.to_owned())
}

/// A required text: not blank once trimmed, at most `max` characters.
pub fn required_text(raw: &str, max: usize) -> Result<String, String> {
    let text = clean(raw, max)?;
    if text.is_empty() {
        return Err("must not be blank".to_owned());
    }
    Ok(text)
}

/// An optional text: blank becomes `None`.
pub fn optional_text(raw: Option<&str>, max: usize) -> Result<Option<String>, String> {
    match raw {
        None => Ok(None),
        Some(raw) => clean(raw, max).map(|t| (!t.is_empty()).then_some(t)),
    }
}

/// A text a merge patch sets: blank is refused (`null` is how a client clears it).
pub fn clearable_text(max: usize) -> impl FnOnce(String) -> Result<String, String> {
    move |raw| {
        optional_text(Some(&raw), max)?
            .ok_or_else(|| "must not be blank; send null to clear".to_owned())
    }
}
