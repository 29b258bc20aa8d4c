//! `ocsf`: an event as an OCSF 1.x event of the class that fits it.
//!
//! ```text
//!  action login / logout ─────────────────▶ Authentication 3002 (Logon 1, Logoff 2)
//!  resource_type user ────────────────────▶ Account Change 3001 (Create, Delete, Password Reset, Other)
//!  everything else ───────────────────────▶ API Activity 6003 (Create, Update, Delete, Other)
//! ```
//!
//! Every object carries the base event's required attributes (`activity_id`,
//! `category_uid`, `class_uid`, `metadata` with `product` and `version`, `severity_id`,
//! `time`, `type_uid`), the event id as `metadata.uid` (the dedup key), the request id as
//! `metadata.correlation_uid`, the organization as `metadata.tenant_uid`, and what OCSF has
//! no place for under `unmapped`. `docs/streaming.md` has the mapping field by field.

use auditlog_event::{Action, AuditEvent, ResourceType};
use auditlog_query::AuditLog;
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;

/// The OCSF schema version the events declare.
pub const OCSF_VERSION: &str = "1.3.0";

/// An OCSF class and activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Classified {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u32,
    activity_name: &'static str,
}

const API_ACTIVITY: (u32, &str) = (6003, "API Activity");
const AUTHENTICATION: (u32, &str) = (3002, "Authentication");
const ACCOUNT_CHANGE: (u32, &str) = (3001, "Account Change");
const APPLICATION_ACTIVITY: (u32, &str) = (6, "Application Activity");
const IAM: (u32, &str) = (3, "Identity & Access Management");
const OTHER: (u32, &str) = (99, "Other");

/// `service.name` of an Authentication event.
const LOGON_SERVICE: &str = "coder";
/// `src_endpoint.name` when the event has no client address.
const UNKNOWN_ENDPOINT: &str = "unknown";

