//! JSON merge patch (RFC 7396) fields: absent leaves a field alone, `null` clears it, a value
//! sets it. `Option<T>` cannot tell absent from `null`; [`Patch`] can.

use serde::{Deserialize, Deserializer};

use super::validation::Checks;

/// One field of a merge patch. Use with `#[serde(default)]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    /// The field was not in the patch.
    #[default]
    Absent,
    /// The field was `null`: clear it (or refuse, when the field cannot be empty).
    Null,
    /// The field's new value.
    Value(T),
}

impl<T> Patch<T> {
    pub fn is_absent(&self) -> bool {
        matches!(self, Self::Absent)
    }

    /// The new value for a field that cannot be cleared: `null` is refused.
    pub fn required(self) -> Result<Option<T>, String> {
        match self {
            Self::Absent => Ok(None),
            Self::Null => Err("cannot be null".to_owned()),
            Self::Value(value) => Ok(Some(value)),
        }
    }
}

/// An optional input value as a patch: `None` leaves the field alone.
impl<T> From<Option<T>> for Patch<T> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Patch::Absent, Patch::Value)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(deserializer).map(|value| match value {
            None => Patch::Null,
            Some(value) => Patch::Value(value),
        })
    }
}

/// Applies a nullable field of a patch to `current`: `null` clears it, a value is checked by
/// `parse` (its error recorded against `field`).
pub fn nullable<T, U>(
    checks: &mut Checks,
    field: &str,
    patch: Patch<T>,
    current: &mut Option<U>,
    parse: impl FnOnce(T) -> Result<U, String>,
) {
    match patch {
        Patch::Absent => {}
        Patch::Null => *current = None,
        Patch::Value(value) => {
            if let Some(value) = checks.check(field, parse(value)) {
                *current = Some(value);
            }
        }
    }
}

/// Applies a field that always has a value: `null` is refused.
pub fn required<T, U>(
    checks: &mut Checks,
    field: &str,
    patch: Patch<T>,
    current: &mut U,
    parse: impl FnOnce(T) -> Result<U, String>,
) {
    match patch {
        Patch::Absent => {}
        Patch::Null => checks.fail(field, "cannot be null"),
        Patch::Value(value) => {
            if let Some(value) = checks.check(field, parse(value)) {
                *current = value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct P {
        #[serde(default)]
        name: Patch<String>,
    }

    #[test]
    fn absent_null_and_value_differ() {
        let p: P = serde_json::from_str("{}").unwrap_or(P { name: Patch::Null });
        assert_eq!(p.name, Patch::Absent);
        let p: P = serde_json::from_str(r#"{"name":null}"#).unwrap_or(P {
            name: Patch::Absent,
        });
        assert_eq!(p.name, Patch::Null);
        let p: P = serde_json::from_str(r#"{"name":"x"}"#).unwrap_or(P {
            name: Patch::Absent,
        });
        assert_eq!(p.name, Patch::Value("x".to_owned()));
    }
}
