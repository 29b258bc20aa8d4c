//! Properties over arbitrary input: the parser never panics, its view round-trips, and no
//! value changes the SQL text.

use auditlog_query::fuzz_checks::check_filter;
use auditlog_query::{Actor, Cursor, Page, ResolvedFilter, Resolver, SqlBuilder};
use proptest::prelude::*;
use uuid::Uuid;

/// Pieces that exercise the grammar: keys (known and not), separators, quotes and values of
/// every kind, including non-ASCII text.
fn query_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("resource_type".to_owned()),
        Just("action".to_owned()),
        Just("username".to_owned()),
        Just("organization".to_owned()),
        Just("date_from".to_owned()),
        Just("resource_id".to_owned()),
        Just("build_reason".to_owned()),
        Just("Foo".to_owned()),
        Just(":".to_owned()),
        Just("::".to_owned()),
        Just("\"".to_owned()),
        Just(" ".to_owned()),
        Just("  ".to_owned()),
        Just("workspace".to_owned()),
        Just("create".to_owned()),
        Just("me".to_owned()),
        Just("2026-02-29".to_owned()),
        Just("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".to_owned()),
        Just("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}".to_owned()),
        Just("İΣß🦀\u{200b}\u{0}".to_owned()),
        "\\PC{0,6}",
        ".{0,4}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(query_piece(), 0..12).prop_map(|pieces| pieces.concat()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The filter fuzz target's checks: no panic, Coder's validations, a canonical text that
    /// parses back to the same filter, SQL whose text no value changes.
    #[test]
    fn parsing_never_panics_and_the_parse_view_round_trips(query in query()) {
        check_filter(&query);
        let _ = Resolver::new().parse_and_resolve(&query);
    }

    #[test]
    fn no_value_changes_the_sql_text(
        text in any::<String>(),
        id in any::<u128>(),
        time_micros in any::<i64>(),
        limit in any::<u64>(),
        offset in any::<u64>(),
    ) {
        let with_strings = |value: &str| ResolvedFilter {
            resource_target: Some(value.to_owned()),
            actor: Some(Actor::Username(value.to_owned())),
            email: Some(value.to_owned()),
            resource_id: Some(Uuid::from_u128(id)),
            ..ResolvedFilter::default()
        };
        let builder = SqlBuilder::try_new("auditlog", "audit_logs")
            .unwrap()
            .with_organization_scope([Uuid::from_u128(id)]);
        let cursor = Cursor::new(time_micros, Uuid::from_u128(id));
        let benign = with_strings("x");
        let arbitrary = with_strings(&text);
        let fixed_cursor = Cursor::new(0, Uuid::nil());
        let pairs = [
            (Page::Offset { limit, offset }, Page::Offset { limit: 1, offset: 1 }),
            (Page::After { limit, cursor }, Page::After { limit: 1, cursor: fixed_cursor }),
        ];
        for (arbitrary_page, benign_page) in pairs {
            prop_assert_eq!(
                builder.page(&arbitrary, &arbitrary_page).text,
                builder.page(&benign, &benign_page).text
            );
        }
        prop_assert_eq!(builder.count_capped(&arbitrary).text, builder.count_capped(&benign).text);
        prop_assert_eq!(builder.count_exact(&arbitrary).text, builder.count_exact(&benign).text);
    }
}
