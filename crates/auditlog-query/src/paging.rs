//! The paging parameters of `GET /api/v2/audit`: Coder's `limit`/`offset` (and `after_id`,
//! which Coder parses and the audit endpoint ignores), plus our keyset `after` cursor.
//!
//! The rules and texts are Coder's `httpapi.ParsePagination`: each value is a
//! non-negative 32-bit integer read by Go's `strconv.ParseInt`, an absent or empty value is
//! the default, a repeated key is an error, and all problems are reported together in
//! `{"message":"Query parameters have invalid values.","validations":[...]}`.

use uuid::Uuid;

use crate::cursor::Cursor;
use crate::error::{Error, InvalidQuery, Validation};
use crate::go_quote::go_quote;
use crate::sql::Page;

/// Coder's page size when `limit` is 0 or absent.
pub const DEFAULT_LIMIT: u64 = 100;

// Defined here rather than in error.rs because it speaks of URL query parameters.
impl InvalidQuery {
    /// Rejects each of `keys` that is given more than once, in the words used for a
    /// repeated `limit`.
    pub fn reject_repeated(pairs: &[(String, String)], keys: &[&str]) -> Result<(), Self> {
        let validations: Vec<Validation> = keys
            .iter()
            .filter_map(|key| {
                let count = pairs.iter().filter(|(name, _)| name == key).count();
                (count > 1).then(|| repeated(key, count))
            })
            .collect();
        if validations.is_empty() {
            Ok(())
        } else {
            Err(Self::params(validations))
        }
    }
}

/// Coder's validation for a query parameter given `count` times.
fn repeated(key: &str, count: usize) -> Validation {
    Validation::new(
        key,
        format!(
            "Query param {} provided more than once, found {count} times. Only provide 1 instance of this query param.",
            go_quote(key)
        ),
    )
}

/// Valid paging parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows per page (0 already replaced by [`DEFAULT_LIMIT`]).
    pub limit: u64,
    /// Rows to skip.
    pub offset: u64,
    /// Continue after this cursor instead of skipping rows.
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// The page to ask the SQL builder for.
    pub fn page(&self) -> Page {
        match self.after {
            Some(cursor) => Page::After {
                limit: self.limit,
                cursor,
            },
            None => Page::Offset {
                limit: self.limit,
                offset: self.offset,
            },
        }
    }
}

/// Reads `limit`, `offset`, `after_id` and `after` from URL query pairs (decoded, in order).
///
/// A `limit` above `max_limit` is rejected (Coder has no upper bound; a page of millions
/// of rows would be held in memory, and `/api/v2/audit/export` streams those instead).
/// `after` together with a non-zero `offset` is rejected: a cursor already says where the
/// page starts.
///
/// ```
/// use auditlog_query::parse_page_params;
///
/// let pairs = vec![("limit".to_owned(), "0".to_owned())];
/// assert_eq!(parse_page_params(&pairs, 1000).unwrap().limit, 100);
///
/// let pairs = vec![("offset".to_owned(), "-1".to_owned())];
/// let invalid = parse_page_params(&pairs, 1000).unwrap_err();
/// assert_eq!(
///     serde_json::to_string(&invalid).unwrap(),
///     r#"{"message":"Query parameters have invalid values.","validations":[{"field":"offset","detail":"Query param \"offset\" must be a valid 32-bit positive integer: value is negative"}]}"#
/// );
/// ```
pub fn parse_page_params(
    pairs: &[(String, String)],
    max_limit: u64,
) -> Result<PageRequest, InvalidQuery> {
    let mut validations = Vec::new();
    if let Some(value) = single(pairs, "after_id", &mut validations)
        && Uuid::parse_str(value).is_err()
    {
        validations.push(Validation::new(
            "after_id",
            format!("Query param {} must be a valid uuid", go_quote("after_id")),
        ));
    }
    let limit = positive_int32(pairs, "limit", &mut validations);
    let offset = positive_int32(pairs, "offset", &mut validations);
    let after = match single(pairs, "after", &mut validations).map(Cursor::decode) {
        None => None,
        Some(Ok(cursor)) => Some(cursor),
        Some(Err(Error::InvalidCursor { reason })) => {
            validations.push(Validation::new(
                "after",
                format!(
                    "Query param {} must be a cursor this API returned: {reason}",
                    go_quote("after")
                ),
            ));
            None
        }
        Some(Err(other)) => {
            validations.push(Validation::new("after", other.to_string()));
            None
        }
    };
    let limit = match limit {
        0 => DEFAULT_LIMIT,
        limit => limit,
    };
    if limit > max_limit {
        validations.push(Validation::new(
            "limit",
            format!(
                "Query param {} must be at most {max_limit}; use /api/v2/audit/export for more",
                go_quote("limit")
            ),
        ));
    }
    if after.is_some() && offset > 0 {
        validations.push(Validation::new(
            "offset",
            format!(
                "Query param {} cannot be combined with {}",
                go_quote("offset"),
                go_quote("after")
            ),
        ));
    }
    if validations.is_empty() {
        Ok(PageRequest {
            limit,
            offset,
            after,
        })
    } else {
        Err(InvalidQuery::params(validations))
    }
}

