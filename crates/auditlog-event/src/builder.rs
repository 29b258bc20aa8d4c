//! [`AuditEventBuilder`]: assembles an [`AuditEvent`] from what the caller knows, fills in
//! the defaults, and validates the result strictly.

use std::net::IpAddr;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::limits::MAX_USER_AGENT_CHARS;
use crate::{Action, Actor, AuditEvent, BuildReason, Diff, EventError, Organization, ResourceType};

impl AuditEvent {
    /// Starts an event about `action` on a resource of `resource_type`.
    ///
    /// ```
    /// use auditlog_event::{Action, AuditEvent, ResourceType};
    /// use uuid::Uuid;
    ///
    /// let event = AuditEvent::builder(ResourceType::Workspace, Action::Create)
    ///     .with_request_id(Uuid::new_v4())
    ///     .with_resource_id(Uuid::new_v4())
    ///     .with_resource_target("dev")
    ///     .with_status_code(201)
    ///     .build()?;
    /// assert_eq!(event.resource_target, "dev");
    /// # Ok::<(), auditlog_event::EventError>(())
    /// ```
    pub fn builder(resource_type: ResourceType, action: Action) -> AuditEventBuilder {
        AuditEventBuilder::new(resource_type, action)
    }
}

/// Builds an [`AuditEvent`]; [`Self::build`] validates it.
///
/// Required: the resource type and action (given to [`AuditEvent::builder`]), and
/// [`Self::with_request_id`], [`Self::with_resource_id`] and [`Self::with_status_code`].
/// Everything else has a default: a fresh UUID v7 id, the current time, no client address,
/// no actor (a system action), site-wide, no diff, no additional fields.
#[derive(Debug, Clone)]
pub struct AuditEventBuilder {
    id: Option<Uuid>,
    time: Option<OffsetDateTime>,
    request_id: Option<Uuid>,
    ip: Option<IpAddr>,
    user_agent: String,
    user: Option<Actor>,
    organization: Option<Organization>,
    resource_type: ResourceType,
    resource_id: Option<Uuid>,
    resource_target: String,
    resource_icon: String,
    action: Action,
    diff: Diff,
    status_code: Option<i32>,
    additional_fields: Value,
    build_reason: Option<BuildReason>,
}

impl AuditEventBuilder {
    fn new(resource_type: ResourceType, action: Action) -> Self {
        AuditEventBuilder {
            id: None,
            time: None,
            request_id: None,
            ip: None,
            user_agent: String::new(),
            user: None,
            organization: None,
            resource_type,
            resource_id: None,
            resource_target: String::new(),
            resource_icon: String::new(),
            action,
            diff: Diff::new(),
            status_code: None,
            additional_fields: Value::Object(Map::new()),
            build_reason: None,
        }
    }

    /// Sets the event id instead of a fresh UUID v7.
    pub fn with_id(mut self, id: Uuid) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the time instead of now; it is converted to UTC and truncated to microseconds.
    pub fn with_time(mut self, time: OffsetDateTime) -> Self {
        self.time = Some(time);
        self
    }

    /// Sets the id of the request that caused the event (required).
    pub fn with_request_id(mut self, request_id: Uuid) -> Self {
        self.request_id = Some(request_id);
        self
    }

    /// Sets the client's address.
    pub fn with_ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// Sets the client's User-Agent, cut to [`MAX_USER_AGENT_CHARS`] characters.
    ///
    /// The client controls this text; cutting it, rather than rejecting the event, keeps a
    /// client from suppressing its own audit record with a long User-Agent.
    pub fn with_user_agent(mut self, user_agent: impl Into<String>) -> Self {
        let mut user_agent = user_agent.into();
        if let Some((cut_at, _)) = user_agent.char_indices().nth(MAX_USER_AGENT_CHARS) {
            user_agent.truncate(cut_at);
        }
        self.user_agent = user_agent;
        self
    }

    /// Sets the actor; without one the event is a system action.
    pub fn with_user(mut self, user: Actor) -> Self {
        self.user = Some(user);
        self
    }

    /// Sets the organization; without one the event is site-wide.
    pub fn with_organization(mut self, organization: Organization) -> Self {
        self.organization = Some(organization);
        self
    }

    /// Sets the id of the resource touched (required).
    pub fn with_resource_id(mut self, resource_id: Uuid) -> Self {
        self.resource_id = Some(resource_id);
        self
    }

    /// Sets the resource's human name.
    pub fn with_resource_target(mut self, resource_target: impl Into<String>) -> Self {
        self.resource_target = resource_target.into();
        self
    }

