//! `coder`: the event as Coder's API returns it, through the read side's own conversion, so
//! the stream and `GET /api/v2/audit` can never drift apart.

use auditlog_event::AuditEvent;
use auditlog_query::AuditLog;
use serde_json::Value;

/// Appends `event` as one line of compact JSON.
pub(super) fn write(event: &AuditEvent, out: &mut Vec<u8>) {
    // Writing a plain struct into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &AuditLog::from_event(event));
}

pub(super) fn to_json(event: &AuditEvent) -> Value {
    serde_json::to_value(AuditLog::from_event(event)).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use auditlog_event::testing::sample_events;

    use super::*;

    #[test]
    fn it_is_the_apis_json_with_the_id_as_key() {
        for event in sample_events() {
            let value = to_json(&event);
            assert_eq!(value["id"], Value::String(event.id.to_string()));
            let back: AuditLog = serde_json::from_value(value.clone()).unwrap();
            assert_eq!(back, AuditLog::from_event(&event));
            let mut line = Vec::new();
            write(&event, &mut line);
            let written: Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(written, value, "the line is the value");
        }
    }
}