fn classify(event: &AuditEvent) -> Classified {
    let make = |(class_uid, class_name): (u32, &'static str),
                (category_uid, category_name): (u32, &'static str),
                (activity_id, activity_name): (u32, &'static str)| Classified {
        class_uid,
        class_name,
        category_uid,
        category_name,
        activity_id,
        activity_name,
    };
    match (&event.action, &event.resource_type) {
        (Action::Login, _) => make(AUTHENTICATION, IAM, (1, "Logon")),
        (Action::Logout, _) => make(AUTHENTICATION, IAM, (2, "Logoff")),
        (action, ResourceType::User) => {
            let activity = match action {
                Action::Create | Action::Register => (1, "Create"),
                Action::Delete => (6, "Delete"),
                Action::RequestPasswordReset => (4, "Password Reset"),
                _ => OTHER,
            };
            make(ACCOUNT_CHANGE, IAM, activity)
        }
        (action, _) => {
            let activity = match action {
                Action::Create => (1, "Create"),
                Action::Write => (3, "Update"),
                Action::Delete => (4, "Delete"),
                _ => OTHER,
            };
            make(API_ACTIVITY, APPLICATION_ACTIVITY, activity)
        }
    }
}

pub(super) fn to_json(event: &AuditEvent) -> Value {
    let class = classify(event);
    let log = AuditLog::from_event(event);
    let failed = event.status_code >= 400;
    let time_millis = i64::try_from(event.time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let mut metadata = json!({
        "version": OCSF_VERSION,
        "uid": event.id.to_string(),
        "correlation_uid": event.request_id.to_string(),
        "original_time": event.time.format(&Rfc3339).unwrap_or_default(),
        "log_name": "audit",
        "product": {
            "name": "auditlog",
            "vendor_name": "auditlog",
            "version": env!("CARGO_PKG_VERSION"),
        },
    });
    if let Some(organization) = &event.organization {
        metadata["tenant_uid"] = Value::String(organization.id.to_string());
    }
    let mut object = json!({
        "class_uid": class.class_uid,
        "class_name": class.class_name,
        "category_uid": class.category_uid,
        "category_name": class.category_name,
        "activity_id": class.activity_id,
        "activity_name": activity_name(&class, event),
        "type_uid": class.class_uid * 100 + class.activity_id,
        "type_name": format!("{}: {}", class.class_name, activity_name(&class, event)),
        "severity_id": if failed { 2 } else { 1 },
        "severity": if failed { "Low" } else { "Informational" },
        "status_id": if failed { 2 } else { 1 },
        "status": if failed { "Failure" } else { "Success" },
        "status_code": event.status_code.to_string(),
        "time": time_millis,
        "message": log.readable_description(),
        "metadata": metadata,
        "actor": { "user": actor_user(event) },
        "src_endpoint": src_endpoint(event),
        "http_request": http_request(event),
        "unmapped": unmapped(event, &log),
    });
    let fields = object.as_object_mut().expect("an object");
    match class.class_uid {
        3002 => {
            // The user who logged in or out: the actor, or for a failed login without one,
            // the name that was tried (Coder's resource target).
            let user = match &event.user {
                Some(_) => actor_user(event),
                None => json!({ "name": event.resource_target, "type_id": 0, "type": "Unknown" }),
            };
            fields.insert("user".into(), user);
            // OCSF 1.3.0 asks an Authentication event for the service or the endpoint that
            // was logged on to; a Coder login is always to Coder itself.
            fields.insert("service".into(), json!({ "name": LOGON_SERVICE }));
        }
        3001 => {
            fields.insert(
                "user".into(),
                json!({
                    "uid": event.resource_id.to_string(),
                    "name": event.resource_target,
                }),
            );
        }
        _ => {
            fields.insert(
                "api".into(),
                json!({
                    "operation": event.action.as_str(),
                    "request": { "uid": event.request_id.to_string() },
                    "response": { "code": event.status_code },
                }),
            );
            fields.insert(
                "resources".into(),
                json!([{
                    "uid": event.resource_id.to_string(),
                    "name": event.resource_target,
                    "type": event.resource_type.as_str(),
                }]),
            );
        }
    }
    object
}

/// "Other" activities name what was done, e.g. `start`.
fn activity_name(class: &Classified, event: &AuditEvent) -> String {
    if class.activity_id == OTHER.0 {
        event.action.as_str().to_owned()
    } else {
        class.activity_name.to_owned()
    }
}

fn actor_user(event: &AuditEvent) -> Value {
    match &event.user {
        Some(user) => {
            let mut object = json!({
                "uid": user.id.to_string(),
                "name": user.username,
                "type_id": 1,
                "type": "User",
            });
            if !user.email.is_empty() {
                object["email_addr"] = Value::String(user.email.clone());
            }
            if !user.name.is_empty() {
                object["full_name"] = Value::String(user.name.clone());
            }
            object
        }
        // Coder records system actions under the nil user id.
        None => json!({
            "uid": uuid::Uuid::nil().to_string(),
            "name": "system",
            "type_id": 3,
            "type": "System",
        }),
    }
}

fn src_endpoint(event: &AuditEvent) -> Value {
    match event.ip {
        Some(ip) => json!({ "ip": ip.to_string() }),
        // API Activity requires a source endpoint and OCSF's endpoint needs at least one of
        // its identifying attributes, so an empty object would not validate; events without
        // an address are mostly the server's own background work.
        None => json!({ "name": UNKNOWN_ENDPOINT }),
    }
}

fn http_request(event: &AuditEvent) -> Value {
    let mut object = json!({ "uid": event.request_id.to_string() });
    if !event.user_agent.is_empty() {
        object["user_agent"] = Value::String(event.user_agent.clone());
    }
    object
}

/// What OCSF has no attribute for, in Coder's spelling.
fn unmapped(event: &AuditEvent, log: &AuditLog) -> Value {
    let mut object = Map::new();
    object.insert("resource_type".into(), event.resource_type.as_str().into());
    object.insert("action".into(), event.action.as_str().into());
    if !event.resource_icon.is_empty() {
        object.insert("resource_icon".into(), event.resource_icon.clone().into());
    }
    if !log.resource_link.is_empty() {
        object.insert("resource_link".into(), log.resource_link.clone().into());
    }
    object.insert("diff".into(), Value::Object(log.diff.clone()));
    object.insert(
        "additional_fields".into(),
        Value::Object(event.additional_fields.clone()),
    );
    if let Some(reason) = &event.build_reason {
        object.insert("build_reason".into(), reason.as_str().into());
    }
    if let Some(organization) = &log.organization {
        object.insert(
            "organization".into(),
            serde_json::to_value(organization).unwrap_or(Value::Null),
        );
    }
    Value::Object(object)
}

#[cfg(test)]
#[path = "ocsf_tests.rs"]
mod tests;
