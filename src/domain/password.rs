/// A password acceptable for a new account: 12 to 256 characters, not only spaces.
/// Length is what makes a password strong; no composition rules (NIST SP 800-63B).
pub struct Password(String);

impl Password {
    pub fn parse(raw: String) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars < 12 {
            return Err("must be at least 12 characters".to_owned());
        }
        if chars > 256 {
            return Err("must be at most 256 characters".to_owned());
        }
        if raw.trim().is_empty() {
            return Err("must not be only spaces".to_owned());
        }
        Ok(Self(raw))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}
