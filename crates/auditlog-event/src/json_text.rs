//! Recognises JSON text that is already in the one form serde_json writes (compact, object
//! keys sorted and unique, its escapes, its numbers), so that text can be stored as it came.
//!
//! The stored form of the JSON fields is what serde_json writes for their parsed values. Text
//! a serde_json-based producer wrote is already that form, so the ingester can copy it instead
//! of parsing and writing it again. The check is conservative: it says yes only when parsing
//! into a `Value` and writing that back would give exactly the same bytes (and so never fail);
//! anything else (whitespace, escapes serde_json would not write, unsorted or duplicate keys,
//! deep nesting, numbers it would write differently) takes the parsing path.

/// Nesting deeper than this is left to the parser, which has its own limit.
const MAX_DEPTH: usize = 64;

/// Integers with at most this many digits fit `i64` (and `u64`) whatever their digits.
const MAX_PLAIN_INTEGER_DIGITS: usize = 18;

/// Whether `text` is one JSON value exactly as serde_json writes its parsed form.
pub(crate) fn is_canonical(text: &str) -> bool {
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        at: 0,
    };
    scanner.value(0) && scanner.at == scanner.bytes.len()
}

/// Whether `text` is a JSON object exactly as serde_json writes its parsed form.
pub(crate) fn is_canonical_object(text: &str) -> bool {
    text.starts_with('{') && is_canonical(text)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'{') => depth < MAX_DEPTH && self.object(depth + 1),
            Some(b'[') => depth < MAX_DEPTH && self.array(depth + 1),
            Some(b'"') => self.string().is_some(),
            Some(b'n') => self.literal(b"null"),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth) {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.at += 1;
        if self.eat(b'}') {
            return true;
        }
        let mut previous_key: Option<&'a [u8]> = None;
        loop {
            let Some(key) = self.string() else {
                return false;
            };
            // A key with escapes would have to be decoded to be ordered: leave it to the parser.
            // serde_json's map is ordered by key bytes and keeps the last of duplicate keys.
            if key.contains(&b'\\') || previous_key.is_some_and(|previous| previous >= key) {
                return false;
            }
            previous_key = Some(key);
            if !self.eat(b':') || !self.value(depth) {
                return false;
            }
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    /// A string as serde_json writes it; returns its raw content between the quotes.
    fn string(&mut self) -> Option<&'a [u8]> {
        let bytes = self.bytes;
        if bytes.get(self.at) != Some(&b'"') {
            return None;
        }
        let start = self.at + 1;
        let mut at = start;
        loop {
            // Most bytes are plain: skip them in one tight loop.
            at += bytes
                .get(at..)?
                .iter()
                .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)?;
            match bytes[at] {
                b'"' => {
                    self.at = at + 1;
                    return Some(&bytes[start..at]);
                }
                b'\\' => at += canonical_escape_len(&bytes[at..])?,
                // Raw control characters are not JSON; serde_json escapes them.
                _ => return None,
            }
        }
    }

    /// A number as serde_json writes the number it parses from the same text.
    fn number(&mut self) -> bool {
        let start = self.at;
        let bytes = self.bytes;
        let mut at = start;
        let negative = bytes[at] == b'-';
        if negative {
            at += 1;
        }
        let digits_start = at;
        while bytes.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let digits = &bytes[digits_start..at];
        let is_plain_integer = !matches!(bytes.get(at), Some(b'.' | b'e' | b'E'));
        if is_plain_integer {
            self.at = at;
            // Leading zeros are not JSON; "-0" reads as a float and is written "-0.0".
            let well_formed = match digits {
                [] => false,
                [b'0'] => !negative,
                [b'0', ..] => false,
                _ => true,
            };
            if well_formed && digits.len() <= MAX_PLAIN_INTEGER_DIGITS {
                return true;
            }
            return well_formed && writes_back_identically(&bytes[start..at]);
        }
        // Fractions and exponents: the rest of the token, then serde_json's own verdict.
        while bytes
            .get(at)
            .is_some_and(|byte| byte.is_ascii_digit() || b".eE+-".contains(byte))
        {
            at += 1;
        }
        self.at = at;
        writes_back_identically(&bytes[start..at])
    }
}

