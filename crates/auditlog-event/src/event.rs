//! The audit event itself: who did what to which resource, when, from where, what changed.
//!
//! `builder.rs` assembles an event and `validate.rs` checks it; this module is only the model
//! and what can be read off it.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Action, BuildReason, Diff, ResourceType};

/// Who performed the operation, as they were at the time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// The user's id; never nil (an absent actor is `None` on the event).
    pub id: Uuid,
    /// The login name.
    pub username: String,
    /// The email address, empty when unknown.
    #[serde(default)]
    pub email: String,
    /// The display name, empty when unset.
    #[serde(default)]
    pub name: String,
}

/// The organization the resource belongs to, as it was at the time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Organization {
    /// The organization's id; never nil (site-wide events have no organization).
    pub id: Uuid,
    /// The unique name.
    pub name: String,
    /// The name shown to people.
    #[serde(default)]
    pub display_name: String,
    /// The icon URL or path, empty when unset.
    #[serde(default)]
    pub icon: String,
}

/// One audited operation: who did what to which resource, when, from where, what changed.
///
/// Build one with [`AuditEvent::builder`]. The fields are public for readers (the ingester,
/// the query side); whoever changes them should call [`AuditEvent::validate`] again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique id, a UUID v7 unless given.
    pub id: Uuid,
    /// When it happened, UTC, with microsecond precision. JSON writes it as RFC 3339, which
    /// has room for years 0000 to 9999 only (valid events lie in 1900 to 2299).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// Id of the request that caused it.
    pub request_id: Uuid,
    /// The client's address, when known.
    #[serde(default)]
    pub ip: Option<IpAddr>,
    /// The client's User-Agent, empty when unknown.
    #[serde(default)]
    pub user_agent: String,
    /// Who did it; `None` for system and background actions (Coder's nil user id).
    #[serde(default)]
    pub user: Option<Actor>,
    /// The organization; `None` for site-wide events (Coder's nil organization id).
    #[serde(default)]
    pub organization: Option<Organization>,
    /// What kind of resource was touched.
    pub resource_type: ResourceType,
    /// Which resource was touched.
    pub resource_id: Uuid,
    /// The resource's human name, e.g. a workspace name; may be empty.
    #[serde(default)]
    pub resource_target: String,
    /// The resource's icon, empty when unset.
    #[serde(default)]
    pub resource_icon: String,
    /// What was done.
    pub action: Action,
    /// What changed.
    #[serde(default)]
    pub diff: Diff,
    /// The HTTP status of the operation; 400 and above means it failed.
    pub status_code: i32,
    /// Extra context, e.g. workspace build details or `automatic_actor`.
    #[serde(default)]
    pub additional_fields: Map<String, Value>,
    /// Why a workspace build ran; only on `workspace_build` and `workspace` + `create` events.
    #[serde(default)]
    pub build_reason: Option<BuildReason>,
}

impl AuditEvent {
    /// The actor's id, nil for system actions, as Coder stores it.
    pub fn user_id(&self) -> Uuid {
        self.user.as_ref().map_or(Uuid::nil(), |user| user.id)
    }

    /// The organization's id, nil for site-wide events, as Coder stores it.
    pub fn organization_id(&self) -> Uuid {
        self.organization
            .as_ref()
            .map_or(Uuid::nil(), |organization| organization.id)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::sample_event;

    #[test]
    fn json_without_optional_fields_takes_their_defaults() {
        let minimal = json!({
            "id": "01972b5e-1a2b-7c3d-8e4f-5a6b7c8d9e0f",
            "time": "2025-06-01T12:34:56Z",
            "request_id": "6f1c2d3e-4f50-4a6b-9c7d-8e9fa0b1c2d3",
            "resource_type": "workspace",
            "resource_id": "01972b5e-0000-7000-8000-00000000b001",
            "action": "delete",
            "status_code": 200,
        });
        let event: AuditEvent = serde_json::from_value(minimal).unwrap();
        assert!(event.user.is_none() && event.organization.is_none() && event.ip.is_none());
        assert!(event.diff.is_empty() && event.additional_fields.is_empty());
        assert_eq!(event.action, Action::Delete);
    }

    #[test]
    fn json_uses_snake_case_fields_and_rfc3339_time() {
        let value = serde_json::to_value(sample_event()).unwrap();
        let object = value.as_object().unwrap();
        let keys: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut expected = vec![
            "id",
            "time",
            "request_id",
            "ip",
            "user_agent",
            "user",
            "organization",
            "resource_type",
            "resource_id",
            "resource_target",
            "resource_icon",
            "action",
            "diff",
            "status_code",
            "additional_fields",
            "build_reason",
        ];
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(object["time"], json!("2025-06-01T12:34:56.789012Z"));
        assert_eq!(object["user"]["username"], json!("alice"));
        assert_eq!(object["organization"]["display_name"], json!("Acme Corp"));
        let parsed: AuditEvent = serde_json::from_value(value).unwrap();
        assert_eq!(parsed, sample_event());
    }
}
