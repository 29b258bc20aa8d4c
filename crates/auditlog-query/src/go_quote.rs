//! Go's `%q`: how Coder quotes user text inside its error details.
//!
//! Coder builds every validation detail with `fmt.Sprintf("... %q ...")`, so a value such as
//! `a"b` appears as `"a\"b"`. Clients compare these strings, so we reproduce `strconv.Quote`
//! rather than Rust's `{:?}` (which differs for `'`, non-printable and non-ASCII characters).

use std::fmt::Write as _;

/// Quotes `text` the way Go's `strconv.Quote` (and so `fmt`'s `%q`) does.
pub(crate) fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        push_go_escaped(&mut quoted, character);
    }
    quoted.push('"');
    quoted
}

fn push_go_escaped(out: &mut String, character: char) {
    match character {
        '"' | '\\' => {
            out.push('\\');
            out.push(character);
        }
        _ if is_go_printable(character) => out.push(character),
        '\u{07}' => out.push_str("\\a"),
        '\u{08}' => out.push_str("\\b"),
        '\u{0C}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{0B}' => out.push_str("\\v"),
        _ => {
            let code = u32::from(character);
            // Writing to a String cannot fail.
            let _ = if code < 0x20 || code == 0x7f {
                write!(out, "\\x{code:02x}")
            } else if code < 0x1_0000 {
                write!(out, "\\u{code:04x}")
            } else {
                write!(out, "\\U{code:08x}")
            };
        }
    }
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space.
///
/// Rust's standard library has no general-category table, so this is exact for control
/// characters (Cc), separators (Zs, Zl, Zp), format characters (Cf), private use (Co) and
/// noncharacters, and treats other unassigned code points (Cn) as printable where Go escapes
/// them. Unassigned code points do not occur in real usernames or resource names.
fn is_go_printable(character: char) -> bool {
    if character == ' ' {
        return true;
    }
    if character.is_control() || character.is_whitespace() {
        return false;
    }
    let code = u32::from(character);
    let is_noncharacter = (0xFDD0..=0xFDEF).contains(&code) || code & 0xFFFE == 0xFFFE;
    let is_private_use = (0xE000..=0xF8FF).contains(&code) || code >= 0xF_0000;
    !(is_noncharacter || is_private_use || is_unicode_format_character(code))
}

/// The Unicode 15 `Cf` (format) ranges, which Go does not consider printable.
fn is_unicode_format_character(code: u32) -> bool {
    const FORMAT_RANGES: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    FORMAT_RANGES
        .iter()
        .any(|&(first, last)| (first..=last).contains(&code))
}

#[cfg(test)]
mod tests {
    use super::go_quote;

    #[test]
    fn matches_go_strconv_quote() {
        // Expected values are Go's strconv.Quote output, checked by running Go.
        let cases = [
            ("foo", r#""foo""#),
            ("", r#""""#),
            (r#"a"b"#, r#""a\"b""#),
            (r"a\b", r#""a\\b""#),
            ("it's", r#""it's""#),
            ("tab\there", r#""tab\there""#),
            ("nul\0", r#""nul\x00""#),
            ("del\u{7f}", r#""del\x7f""#),
            ("bell\u{07}", r#""bell\a""#),
            ("ünïcødé 日本", r#""ünïcødé 日本""#),
            ("nbsp\u{a0}", r#""nbsp\u00a0""#),
            ("zwsp\u{200b}", r#""zwsp\u200b""#),
            ("bom\u{feff}", r#""bom\ufeff""#),
            ("private\u{f0000}", r#""private\U000f0000""#),
            ("emoji 🦀", r#""emoji 🦀""#),
            ("line\u{2028}", r#""line\u2028""#),
        ];
        for (input, expected) in cases {
            assert_eq!(go_quote(input), expected, "input {input:?}");
        }
    }
}