    /// Sets the resource's icon.
    pub fn with_resource_icon(mut self, resource_icon: impl Into<String>) -> Self {
        self.resource_icon = resource_icon.into();
        self
    }

    /// Sets what changed.
    pub fn with_diff(mut self, diff: Diff) -> Self {
        self.diff = diff;
        self
    }

    /// Sets the HTTP status of the operation (required).
    pub fn with_status_code(mut self, status_code: i32) -> Self {
        self.status_code = Some(status_code);
        self
    }

    /// Sets the extra context; [`Self::build`] rejects anything but a JSON object.
    pub fn with_additional_fields(mut self, additional_fields: Value) -> Self {
        self.additional_fields = additional_fields;
        self
    }

    /// Sets why a workspace build ran.
    pub fn with_build_reason(mut self, build_reason: BuildReason) -> Self {
        self.build_reason = Some(build_reason);
        self
    }

    /// Assembles the event and [validates](AuditEvent::validate) it strictly.
    pub fn build(self) -> Result<AuditEvent, EventError> {
        let Some(request_id) = self.request_id else {
            return Err(EventError::MissingField {
                field: "request_id",
            });
        };
        let Some(resource_id) = self.resource_id else {
            return Err(EventError::MissingField {
                field: "resource_id",
            });
        };
        let Some(status_code) = self.status_code else {
            return Err(EventError::MissingField {
                field: "status_code",
            });
        };
        let Value::Object(additional_fields) = self.additional_fields else {
            return Err(EventError::NotAnObject {
                field: "additional_fields",
            });
        };
        let time = self
            .time
            .unwrap_or_else(OffsetDateTime::now_utc)
            .to_offset(time::UtcOffset::UTC)
            .truncate_to_microsecond();
        let event = AuditEvent {
            id: self.id.unwrap_or_else(Uuid::now_v7),
            time,
            request_id,
            ip: self.ip,
            user_agent: self.user_agent,
            user: self.user,
            organization: self.organization,
            resource_type: self.resource_type,
            resource_id,
            resource_target: self.resource_target,
            resource_icon: self.resource_icon,
            action: self.action,
            diff: self.diff,
            status_code,
            additional_fields,
            build_reason: self.build_reason,
        };
        event.validate()?;
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn builder() -> AuditEventBuilder {
        AuditEvent::builder(ResourceType::Workspace, Action::Write)
            .with_request_id(Uuid::from_u128(1))
            .with_resource_id(Uuid::from_u128(2))
            .with_status_code(200)
    }

    #[test]
    fn builder_fills_defaults() {
        let before = OffsetDateTime::now_utc().truncate_to_microsecond();
        let event = builder().build().unwrap();
        assert_eq!(event.id.get_version_num(), 7);
        assert!(event.time >= before && event.time <= OffsetDateTime::now_utc());
        assert_eq!(event.time.nanosecond() % 1000, 0);
        assert_eq!(event.user_id(), Uuid::nil());
        assert_eq!(event.organization_id(), Uuid::nil());
        assert!(event.diff.is_empty() && event.additional_fields.is_empty());
    }

    #[test]
    fn builder_requires_request_id_resource_id_and_status() {
        let bare = AuditEvent::builder(ResourceType::Workspace, Action::Write);
        let error = bare.clone().build().unwrap_err();
        assert_eq!(error.to_string(), "missing required field request_id");
        let error = bare
            .clone()
            .with_request_id(Uuid::from_u128(1))
            .build()
            .unwrap_err();
        assert_eq!(error.to_string(), "missing required field resource_id");
        let error = bare
            .with_request_id(Uuid::from_u128(1))
            .with_resource_id(Uuid::from_u128(1))
            .build()
            .unwrap_err();
        assert_eq!(error.to_string(), "missing required field status_code");
    }

    #[test]
    fn builder_normalizes_time_to_utc_microseconds() {
        let event = builder()
            .with_time(datetime!(2025-03-04 05:06:07.123456789 +02:00))
            .build()
            .unwrap();
        assert_eq!(event.time, datetime!(2025-03-04 03:06:07.123456 UTC));
        assert!(event.time.offset().is_utc());
    }

    #[test]
    fn builder_cuts_long_user_agents_at_a_char_boundary() {
        let event = builder().with_user_agent("é".repeat(300)).build().unwrap();
        assert_eq!(event.user_agent.chars().count(), MAX_USER_AGENT_CHARS);
    }

    #[test]
    fn builder_rejects_non_object_additional_fields() {
        let error = builder()
            .with_additional_fields(json!(["a"]))
            .build()
            .unwrap_err();
        assert_eq!(error.to_string(), "additional_fields must be a json object");
    }
}
