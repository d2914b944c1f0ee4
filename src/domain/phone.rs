use phonenumber::{Mode, country};

/// A phone number in E.164 (`+4930123456`).
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Hash,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct Phone(String);

crate::stored_text!(Phone);

impl Phone {
    /// Validates a phone number and normalises it to E.164. A number without a `+` is read
    /// as national to `country` (the customer's address country), when known.
    pub fn parse(raw: &str, country: Option<&str>) -> Result<Self, String> {
        normalise_phone(raw, country).map(Self)
    }
}

/// Validates a phone number and normalises it to E.164 (`+4930123456`). A number without a
/// `+` is read as national to `country` (the customer's address country), when known.
pub fn normalise_phone(raw: &str, country: Option<&str>) -> Result<String, String> {
    let text = raw.trim();
    if text.is_empty() || text.len() > 40 {
        return Err("must be a phone number such as +49 30 1234567".to_owned());
    }
    let international = text.starts_with('+') || text.starts_with("00");
    let region = match country.map(str::parse::<country::Id>) {
        Some(Ok(id)) => Some(id),
        _ if international => None,
        _ => {
            return Err(
                "must start with + and the country code, or the address must name its country"
                    .to_owned(),
            );
        }
    };
    let text = match text.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => text.to_owned(),
    };
    let number =
        phonenumber::parse(region, &text).map_err(|_| "is not a phone number".to_owned())?;
    if !phonenumber::is_valid(&number) {
        return Err("is not a valid phone number for its country".to_owned());
    }
    Ok(number.format().mode(Mode::E164).to_string())
}

#[cfg(test)]
mod tests {
    use super::normalise_phone;

    #[test]
    fn normalises_to_e164() {
        assert_eq!(
            normalise_phone("+49 30 12345678", None).as_deref(),
            Ok("+493012345678")
        );
        assert_eq!(
            normalise_phone("030 12345678", Some("DE")).as_deref(),
            Ok("+493012345678")
        );
        assert_eq!(
            normalise_phone("0049 30 12345678", None).as_deref(),
            Ok("+493012345678")
        );
        assert_eq!(
            normalise_phone("(202) 555-0123", Some("US")).as_deref(),
            Ok("+12025550123")
        );
        assert!(normalise_phone("030 12345678", None).is_err());
        assert!(normalise_phone("+49 1", None).is_err());
        assert!(normalise_phone("call me", Some("DE")).is_err());
    }
}
