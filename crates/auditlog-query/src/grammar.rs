//! The tokenizer of Coder's filter language: query text → ordered `key → values` terms.
//!
//! ```text
//!  "Action:Delete  workspace"            the query, as typed
//!        │ lowercase (Go's strings.ToLower)
//!        ▼
//!  "action:delete  workspace"
//!        │ split on spaces outside double quotes; empty fields vanish
//!        ▼
//!  ["action:delete", "workspace"]        tokens, quotes kept
//!        │ tokens with ':' are elements; the other tokens join into one last element
//!        ▼
//!  ["action:delete", "workspace"]        elements
//!        │ split each on ':' outside quotes, trim '"' from each part
//!        ▼
//!  action → ["delete"], resource_type → ["workspace"]
//! ```
//!
//! Every step mirrors Coder's `searchTerms` (`coderd/searchquery/search.go`), including its
//! use of Go's `strings.FieldsFunc`, so that the same text yields the same terms and the same
//! first error. A tokenizer error ends parsing at once and is reported alone, on field `q`.

use crate::error::Validation;
use crate::go_quote::go_quote;

/// The key that receives words given without a key (Coder's `defaultKey` for audit logs).
pub(crate) const DEFAULT_KEY: &str = "resource_type";

/// The field name of tokenizer errors, which concern the whole `q` parameter.
pub(crate) const QUERY_FIELD: &str = "q";

/// Query terms in order of first appearance: the equivalent of Go's `url.Values`, ordered so
/// that errors about unknown keys come out in a stable order (Go's map order is random).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Terms {
    entries: Vec<(String, Vec<String>)>,
}

impl Terms {
    fn add(&mut self, key: &str, value: &str) {
        match self.entries.iter_mut().find(|(known, _)| known == key) {
            Some((_, values)) => values.push(value.to_owned()),
            None => self.entries.push((key.to_owned(), vec![value.to_owned()])),
        }
    }

    /// Every value given for `key`, in query order; `None` when the key never appeared.
    pub(crate) fn values(&self, key: &str) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|(known, _)| known == key)
            .map(|(_, values)| values.as_slice())
    }

    /// The keys, in order of first appearance.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(key, _)| key.as_str())
    }
}

/// Splits a query into terms, or returns the one tokenizer error that stopped it.
pub(crate) fn tokenize(query: &str) -> Result<Terms, Validation> {
    let query = go_lowercase(query);
    let mut terms = Terms::default();
    for element in elements(&split_outside_quotes(&query, ' ')) {
        if element.starts_with(':') || element.ends_with(':') {
            return Err(tokenizer_error(format!(
                "Query element {} cannot start or end with ':'",
                go_quote(&element)
            )));
        }
        let parts: Vec<&str> = split_outside_quotes(&element, ':')
            .into_iter()
            .map(|part| part.trim_matches('"'))
            .collect();
        match parts.as_slice() {
            // No ':' outside quotes: Coder hands the element to the default key unstripped,
            // so `"a:b"` and the joined bare words keep their quotes (and then fail as enums).
            [] | [_] => terms.add(DEFAULT_KEY, &element),
            [key, value] => terms.add(key, value),
            _ => {
                return Err(tokenizer_error(format!(
                    "Query element {} can only contain 1 ':'",
                    go_quote(&element)
                )));
            }
        }
    }
    Ok(terms)
}

fn tokenizer_error(detail: String) -> Validation {
    Validation {
        field: QUERY_FIELD.to_owned(),
        detail,
    }
}

/// Coder's `processTokens`: tokens holding ':' anywhere (even inside quotes) stay elements in
/// order; all other tokens are joined with single spaces into one element placed last.
fn elements(tokens: &[&str]) -> Vec<String> {
    let (fields, bare_words): (Vec<&str>, Vec<&str>) = tokens
        .iter()
        .copied()
        .partition(|token| token.contains(':'));
    let mut elements: Vec<String> = fields.into_iter().map(str::to_owned).collect();
    if !bare_words.is_empty() {
        elements.push(bare_words.join(" "));
    }
    elements
}

/// Go's `strings.FieldsFunc` with Coder's predicate: `"` toggles quoting (and stays in the
/// field), the delimiter splits only outside quotes, and empty fields are dropped. Dropping
/// empty fields means `a::b` splits into two parts, exactly as in Coder.
fn split_outside_quotes(text: &str, delimiter: char) -> Vec<&str> {
    let mut fields = Vec::new();
    let mut quoted = false;
    let mut field_start = 0;
    for (index, character) in text.char_indices() {
        if character == '"' {
            quoted = !quoted;
        }
        if !quoted && character == delimiter {
            if field_start < index {
                fields.push(&text[field_start..index]);
            }
            field_start = index + character.len_utf8();
        }
    }
    if field_start < text.len() {
        fields.push(&text[field_start..]);
    }
    fields
}

/// Go's `strings.ToLower`: the simple, one-to-one Unicode mapping.
///
/// Rust's `str::to_lowercase` applies the full mapping instead, which turns `İ` (U+0130) into
/// two characters and lowercases a word-final `Σ` to `ς`; Go does neither.
pub(crate) fn go_lowercase(text: &str) -> String {
    text.chars()
        .map(|character| match character {
            '\u{130}' => 'i',
            _ => {
                let mut lowered = character.to_lowercase();
                match (lowered.next(), lowered.next()) {
                    (Some(single), None) => single,
                    // Only U+0130 maps to more than one character; keep anything new as is.
                    _ => character,
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms_of(query: &str) -> Vec<(String, Vec<String>)> {
        tokenize(query).unwrap().entries
    }

    fn pair(key: &str, values: &[&str]) -> (String, Vec<String>) {
        (
            key.to_owned(),
            values.iter().map(|value| (*value).to_owned()).collect(),
        )
    }

    #[test]
    fn splits_fields_like_go_fields_func() {
        assert_eq!(split_outside_quotes("  a  b ", ' '), vec!["a", "b"]);
        assert_eq!(
            split_outside_quotes(r#"a "b c" d"#, ' '),
            vec!["a", r#""b c""#, "d"]
        );
        assert_eq!(
            split_outside_quotes(r#"a "b c d"#, ' '),
            vec!["a", r#""b c d"#]
        );
        assert_eq!(split_outside_quotes("a::b", ':'), vec!["a", "b"]);
        assert!(split_outside_quotes("   ", ' ').is_empty());
    }

    #[test]
    fn lowercases_like_go() {
        assert_eq!(go_lowercase("ÄBC İ ΟΔΟΣ"), "äbc i οδοσ");
    }

    #[test]
    fn bare_words_join_into_one_last_element() {
        assert_eq!(
            terms_of("workspace action:create template"),
            vec![
                pair("action", &["create"]),
                pair("resource_type", &["workspace template"])
            ]
        );
    }

    #[test]
    fn a_colon_inside_quotes_only_sends_the_raw_element_to_the_default_key() {
        assert_eq!(
            terms_of(r#""a:b""#),
            vec![pair("resource_type", &[r#""a:b""#])]
        );
    }

    #[test]
    fn blank_query_has_no_terms() {
        assert!(terms_of("").is_empty());
        assert!(terms_of("    ").is_empty());
    }
}
