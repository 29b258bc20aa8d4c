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

use std::net::IpAddr;

use auditlog_event::{Action, AuditEvent, ResourceType};
use auditlog_query::{AuditLog, MinimalOrganization};
use serde::Serialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

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

/// The event as an OCSF object, serialized straight from borrowed fields (no JSON tree is
/// built per event: the stream writes one per message).
#[derive(Serialize)]
struct OcsfEvent<'a> {
    class_uid: u32,
    class_name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activity_id: u32,
    activity_name: &'a str,
    type_uid: u32,
    type_name: String,
    severity_id: u8,
    severity: &'static str,
    status_id: u8,
    status: &'static str,
    status_code: String,
    time: i64,
    message: String,
    metadata: Metadata,
    actor: Actor<'a>,
    src_endpoint: Endpoint,
    http_request: HttpRequest<'a>,
    unmapped: Unmapped<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<Named>,
    #[serde(skip_serializing_if = "Option::is_none")]
    api: Option<Api<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<[Resource<'a>; 1]>,
}

#[derive(Serialize)]
struct Metadata {
    version: &'static str,
    uid: Uuid,
    correlation_uid: Uuid,
    original_time: String,
    log_name: &'static str,
    product: Product,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_uid: Option<Uuid>,
}

#[derive(Serialize)]
struct Product {
    name: &'static str,
    vendor_name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct Actor<'a> {
    user: User<'a>,
}

/// An OCSF user: the actor, or the account a login or an account change is about.
#[derive(Serialize)]
struct User<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<Uuid>,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    type_id: Option<u8>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_addr: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    full_name: Option<&'a str>,
}

#[derive(Serialize)]
struct Endpoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'static str>,
}

#[derive(Serialize)]
struct HttpRequest<'a> {
    uid: Uuid,
    #[serde(skip_serializing_if = "str::is_empty")]
    user_agent: &'a str,
}

#[derive(Serialize)]
struct Named {
    name: &'static str,
}

#[derive(Serialize)]
struct Api<'a> {
    operation: &'a str,
    request: ApiRequest,
    response: ApiResponse,
}

#[derive(Serialize)]
struct ApiRequest {
    uid: Uuid,
}

#[derive(Serialize)]
struct ApiResponse {
    code: i32,
}

#[derive(Serialize)]
struct Resource<'a> {
    uid: Uuid,
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

/// What OCSF has no attribute for, in Coder's spelling.
#[derive(Serialize)]
struct Unmapped<'a> {
    resource_type: &'a str,
    action: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    resource_icon: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    resource_link: &'a str,
    diff: &'a Map<String, Value>,
    additional_fields: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    build_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization: Option<&'a MinimalOrganization>,
}

/// Appends `event` as one line of compact OCSF JSON.
pub(super) fn write(event: &AuditEvent, out: &mut Vec<u8>) {
    let log = AuditLog::from_event(event);
    // Writing plain structs into a Vec cannot fail.
    let _ = serde_json::to_writer(out, &ocsf_event(event, &log));
}

/// The event as an OCSF JSON value (what [`write`] writes).
pub(super) fn to_json(event: &AuditEvent) -> Value {
    let log = AuditLog::from_event(event);
    serde_json::to_value(ocsf_event(event, &log)).unwrap_or(Value::Null)
}

