//! The one check that a name may be put into SQL text bare.

use crate::StoreError;

/// Whether `name` can be put in SQL text as a bare identifier: `[A-Za-z_][A-Za-z0-9_]*`, at
/// most 128 bytes.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|next| next.is_ascii_alphanumeric() || next == '_')
        && name.len() <= 128
}

/// `name` as an identifier, or the error that names its `role`.
pub fn check_identifier(role: &'static str, name: &str) -> Result<(), StoreError> {
    if is_identifier(name) {
        Ok(())
    } else {
        Err(StoreError::InvalidIdentifier {
            role,
            name: name.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked_before_they_reach_sql_text() {
        assert!(is_identifier("audit_logs"));
        assert!(is_identifier("_x9"));
        assert!(!is_identifier("9x"));
        assert!(!is_identifier("a.b"));
        assert!(!is_identifier("x; DROP TABLE y"));
        assert!(!is_identifier("a`b"));
        assert!(!is_identifier(""));
        assert!(!is_identifier(&"a".repeat(129)));
        let error = check_identifier("table", "a-b").unwrap_err();
        assert_eq!(
            error.to_string(),
            "table \"a-b\" is not a valid ClickHouse identifier ([A-Za-z_][A-Za-z0-9_]*)"
        );
    }
}
