//! Dates as Coder reads them: Go's `time.Parse("2006-01-02", value)`, errors included.
//!
//! Coder appends Go's parse error to its validation detail, so a client sees e.g.
//! `parsing time "2026-13-01": month out of range`. This module walks the layout the way Go's
//! `time.parse` does (year, `-`, month, `-`, day, then leftovers, then the calendar check) so
//! that the first problem found, and its wording, are the same as Go's.

use time::{Date, Month};

/// Go's reference layout for a calendar date, as it appears in Coder's error text.
pub(crate) const GO_DATE_LAYOUT: &str = "2006-01-02";

/// Parses `YYYY-MM-DD` exactly, returning Go's error text on failure.
pub(crate) fn parse_go_date(value: &str) -> Result<Date, String> {
    let rest = value;

    // stdLongYear: at least four bytes, the first a digit, the four an unsigned integer. On
    // failure Go (1.20 on) quotes the input from where the year should start (its `hold`).
    let year = match four_digit_year(rest) {
        Some(year) => year,
        None => return Err(cannot_parse(value, rest, "2006")),
    };
    // The four bytes are ASCII digits, so slicing after them is on a character boundary.
    let rest = &rest[4..];

    let rest = skip_dash(value, rest)?;
    let Some((month, rest)) = two_digits(rest) else {
        return Err(cannot_parse(value, rest, "01"));
    };
    if !(1..=12).contains(&month) {
        return Err(out_of_range(value, "month"));
    }

    let rest = skip_dash(value, rest)?;
    let Some((day, rest)) = two_digits(rest) else {
        return Err(cannot_parse(value, rest, "02"));
    };

    if !rest.is_empty() {
        return Err(format!(
            "parsing time {}: extra text: {}",
            time_quote(value),
            time_quote(rest)
        ));
    }

    // Go checks the day against the month only after the whole layout matched.
    let month = u8::try_from(month)
        .ok()
        .and_then(|month| Month::try_from(month).ok());
    let day = u8::try_from(day).ok();
    match (month, day) {
        (Some(month), Some(day)) => {
            Date::from_calendar_date(year, month, day).map_err(|_| out_of_range(value, "day"))
        }
        _ => Err(out_of_range(value, "day")),
    }
}

fn four_digit_year(rest: &str) -> Option<i32> {
    let bytes = rest.as_bytes();
    let digits = bytes.get(..4)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        digits
            .iter()
            .fold(0, |year, digit| year * 10 + i32::from(digit - b'0')),
    )
}

/// Go's `getnum(value, fixed=true)`: exactly two ASCII digits.
fn two_digits(rest: &str) -> Option<(u32, &str)> {
    match rest.as_bytes() {
        [tens, ones, ..] if tens.is_ascii_digit() && ones.is_ascii_digit() => Some((
            u32::from(tens - b'0') * 10 + u32::from(ones - b'0'),
            &rest[2..],
        )),
        _ => None,
    }
}

fn skip_dash<'a>(value: &str, rest: &'a str) -> Result<&'a str, String> {
    rest.strip_prefix('-')
        .ok_or_else(|| cannot_parse(value, rest, "-"))
}

fn cannot_parse(value: &str, value_element: &str, layout_element: &str) -> String {
    format!(
        "parsing time {} as {}: cannot parse {} as {}",
        time_quote(value),
        time_quote(GO_DATE_LAYOUT),
        time_quote(value_element),
        time_quote(layout_element),
    )
}

fn out_of_range(value: &str, what: &str) -> String {
    format!("parsing time {}: {what} out of range", time_quote(value))
}

/// The `time` package's own `quote`, which differs from `strconv.Quote`: every byte of a
/// non-ASCII or control character becomes `\xNN`.
fn time_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        // Go escapes bytes at or above utf8.RuneSelf and below ' '; DEL passes through.
        let escaped = !character.is_ascii() || character < ' ';
        if escaped {
            let mut buffer = [0_u8; 4];
            for byte in character.encode_utf8(&mut buffer).bytes() {
                quoted.push_str(&format!("\\x{byte:02x}"));
            }
        } else {
            if character == '"' || character == '\\' {
                quoted.push('\\');
            }
            quoted.push(character);
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::parse_go_date;

    #[test]
    fn accepts_real_calendar_days() {
        assert_eq!(parse_go_date("2026-01-01"), Ok(date!(2026 - 01 - 01)));
        assert_eq!(parse_go_date("2024-02-29"), Ok(date!(2024 - 02 - 29)));
        assert_eq!(parse_go_date("2000-02-29"), Ok(date!(2000 - 02 - 29)));
        assert_eq!(parse_go_date("0000-01-01"), Ok(date!(0000 - 01 - 01)));
        assert_eq!(parse_go_date("9999-12-31"), Ok(date!(9999 - 12 - 31)));
    }

    #[test]
    fn reports_go_error_texts() {
        // Expected values are Go's time.Parse("2006-01-02", input), checked by running Go.
        // For a bad year, Go 1.20+ (Coder's toolchain) reports the input from the year on;
        // older Go reported what followed the four bytes.
        let cases = [
            (
                "x",
                r#"parsing time "x" as "2006-01-02": cannot parse "x" as "2006""#,
            ),
            (
                "26-01-01",
                r#"parsing time "26-01-01" as "2006-01-02": cannot parse "26-01-01" as "2006""#,
            ),
            (
                "2x26-01-01",
                r#"parsing time "2x26-01-01" as "2006-01-02": cannot parse "2x26-01-01" as "2006""#,
            ),
            (
                "2026/01/01",
                r#"parsing time "2026/01/01" as "2006-01-02": cannot parse "/01/01" as "-""#,
            ),
            (
                "2026-1-01",
                r#"parsing time "2026-1-01" as "2006-01-02": cannot parse "1-01" as "01""#,
            ),
            (
                "2026-01-1",
                r#"parsing time "2026-01-1" as "2006-01-02": cannot parse "1" as "02""#,
            ),
            (
                "2026-01",
                r#"parsing time "2026-01" as "2006-01-02": cannot parse "" as "-""#,
            ),
            (
                "2026-13-01",
                r#"parsing time "2026-13-01": month out of range"#,
            ),
            (
                "2026-00-10",
                r#"parsing time "2026-00-10": month out of range"#,
            ),
            (
                "2026-02-30",
                r#"parsing time "2026-02-30": day out of range"#,
            ),
            (
                "2025-02-29",
                r#"parsing time "2025-02-29": day out of range"#,
            ),
            (
                "1900-02-29",
                r#"parsing time "1900-02-29": day out of range"#,
            ),
            (
                "2026-01-00",
                r#"parsing time "2026-01-00": day out of range"#,
            ),
            (
                "2026-04-31",
                r#"parsing time "2026-04-31": day out of range"#,
            ),
            (
                "2026-01-01t00:00",
                r#"parsing time "2026-01-01t00:00": extra text: "t00:00""#,
            ),
            // Extra text is found before the calendar check, as in Go.
            (
                "2026-02-30x",
                r#"parsing time "2026-02-30x": extra text: "x""#,
            ),
            (
                "2026-01-01é",
                r#"parsing time "2026-01-01\xc3\xa9": extra text: "\xc3\xa9""#,
            ),
            (
                r#"2026-01-0""#,
                r#"parsing time "2026-01-0\"" as "2006-01-02": cannot parse "0\"" as "02""#,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_go_date(input).unwrap_err(),
                expected,
                "input {input:?}"
            );
        }
    }
}