fn ocsf_event<'a>(event: &'a AuditEvent, log: &'a AuditLog) -> OcsfEvent<'a> {
    let class = classify(event);
    let failed = event.status_code >= 400;
    let time_millis = i64::try_from(event.time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let activity_name = activity_name(&class, event);
    let (user, service, api, resources) = match class.class_uid {
        3002 => {
            // The user who logged in or out: the actor, or for a failed login without one,
            // the name that was tried (Coder's resource target).
            let user = match &event.user {
                Some(_) => actor_user(event),
                None => User {
                    uid: None,
                    name: &event.resource_target,
                    type_id: Some(0),
                    kind: Some("Unknown"),
                    email_addr: None,
                    full_name: None,
                },
            };
            // OCSF 1.3.0 asks an Authentication event for the service or the endpoint that
            // was logged on to; a Coder login is always to Coder itself.
            let service = Named {
                name: LOGON_SERVICE,
            };
            (Some(user), Some(service), None, None)
        }
        3001 => {
            let user = User {
                uid: Some(event.resource_id),
                name: &event.resource_target,
                type_id: None,
                kind: None,
                email_addr: None,
                full_name: None,
            };
            (Some(user), None, None, None)
        }
        _ => {
            let api = Api {
                operation: event.action.as_str(),
                request: ApiRequest {
                    uid: event.request_id,
                },
                response: ApiResponse {
                    code: event.status_code,
                },
            };
            let resource = Resource {
                uid: event.resource_id,
                name: &event.resource_target,
                kind: event.resource_type.as_str(),
            };
            (None, None, Some(api), Some([resource]))
        }
    };
    OcsfEvent {
        class_uid: class.class_uid,
        class_name: class.class_name,
        category_uid: class.category_uid,
        category_name: class.category_name,
        activity_id: class.activity_id,
        activity_name,
        type_uid: class.class_uid * 100 + class.activity_id,
        type_name: format!("{}: {activity_name}", class.class_name),
        severity_id: if failed { 2 } else { 1 },
        severity: if failed { "Low" } else { "Informational" },
        status_id: if failed { 2 } else { 1 },
        status: if failed { "Failure" } else { "Success" },
        status_code: event.status_code.to_string(),
        time: time_millis,
        message: log.readable_description(),
        metadata: Metadata {
            version: OCSF_VERSION,
            uid: event.id,
            correlation_uid: event.request_id,
            original_time: event.time.format(&Rfc3339).unwrap_or_default(),
            log_name: "audit",
            product: Product {
                name: "auditlog",
                vendor_name: "auditlog",
                version: env!("CARGO_PKG_VERSION"),
            },
            tenant_uid: event
                .organization
                .as_ref()
                .map(|organization| organization.id),
        },
        actor: Actor {
            user: actor_user(event),
        },
        src_endpoint: match event.ip {
            Some(ip) => Endpoint {
                ip: Some(ip),
                name: None,
            },
            // API Activity requires a source endpoint and OCSF's endpoint needs at least one
            // of its identifying attributes, so an empty object would not validate; events
            // without an address are mostly the server's own background work.
            None => Endpoint {
                ip: None,
                name: Some(UNKNOWN_ENDPOINT),
            },
        },
        http_request: HttpRequest {
            uid: event.request_id,
            user_agent: &event.user_agent,
        },
        unmapped: Unmapped {
            resource_type: event.resource_type.as_str(),
            action: event.action.as_str(),
            resource_icon: &event.resource_icon,
            resource_link: &log.resource_link,
            diff: &log.diff,
            additional_fields: &event.additional_fields,
            build_reason: event.build_reason.as_ref().map(|reason| reason.as_str()),
            organization: log.organization.as_ref(),
        },
        user,
        service,
        api,
        resources,
    }
}

/// "Other" activities name what was done, e.g. `start`.
fn activity_name<'a>(class: &Classified, event: &'a AuditEvent) -> &'a str {
    if class.activity_id == OTHER.0 {
        event.action.as_str()
    } else {
        class.activity_name
    }
}

fn actor_user(event: &AuditEvent) -> User<'_> {
    match &event.user {
        Some(user) => User {
            uid: Some(user.id),
            name: &user.username,
            type_id: Some(1),
            kind: Some("User"),
            email_addr: Some(user.email.as_str()).filter(|email| !email.is_empty()),
            full_name: Some(user.name.as_str()).filter(|name| !name.is_empty()),
        },
        // Coder records system actions under the nil user id.
        None => User {
            uid: Some(Uuid::nil()),
            name: "system",
            type_id: Some(3),
            kind: Some("System"),
            email_addr: None,
            full_name: None,
        },
    }
}

#[cfg(test)]
#[path = "ocsf_tests.rs"]
mod tests;
