//! The checks behind the filter and cursor fuzz targets (`fuzz/`), shared with the corpus
//! replay in `tests/integration/fuzz_corpus.rs` and the property tests, so that `make test`
//! runs exactly what the fuzzer runs, without nightly or cargo-fuzz.
//!
//! Each check panics when a property fails, which is how libFuzzer learns of a finding.

use std::collections::HashMap;

use uuid::Uuid;

use crate::{
    Actor, AuditFilter, Cursor, Error, OrganizationRef, Page, ResolvedFilter, Resolver, SqlBuilder,
};

/// Parses `query` as the API does: it parses or fails with Coder's validations (a tokenizer
/// error alone), never panics; a parsed filter has no empty value, round-trips through its
/// canonical `key:"value"` text, and resolves into SQL that holds its values as parameters.
pub fn check_filter(query: &str) {
    let filter = match AuditFilter::parse(query) {
        Ok(filter) => filter,
        Err(Error::InvalidQuery(invalid)) => {
            let validations = invalid.validations();
            assert!(!validations.is_empty(), "an invalid query names no reason");
            // Field "q" alone does not tell: `q:x` is an unknown key named "q".
            let tokenizer_error = |validation: &crate::Validation| {
                validation.field == "q" && validation.detail.starts_with("Query element ")
            };
            if validations.iter().any(tokenizer_error) {
                assert_eq!(validations.len(), 1, "a tokenizer error comes alone");
            }
            return;
        }
        Err(other) => panic!("parsing failed with a non-validation error: {other:?}"),
    };
    let entries = filter.entries();
    for (key, value) in &entries {
        assert!(!value.is_empty(), "{key} has an empty value");
    }
    // The language has no escape for '"' inside a quoted value, so such values cannot be
    // written back.
    if entries.iter().all(|(_, value)| !value.contains('"')) {
        let canonical: Vec<String> = entries
            .iter()
            .map(|(key, value)| format!("{key}:\"{value}\""))
            .collect();
        let canonical = canonical.join(" ");
        assert_eq!(
            AuditFilter::parse(&canonical),
            Ok(filter.clone()),
            "the canonical text {canonical:?} parses differently"
        );
    }
    check_sql_of(&filter);
}

/// Resolves `filter` for a fixed caller and organization and checks that the values reach
/// the SQL only as parameters: the text is the same with every string value replaced.
fn check_sql_of(filter: &AuditFilter) {
    let organizations: HashMap<String, Uuid> = HashMap::from([("acme".to_owned(), Uuid::nil())]);
    let resolver = Resolver::new()
        .with_caller_username("alice")
        .with_organizations(&organizations);
    let resolved = match filter.resolve(&resolver) {
        Ok(resolved) => resolved,
        Err(error) => {
            assert!(
                matches!(&filter.organization, Some(OrganizationRef::Name(name)) if name != "acme"),
                "only an unknown organization fails to resolve, not {filter:?}: {error:?}"
            );
            return;
        }
    };
    let benign = ResolvedFilter {
        resource_target: resolved.resource_target.as_ref().map(|_| "x".to_owned()),
        email: resolved.email.as_ref().map(|_| "x".to_owned()),
        actor: resolved.actor.as_ref().map(|actor| match actor {
            Actor::Username(_) => Actor::Username("x".to_owned()),
            Actor::UserId(_) => Actor::UserId(Uuid::nil()),
        }),
        ..resolved.clone()
    };
    let builder = SqlBuilder::try_new("auditlog", "audit_logs")
        .expect("fixed names are valid")
        .with_organization_scope([Uuid::from_u128(2)]);
    let page = Page::Offset {
        limit: 25,
        offset: 0,
    };
    assert_eq!(
        builder.page(&resolved, &page).text,
        builder.page(&benign, &page).text,
        "a value changed the SQL text of {filter:?}"
    );
    assert_eq!(
        builder.count_capped(&resolved).text,
        builder.count_capped(&benign).text
    );
    assert_eq!(
        builder.count_exact(&resolved).text,
        builder.count_exact(&benign).text
    );
}

/// Decodes `text` as an `after=` cursor: it decodes or fails, never panics, and a decoded
/// cursor is canonical (encodes back to exactly `text`). Any 24 bytes also make a cursor
/// that round-trips.
pub fn check_cursor(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(cursor) = Cursor::decode(text)
    {
        assert_eq!(cursor.encode(), text, "a cursor has two spellings");
    }
    if let (Some(time), Some(id)) = (data.get(..8), data.get(8..24)) {
        let cursor = Cursor::new(
            i64::from_be_bytes(time.try_into().expect("8 bytes")),
            Uuid::from_slice(id).expect("16 bytes"),
        );
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_filters_pass() {
        for query in [
            "",
            "action:create workspace",
            "username:me organization:acme",
            "organization:nowhere",
            "resource_target:\"my box\" email:A@B.C date_from:2026-01-01",
            "username:",
            "a:b:c",
        ] {
            check_filter(query);
        }
    }

    #[test]
    fn real_cursors_pass() {
        check_cursor(
            Cursor::new(1_767_225_600_000_000, Uuid::from_u128(7))
                .encode()
                .as_bytes(),
        );
        check_cursor(b"not a cursor");
        check_cursor(&[0xFF; 30]);
    }
}