/// The key's value, `None` when absent or empty; a repeated key is reported (Go's
/// `parseSingle`). Like Go's `vals.Get`, the emptiness check looks at the first value.
fn single<'p>(
    pairs: &'p [(String, String)],
    key: &str,
    validations: &mut Vec<Validation>,
) -> Option<&'p str> {
    let mut values = pairs
        .iter()
        .filter(|(name, _)| name == key)
        .map(|(_, value)| value.as_str());
    let first = values.next()?;
    if first.is_empty() {
        return None;
    }
    let count = 1 + values.count();
    if count > 1 {
        validations.push(repeated(key, count));
        return None;
    }
    Some(first)
}

fn positive_int32(
    pairs: &[(String, String)],
    key: &'static str,
    validations: &mut Vec<Validation>,
) -> u64 {
    let Some(value) = single(pairs, key, validations) else {
        return 0;
    };
    let reason = match go_parse_int32(value) {
        Ok(number) if number >= 0 => return number as u64,
        Ok(_) => "value is negative".to_owned(),
        Err(reason) => reason,
    };
    validations.push(Validation::new(
        key,
        format!(
            "Query param {} must be a valid 32-bit positive integer: {reason}",
            go_quote(key)
        ),
    ));
    0
}

/// Go's `strconv.ParseInt(text, 10, 32)`, with its error texts.
fn go_parse_int32(text: &str) -> Result<i64, String> {
    let syntax_error = || {
        format!(
            "strconv.ParseInt: parsing {}: invalid syntax",
            go_quote(text)
        )
    };
    let range_error = || {
        format!(
            "strconv.ParseInt: parsing {}: value out of range",
            go_quote(text)
        )
    };
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'+') => (false, &text[1..]),
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(syntax_error());
    }
    // Go reads digit by digit and reports overflow as soon as it happens, before looking at
    // the rest, so "99999999999x" is out of range, not a syntax error.
    let mut magnitude: u64 = 0;
    for byte in digits.bytes() {
        if !byte.is_ascii_digit() {
            return Err(syntax_error());
        }
        magnitude = match magnitude
            .checked_mul(10)
            .and_then(|value| value.checked_add(u64::from(byte - b'0')))
        {
            Some(value) => value,
            None => return Err(range_error()),
        };
    }
    let limit = if negative {
        i64::from(i32::MAX) as u64 + 1
    } else {
        i64::from(i32::MAX) as u64
    };
    if magnitude > limit {
        return Err(range_error());
    }
    let value = magnitude as i64;
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    fn details(items: &[(&str, &str)]) -> Vec<(String, String)> {
        parse_page_params(&pairs(items), 1000)
            .unwrap_err()
            .validations()
            .iter()
            .map(|validation| (validation.field.clone(), validation.detail.clone()))
            .collect()
    }

    #[test]
    fn defaults_and_zero_limit() {
        let request = parse_page_params(&pairs(&[]), 1000).unwrap();
        assert_eq!(
            request,
            PageRequest {
                limit: 100,
                offset: 0,
                after: None
            }
        );
        let request = parse_page_params(&pairs(&[("limit", ""), ("offset", "+7")]), 1000).unwrap();
        assert_eq!((request.limit, request.offset), (100, 7));
        assert_eq!(
            parse_page_params(&pairs(&[("limit", "25"), ("offset", "-0")]), 1000)
                .unwrap()
                .page(),
            Page::Offset {
                limit: 25,
                offset: 0
            }
        );
    }

    #[test]
    fn go_texts_for_bad_numbers() {
        assert_eq!(
            details(&[("limit", "abc"), ("offset", "2147483648")]),
            [
                (
                    "limit".to_owned(),
                    r#"Query param "limit" must be a valid 32-bit positive integer: strconv.ParseInt: parsing "abc": invalid syntax"#.to_owned()
                ),
                (
                    "offset".to_owned(),
                    r#"Query param "offset" must be a valid 32-bit positive integer: strconv.ParseInt: parsing "2147483648": value out of range"#.to_owned()
                ),
            ]
        );
        assert_eq!(
            details(&[("limit", " 5")])[0].1,
            r#"Query param "limit" must be a valid 32-bit positive integer: strconv.ParseInt: parsing " 5": invalid syntax"#
        );
        assert_eq!(
            details(&[("limit", "-2147483649")])[0].1,
            r#"Query param "limit" must be a valid 32-bit positive integer: strconv.ParseInt: parsing "-2147483649": value out of range"#
        );
        assert_eq!(
            details(&[("limit", "-2147483648")])[0].1,
            r#"Query param "limit" must be a valid 32-bit positive integer: value is negative"#
        );
        assert_eq!(
            details(&[("offset", "1"), ("offset", "2")])[0].1,
            r#"Query param "offset" provided more than once, found 2 times. Only provide 1 instance of this query param."#
        );
        assert_eq!(
            details(&[("after_id", "nope")])[0].1,
            r#"Query param "after_id" must be a valid uuid"#
        );
    }

    #[test]
    fn cursors_and_their_conflicts() {
        let cursor = Cursor::new(1, Uuid::from_u128(9));
        let text = cursor.encode();
        let request =
            parse_page_params(&pairs(&[("after", &text), ("limit", "10")]), 1000).unwrap();
        assert_eq!(request.page(), Page::After { limit: 10, cursor });
        assert_eq!(details(&[("after", &text), ("offset", "5")])[0].0, "offset");
        assert_eq!(
            details(&[("after", "zz")])[0].1,
            r#"Query param "after" must be a cursor this API returned: not URL-safe base64 without padding"#
        );
        assert_eq!(
            details(&[("limit", "1001")])[0].1,
            r#"Query param "limit" must be at most 1000; use /api/v2/audit/export for more"#
        );
    }
}
