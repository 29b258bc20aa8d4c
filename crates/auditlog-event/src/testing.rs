//! Realistic sample events for tests and benchmarks in this and other crates.
//!
//! Ids and times are fixed, so the events are the same on every call and snapshots of
//! anything derived from them stay stable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value, json};
use time::macros::datetime;
use uuid::Uuid;

use crate::{Action, Actor, AuditEvent, BuildReason, Diff, DiffEntry, Organization, ResourceType};

/// The user `alice`, who performs most sample operations.
pub fn sample_actor() -> Actor {
    Actor {
        id: Uuid::from_u128(0x0190_7a3c_0000_7000_8000_0000_0000_a11c),
        username: "alice".into(),
        email: "alice@example.com".into(),
        name: "Alice Liddell".into(),
    }
}

/// The organization `acme`.
pub fn sample_organization() -> Organization {
    Organization {
        id: Uuid::from_u128(0x0190_7a3c_0000_7000_8000_0000_0000_ac3e),
        name: "acme".into(),
        display_name: "Acme Corp".into(),
        icon: "/emojis/1f3ed.png".into(),
    }
}

/// [`sample_event`] with another resource type, action and status, and no build reason (which
/// most pairs may not carry).
///
/// ```
/// use auditlog_event::{Action, ResourceType, testing::sample_event_for};
///
/// let event = sample_event_for(ResourceType::Template, Action::Delete, 200);
/// assert!(event.validate().is_ok());
/// ```
pub fn sample_event_for(
    resource_type: ResourceType,
    action: Action,
    status_code: i32,
) -> AuditEvent {
    AuditEvent {
        resource_type,
        action,
        status_code,
        build_reason: None,
        ..sample_event()
    }
}

/// A workspace build alice started from the CLI, with a diff and Coder's build fields.
///
/// ```
/// let event = auditlog_event::testing::sample_event();
/// assert!(event.validate().is_ok());
/// ```
pub fn sample_event() -> AuditEvent {
    let workspace_id = Uuid::from_u128(0x0190_7a3c_0000_7000_8000_0000_0000_0001);
    let diff: Diff = [
        (
            "template_version_id",
            DiffEntry::changed(
                json!("0190a1b2-0000-7000-8000-000000000011"),
                json!("0190a1b2-0000-7000-8000-000000000012"),
            ),
        ),
        (
            "transition",
            DiffEntry::changed(json!("stop"), json!("start")),
        ),
        ("provisioner_state", DiffEntry::secret()),
    ]
    .into_iter()
    .collect();
    AuditEvent {
        id: Uuid::from_u128(0x0197_2b5e_1a2b_7c3d_8e4f_5a6b_7c8d_9e0f),
        time: datetime!(2025-06-01 12:34:56.789012 UTC),
        request_id: Uuid::from_u128(0x6f1c_2d3e_4f50_4a6b_9c7d_8e9f_a0b1_c2d3),
        ip: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 42))),
        user_agent: "coder/v2.24.1 (linux/amd64)".into(),
        user: Some(sample_actor()),
        organization: Some(sample_organization()),
        resource_type: ResourceType::WorkspaceBuild,
        resource_id: Uuid::from_u128(0x0197_2b5e_0000_7000_8000_0000_0000_b001),
        resource_target: "dev-box".into(),
        resource_icon: "/icon/docker.png".into(),
        action: Action::Start,
        diff,
        status_code: 200,
        additional_fields: object(json!({
            "workspace_name": "dev-box",
            "build_number": "7",
            "build_reason": "cli",
            "workspace_owner": "alice",
            "workspace_id": workspace_id.to_string(),
        })),
        build_reason: Some(BuildReason::Cli),
    }
}

/// A small variety of events: the sample build, a login, a failed template update, an
/// automatic (actor-less) stop, a site-wide user creation and a git ssh key change.
pub fn sample_events() -> Vec<AuditEvent> {
    let build = sample_event();
    let login = AuditEvent {
        id: Uuid::from_u128(0x0197_2b5e_1a2b_7c3d_8e4f_5a6b_7c8d_0001),
        request_id: Uuid::from_u128(0x0001),
        ip: Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))),
        resource_type: ResourceType::ApiKey,
        resource_id: Uuid::from_u128(0x0197_2b5e_0000_7000_8000_0000_0000_4e11),
        resource_target: "alice".into(),
        resource_icon: String::new(),
        action: Action::Login,
        diff: Diff::new(),
        status_code: 201,
        additional_fields: Map::new(),
        build_reason: None,
        ..build.clone()
    };
    let failed_template_write = AuditEvent {
        id: Uuid::from_u128(0x0197_2b5e_1a2b_7c3d_8e4f_5a6b_7c8d_0002),
        request_id: Uuid::from_u128(0x0002),
        resource_type: ResourceType::Template,
        resource_id: Uuid::from_u128(0x0197_2b5e_0000_7000_8000_0000_0000_7e11),
        resource_target: "docker".into(),
        action: Action::Write,
        diff: Diff::new(),
        status_code: 403,
        additional_fields: Map::new(),
        build_reason: None,
        ..build.clone()
    };
    let automatic_stop = AuditEvent {
        id: Uuid::from_u128(0x0197_2b5e_1a2b_7c3d_8e4f_5a6b_7c8d_0003),
        request_id: Uuid::from_u128(0x0003),
        ip: None,
        user_agent: String::new(),
        user: None,
        action: Action::Stop,
        diff: [(
            "transition",
            DiffEntry::changed(json!("start"), json!("stop")),
        )]
        .into_iter()
        .collect(),
        additional_fields: object(json!({
            "automatic_actor": "autostop",
            "automatic_subsystem": "lifecycle_executor",
        })),
        build_reason: Some(BuildReason::Autostop),
        ..build.clone()
    };
    let site_wide_user_create = AuditEvent {
        id: Uuid::from_u128(0x0197_2b5e_1a2b_7c3d_8e4f_5a6b_7c8d_0004),
        request_id: Uuid::from_u128(0x0004),
        organization: None,
        resource_type: ResourceType::User,
        resource_id: Uuid::from_u128(0x0197_2b5e_0000_7000_8000_0000_0000_b0b0),
        resource_target: "bob".into(),
        resource_icon: String::new(),
        action: Action::Create,
        diff: [
            ("username", DiffEntry::changed(Value::Null, json!("bob"))),
            ("hashed_password", DiffEntry::secret()),
        ]
        .into_iter()
        .collect(),
        status_code: 201,
        additional_fields: Map::new(),
        build_reason: None,
        ..build.clone()
    };
    let git_ssh_key_write = AuditEvent {
        id: Uuid::from_u128(0x0197_2b5e_1a2b_7c3d_8e4f_5a6b_7c8d_0005),
        request_id: Uuid::from_u128(0x0005),
        organization: None,
        resource_type: ResourceType::GitSshKey,
        resource_id: Uuid::from_u128(0x0197_2b5e_0000_7000_8000_0000_0000_5500),
        resource_target: String::new(),
        resource_icon: String::new(),
        action: Action::Write,
        diff: [("private_key", DiffEntry::secret())].into_iter().collect(),
        additional_fields: Map::new(),
        build_reason: None,
        ..build.clone()
    };
    vec![
        build,
        login,
        failed_template_write,
        automatic_stop,
        site_wide_user_create,
        git_ssh_key_write,
    ]
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(object) => object,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_valid_and_distinct() {
        let events = sample_events();
        for event in &events {
            event.validate().unwrap();
        }
        let mut ids: Vec<Uuid> = events.iter().map(|event| event.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), events.len());
    }
}
