//! Every grammar rule, value rule and error text of the reference (section 1), as a table.
//!
//! Each row is a query and either its `--parse` view or the exact validations, in order.

use auditlog_query::{AuditFilter, Error};

enum Expected {
    /// The `--parse` JSON view.
    Parsed(&'static str),
    /// `(field, detail)` pairs, in the order reported.
    Invalid(&'static [(&'static str, &'static str)]),
}
use Expected::{Invalid, Parsed};

fn check(query: &str, expected: &Expected) {
    let outcome = AuditFilter::parse(query);
    match (expected, outcome) {
        (Parsed(json), Ok(filter)) => {
            assert_eq!(
                serde_json::to_string(&filter).unwrap(),
                *json,
                "query {query:?}"
            );
        }
        (Invalid(validations), Err(Error::InvalidQuery(invalid))) => {
            let actual: Vec<(&str, &str)> = invalid
                .validations()
                .iter()
                .map(|validation| (validation.field.as_str(), validation.detail.as_str()))
                .collect();
            assert_eq!(actual, *validations, "query {query:?}");
        }
        (_, outcome) => panic!("query {query:?}: unexpected outcome {outcome:?}"),
    }
}

fn check_all(cases: &[(&str, Expected)]) {
    for (query, expected) in cases {
        check(query, expected);
    }
}

#[test]
fn tokenizing() {
    check_all(&[
        // A blank query is no filter; runs of spaces vanish.
        ("", Parsed("{}")),
        ("     ", Parsed("{}")),
        (
            "  action:delete    username:bob  ",
            Parsed(r#"{"action":"delete","username":"bob"}"#),
        ),
        // The whole query is lowercased first, keys and values.
        (
            "Action:DELETE UserName:Alice",
            Parsed(r#"{"action":"delete","username":"alice"}"#),
        ),
        // Quotes keep spaces inside one token and are trimmed from each part.
        (
            r#"resource_target:"my workspace""#,
            Parsed(r#"{"resource_target":"my workspace"}"#),
        ),
        (
            r#"resource_target:"a:b""#,
            Parsed(r#"{"resource_target":"a:b"}"#),
        ),
        (r#""username":alice"#, Parsed(r#"{"username":"alice"}"#)),
        // Go's strings.Trim removes every leading and trailing quote.
        (r#"username:""alice"""#, Parsed(r#"{"username":"alice"}"#)),
        // A quote inside a value stays.
        (r#"username:a"b"#, Parsed(r#"{"username":"a\"b"}"#)),
        // An unbalanced quote runs to the end of the string.
        (
            r#"username:"john doe action:delete"#,
            Parsed(r#"{"username":"john doe action:delete"}"#),
        ),
        // Coder splits with Go's FieldsFunc, which drops empty fields: `a::b` has 2 parts.
        ("username::alice", Parsed(r#"{"username":"alice"}"#)),
        // Non-ASCII text is lowercased like Go's strings.ToLower.
        ("username:ÄLICE", Parsed(r#"{"username":"älice"}"#)),
    ]);
}

#[test]
fn bare_words_are_the_resource_type() {
    check_all(&[
        ("workspace", Parsed(r#"{"resource_type":"workspace"}"#)),
        (
            "WORKSPACE action:create",
            Parsed(r#"{"resource_type":"workspace","action":"create"}"#),
        ),
        // Bare words join into one value with single spaces.
        (
            "workspace   template",
            Invalid(&[(
                "resource_type",
                r#"Query param "resource_type" has invalid value: "workspace template" is not a valid value"#,
            )]),
        ),
        // The bare-word element keeps its quotes.
        (
            r#""workspace""#,
            Invalid(&[(
                "resource_type",
                r#"Query param "resource_type" has invalid value: "\"workspace\"" is not a valid value"#,
            )]),
        ),
        // A ':' only inside quotes makes a key:value token with one part: it goes to the
        // default key unstripped (Coder's searchTerms).
        (
            r#""a:b""#,
            Invalid(&[(
                "resource_type",
                r#"Query param "resource_type" has invalid value: "\"a:b\"" is not a valid value"#,
            )]),
        ),
        // A bare word plus resource_type: is a key given twice.
        (
            "workspace resource_type:template",
            Invalid(&[(
                "resource_type",
                r#"Query param "resource_type" provided more than once, found 2 times. Only provide 1 instance of this query param."#,
            )]),
        ),
    ]);
}

#[test]
fn tokenizer_errors_stop_parsing_alone() {
    check_all(&[
        (
            "username:",
            Invalid(&[(
                "q",
                r#"Query element "username:" cannot start or end with ':'"#,
            )]),
        ),
        (
            ":alice",
            Invalid(&[(
                "q",
                r#"Query element ":alice" cannot start or end with ':'"#,
            )]),
        ),
        (
            ":",
            Invalid(&[("q", r#"Query element ":" cannot start or end with ':'"#)]),
        ),
        (
            "a:b:c",
            Invalid(&[("q", r#"Query element "a:b:c" can only contain 1 ':'"#)]),
        ),
        // The URN form needs quotes, or its colons split it.
        (
            "resource_id:urn:uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            Invalid(&[(
                "q",
                r#"Query element "resource_id:urn:uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" can only contain 1 ':'"#,
            )]),
        ),
        // Only the first tokenizer error is reported, and no value errors with it.
        (
            "action:explode a:b:c username:",
            Invalid(&[("q", r#"Query element "a:b:c" can only contain 1 ':'"#)]),
        ),
        // Elements are checked in order: key:value tokens first, the bare words last.
        (
            "foo a:b:c",
            Invalid(&[("q", r#"Query element "a:b:c" can only contain 1 ':'"#)]),
        ),
        // The element in the error is quoted like Go's %q.
        (
            r#"a\b:"c:"#,
            Invalid(&[(
                "q",
                r#"Query element "a\\b:\"c:" cannot start or end with ':'"#,
            )]),
        ),
    ]);
}

#[test]
fn empty_missing_repeated_and_unknown_keys() {
    check_all(&[
        // An empty value means no filter on that key.
        (r#"username:"""#, Parsed("{}")),
        (
            r#"username:"" action:create"#,
            Parsed(r#"{"action":"create"}"#),
        ),
        (
            "action:create action:delete",
            Invalid(&[(
                "action",
                r#"Query param "action" provided more than once, found 2 times. Only provide 1 instance of this query param."#,
            )]),
        ),
        // The reference: a key given twice is an error, even when its first value is empty
        // (Coder's code would stop at the empty first value and accept this).
        (
            r#"username:"" username:bob username:eve"#,
            Invalid(&[(
                "username",
                r#"Query param "username" provided more than once, found 3 times. Only provide 1 instance of this query param."#,
            )]),
        ),
        // A repeated key's values are not checked.
        (
            "action:explode action:implode",
            Invalid(&[(
                "action",
                r#"Query param "action" provided more than once, found 2 times. Only provide 1 instance of this query param."#,
            )]),
        ),
        (
            "foo:bar",
            Invalid(&[("foo", r#""foo" is not a valid query param"#)]),
        ),
        // Unknown keys come last, in order of first appearance; a repeated one once.
        (
            "zeta:1 action:explode alpha:2 zeta:3",
            Invalid(&[
                (
                    "action",
                    r#"Query param "action" has invalid value: "explode" is not a valid value"#,
                ),
                ("zeta", r#""zeta" is not a valid query param"#),
                ("alpha", r#""alpha" is not a valid query param"#),
            ]),
        ),
        // Unknown keys are quoted like Go's %q, and an empty key is a key too.
        (
            r#"a"b":1 "":2"#,
            Invalid(&[
                (r#"a"b"#, r#""a\"b" is not a valid query param"#),
                ("", r#""" is not a valid query param"#),
            ]),
        ),
        // Unknown keys are reported even with an empty value.
        (
            r#"foo:"""#,
            Invalid(&[("foo", r#""foo" is not a valid query param"#)]),
        ),
    ]);
}

#[test]
fn uuid_values() {
    let canonical = r#"{"resource_id":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}"#;
    check_all(&[
        (
            "resource_id:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            Parsed(canonical),
        ),
        (
            "resource_id:A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            Parsed(canonical),
        ),
        (
            "resource_id:{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            Parsed(canonical),
        ),
        (
            r#"resource_id:"URN:UUID:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11""#,
            Parsed(canonical),
        ),
        (
            "resource_id:a0eebc999c0b4ef8bb6d6bb9bd380a11",
            Parsed(canonical),
        ),
        (
            "request_id:A0EEBC999C0B4EF8BB6D6BB9BD380A11",
            Parsed(r#"{"request_id":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}"#),
        ),
    ]);
    let invalid_resource_id: &[(&str, &str)] = &[(
        "resource_id",
        r#"Query param "resource_id" must be a valid uuid"#,
    )];
    for bad in [
        "x",
        // Go's uuid.Parse skips the first of 38 characters and never reads the last; the
        // reference's form is braces only.
        "(a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11)",
        "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",
        "a0eebc999c0b-4ef8-bb6d-6bb9bd380a11-",
        "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "a0eebc999c0b4ef8bb6d6bb9bd380a1",
        "+0eebc999c0b4ef8bb6d6bb9bd380a11",
        "{a0eebc999c0b4ef8bb6d6bb9bd380a11}",
        "a0eebc99_9c0b_4ef8_bb6d_6bb9bd380a11",
        "\"urn:uuid:{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}\"",
        "\"urn:uid:aa0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1é",
    ] {
        check(&format!("resource_id:{bad}"), &Invalid(invalid_resource_id));
    }
    check(
        "request_id:nope",
        &Invalid(&[(
            "request_id",
            r#"Query param "request_id" must be a valid uuid"#,
        )]),
    );
}

#[test]
fn enum_values() {
    check_all(&[
        (
            "resource_type:workspace_build action:request_password_reset build_reason:ssh_connection",
            Parsed(
                r#"{"resource_type":"workspace_build","action":"request_password_reset","build_reason":"ssh_connection"}"#,
            ),
        ),
        (
            "resource_type:idp_sync_settings_role action:disconnect build_reason:task_resume",
            Parsed(
                r#"{"resource_type":"idp_sync_settings_role","action":"disconnect","build_reason":"task_resume"}"#,
            ),
        ),
        (
            "action:foo",
            Invalid(&[(
                "action",
                r#"Query param "action" has invalid value: "foo" is not a valid value"#,
            )]),
        ),
        // No comma lists.
        (
            "action:create,delete",
            Invalid(&[(
                "action",
                r#"Query param "action" has invalid value: "create,delete" is not a valid value"#,
            )]),
        ),
        (
            "build_reason:manual",
            Invalid(&[(
                "build_reason",
                r#"Query param "build_reason" has invalid value: "manual" is not a valid value"#,
            )]),
        ),
        (
            "resource_type:token",
            Invalid(&[(
                "resource_type",
                r#"Query param "resource_type" has invalid value: "token" is not a valid value"#,
            )]),
        ),
        // Values in error texts are quoted like Go's %q.
        (
            r#"action:a"b"#,
            Invalid(&[(
                "action",
                r#"Query param "action" has invalid value: "a\"b" is not a valid value"#,
            )]),
        ),
        (
            "action:ÄCTION\u{200b}",
            Invalid(&[(
                "action",
                r#"Query param "action" has invalid value: "äction\u200b" is not a valid value"#,
            )]),
        ),
    ]);
}

#[test]
fn date_values() {
    check_all(&[
        (
            "date_from:2026-01-01 date_to:2026-01-31",
            Parsed(r#"{"date_from":"2026-01-01","date_to":"2026-01-31"}"#),
        ),
        ("date_to:2024-02-29", Parsed(r#"{"date_to":"2024-02-29"}"#)),
        (
            "date_from:2026-13-01",
            Invalid(&[(
                "date_from",
                r#"Query param "date_from" must be a valid date format (2006-01-02): parsing time "2026-13-01": month out of range"#,
            )]),
        ),
        (
            "date_from:x",
            Invalid(&[(
                "date_from",
                r#"Query param "date_from" must be a valid date format (2006-01-02): parsing time "x" as "2006-01-02": cannot parse "x" as "2006""#,
            )]),
        ),
        (
            "date_to:2026-02-30",
            Invalid(&[(
                "date_to",
                r#"Query param "date_to" must be a valid date format (2006-01-02): parsing time "2026-02-30": day out of range"#,
            )]),
        ),
        (
            "date_to:2026-1-05",
            Invalid(&[(
                "date_to",
                r#"Query param "date_to" must be a valid date format (2006-01-02): parsing time "2026-1-05" as "2006-01-02": cannot parse "1-05" as "01""#,
            )]),
        ),
        (
            "date_from:26-01-05",
            Invalid(&[(
                "date_from",
                r#"Query param "date_from" must be a valid date format (2006-01-02): parsing time "26-01-05" as "2006-01-02": cannot parse "26-01-05" as "2006""#,
            )]),
        ),
        (
            r#"date_from:"2026-01-05t10:00:00z""#,
            Invalid(&[(
                "date_from",
                r#"Query param "date_from" must be a valid date format (2006-01-02): parsing time "2026-01-05t10:00:00z": extra text: "t10:00:00z""#,
            )]),
        ),
        (
            "date_from:2026/01/05",
            Invalid(&[(
                "date_from",
                r#"Query param "date_from" must be a valid date format (2006-01-02): parsing time "2026/01/05" as "2006-01-02": cannot parse "/01/05" as "-""#,
            )]),
        ),
    ]);
}

#[test]
fn organization_and_string_values() {
    check_all(&[
        (
            "organization:A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            Parsed(r#"{"organization":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}"#),
        ),
        // A name is kept unresolved; whether it exists is for resolution to say.
        ("organization:Acme", Parsed(r#"{"organization":"acme"}"#)),
        // Strings never fail, and are lowercased like the rest of the query.
        (
            r#"email:Alice@Example.COM resource_target:"My WS" username:me"#,
            Parsed(r#"{"resource_target":"my ws","username":"me","email":"alice@example.com"}"#),
        ),
        (
            r#"resource_target:"'; DROP TABLE x; --""#,
            Parsed(r#"{"resource_target":"'; drop table x; --"}"#),
        ),
    ]);
}

#[test]
fn value_errors_accumulate_in_coder_order() {
    // Coder's parser requests keys in this order, so it reports them in this order too,
    // whatever order the query gives them in; unknown keys follow in query order.
    check(
        "foo:1 build_reason:b action:a resource_type:r organization:acme date_to:t date_from:f \
         email:e username:u resource_target:t resource_id:x request_id:y action:again bar:2",
        &Invalid(&[
            (
                "request_id",
                r#"Query param "request_id" must be a valid uuid"#,
            ),
            (
                "resource_id",
                r#"Query param "resource_id" must be a valid uuid"#,
            ),
            (
                "date_from",
                r#"Query param "date_from" must be a valid date format (2006-01-02): parsing time "f" as "2006-01-02": cannot parse "f" as "2006""#,
            ),
            (
                "date_to",
                r#"Query param "date_to" must be a valid date format (2006-01-02): parsing time "t" as "2006-01-02": cannot parse "t" as "2006""#,
            ),
            (
                "resource_type",
                r#"Query param "resource_type" has invalid value: "r" is not a valid value"#,
            ),
            (
                "action",
                r#"Query param "action" provided more than once, found 2 times. Only provide 1 instance of this query param."#,
            ),
            (
                "build_reason",
                r#"Query param "build_reason" has invalid value: "b" is not a valid value"#,
            ),
            ("foo", r#""foo" is not a valid query param"#),
            ("bar", r#""bar" is not a valid query param"#),
        ]),
    );
}

#[test]
fn the_400_body_is_coders() {
    let Err(Error::InvalidQuery(invalid)) = AuditFilter::parse("username:") else {
        panic!("expected an invalid query");
    };
    assert_eq!(
        serde_json::to_value(&invalid).unwrap(),
        serde_json::json!({
            "message": "Invalid audit search query.",
            "validations": [
                {"field": "q", "detail": "Query element \"username:\" cannot start or end with ':'"}
            ]
        })
    );
}
