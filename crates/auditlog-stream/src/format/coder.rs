//! `coder`: the event as Coder's API returns it, through the read side's own conversion, so
//! the stream and `GET /api/v2/audit` can never drift apart.

use auditlog_event::AuditEvent;
use auditlog_query::AuditLog;
use serde_json::Value;

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
            let back: AuditLog = serde_json::from_value(value).unwrap();
            assert_eq!(back, AuditLog::from_event(&event));
        }
    }
}
