//! The bulk formats of [`AuditLog`]s: NDJSON, and CSV under [`CSV_HEADER`].
//!
//! ```text
//!  AuditLog ──write_ndjson──────────────────────► one JSON object per line
//!  AuditLog ──write_csv_header, write_csv_rows──► RFC 4180 rows
//! ```
//!
//! The writers append to a buffer, so a caller that streams (the API's export, in chunks)
//! and one that prints once (the CLI) share them; the CSV header is a call of its own
//! because a stream writes it only before its first chunk.
//!
//! ```
//! use auditlog_event::testing::sample_event;
//! use auditlog_query::{AuditLog, write_csv_header, write_csv_rows, write_ndjson};
//!
//! let logs = [AuditLog::from_event(&sample_event())];
//! let mut ndjson = Vec::new();
//! write_ndjson(&logs, &mut ndjson);
//! assert_eq!(ndjson.iter().filter(|byte| **byte == b'\n').count(), 1);
//!
//! let mut csv = Vec::new();
//! write_csv_header(&mut csv);
//! write_csv_rows(&logs, &mut csv);
//! assert_eq!(String::from_utf8(csv).unwrap().lines().count(), 2);
//! ```

use crate::response::{AuditLog, CSV_HEADER};

/// Appends logs as NDJSON lines.
pub fn write_ndjson(logs: &[AuditLog], out: &mut Vec<u8>) {
    for log in logs {
        // Serializing plain data into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, log);
        out.push(b'\n');
    }
}

/// Appends the CSV header row.
pub fn write_csv_header(out: &mut Vec<u8>) {
    let mut writer = csv::Writer::from_writer(out);
    // Writing into a Vec cannot fail.
    let _ = writer.write_record(CSV_HEADER);
    let _ = writer.flush();
}

/// Appends logs as CSV rows under [`CSV_HEADER`], quoted as RFC 4180 requires.
pub fn write_csv_rows(logs: &[AuditLog], out: &mut Vec<u8>) {
    let mut writer = csv::Writer::from_writer(out);
    for log in logs {
        let _ = writer.write_record(log.csv_record());
    }
    let _ = writer.flush();
}