/// Length of the escape at the start of `bytes` if it is one serde_json writes: the short
/// forms, and `\u00xx` in lower-case hex for the other control characters.
fn canonical_escape_len(bytes: &[u8]) -> Option<usize> {
    match bytes.get(1)? {
        b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => Some(2),
        b'u' => {
            let hex = bytes.get(2..6)?;
            let lower_hex = |byte: &u8| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte);
            if hex[..2] != *b"00" || !hex[2..].iter().all(lower_hex) {
                return None;
            }
            let text = std::str::from_utf8(&hex[2..]).ok()?;
            let code = u8::from_str_radix(text, 16).ok()?;
            let has_short_form = matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d);
            (code < 0x20 && !has_short_form).then_some(6)
        }
        _ => None,
    }
}

/// Whether serde_json parses `token` as a number and writes it back as the same text.
fn writes_back_identically(token: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(token) else {
        return false;
    };
    match serde_json::from_str::<serde_json::Number>(text) {
        Ok(number) => number.to_string() == text,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// What serde_json stores for `text`, if it parses.
    fn rewritten(text: &str) -> Option<String> {
        serde_json::from_str::<Value>(text)
            .ok()
            .map(|value| value.to_string())
    }

    #[test]
    fn canonical_text_is_recognised() {
        for text in [
            "null",
            "true",
            "false",
            "0",
            "-1",
            "123456789012345678",
            "18446744073709551615",
            "-9223372036854775808",
            "1.5",
            "-0.0",
            "1e+300",
            "1e-7",
            r#""""#,
            "\"a\\\"b\\\\c\\nd\\u0001é\u{7f}\"",
            "[]",
            "{}",
            r#"[1,"x",{"a":[null]}]"#,
            r#"{"a":1,"b":{"c":true},"bb":[]}"#,
        ] {
            assert!(is_canonical(text), "{text}");
            assert_eq!(rewritten(text).as_deref(), Some(text), "{text}");
        }
    }

    #[test]
    fn anything_serde_json_would_write_differently_is_not() {
        for text in [
            "",
            " null",
            "null ",
            "nul",
            "01",
            "-0",
            "-",
            "1.",
            "1e2",
            "1.50",
            "1E300",
            "1e300",
            "99999999999999999999999",
            r#""\/""#,
            r#""\u0041""#,
            r#""\u001F""#,
            r#""\u000a""#,
            "\"\u{1}\"",
            r#""unterminated"#,
            "[1,]",
            "[1 ]",
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,}"#,
            r#"{"\u0061":1}"#,
            r#"{"a" :1}"#,
            "[1][2]",
            "{1:2}",
        ] {
            assert!(!is_canonical(text), "{text}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(!is_canonical(&deep));
    }

    #[test]
    fn only_objects_are_canonical_objects() {
        assert!(is_canonical_object(r#"{"a":"b"}"#));
        assert!(!is_canonical_object("[]"));
        assert!(!is_canonical_object("1"));
    }

    /// Every printable short text: recognised exactly when serde_json writes it back unchanged.
    #[test]
    fn agrees_with_serde_json_on_short_texts() {
        let alphabet: &[u8] = b"{}[]\",:0-1.e\\ nu";
        let mut text = Vec::new();
        let mut checked = 0;
        for len in 1..=5 {
            let combinations = alphabet.len().pow(len);
            for mut index in 0..combinations {
                text.clear();
                for _ in 0..len {
                    text.push(alphabet[index % alphabet.len()]);
                    index /= alphabet.len();
                }
                let text = std::str::from_utf8(&text).unwrap();
                if is_canonical(text) {
                    assert_eq!(rewritten(text).as_deref(), Some(text), "{text}");
                }
                checked += 1;
            }
        }
        assert!(checked > 1_000_000);
    }
}
