/// An email address: trimmed, one `@`, a dotted domain, at most 254 characters.
/// Compared without regard to case (the database's unique index is on `lower(email)`).
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
pub struct Email(String);

crate::stored_text!(Email);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim();
        let bad = || Err("must be an email address such as ada@example.com".to_owned());
        if email.len() > 254 {
            return Err("must be at most 254 characters".to_owned());
        }
        let Some((local, domain)) = email.rsplit_once('@') else {
            return bad();
        };
        let domain_ok = domain.len() >= 3
            && domain.contains('.')
            && !domain.starts_with(['.', '-'])
            && !domain.ends_with(['.', '-'])
            && !domain.contains("..")
            && domain
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && !local.chars().any(|c| c.is_whitespace() || c.is_control());
        if domain_ok && local_ok {
            Ok(Self(email.to_owned()))
        } else {
            bad()
        }
    }

    /// The address in lower case: how the database compares addresses.
    pub fn lowercase(&self) -> String {
        self.0.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn accepts_and_refuses() {
        for ok in [
            "ada@example.com",
            " Ada.Lovelace+crm@mail.example.co.uk ",
            "é@exämple.de",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@ex..com",
            "ada@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Email::parse(" a@b.co ").map(Email::into_inner),
            Ok("a@b.co".to_owned())
        );
    }
}
