//! The audit event itself, its builder, its validation and Coder's description text.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::avro::{json_len, json_len_bound, json_object_len_bound, varint_len};
use crate::limits::{
    MAX_ADDITIONAL_FIELDS_BYTES, MAX_DIFF_BYTES, MAX_TEXT_BYTES, MAX_TIME, MAX_USER_AGENT_CHARS,
    MIN_TIME,
};
use crate::{Action, BuildReason, Diff, EventError, ResourceType};

/// HTTP 303 See Other: Coder describes such events as redirected attempts.
const STATUS_SEE_OTHER: i32 = 303;

/// From this status on an operation failed.
const STATUS_FIRST_FAILURE: i32 = 400;

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
    /// assert_eq!(event.description(), "{user} created workspace {target}");
    /// # Ok::<(), auditlog_event::EventError>(())
    /// ```
    pub fn builder(resource_type: ResourceType, action: Action) -> AuditEventBuilder {
        AuditEventBuilder::new(resource_type, action)
    }

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

    /// Checks the event strictly, as a producer should: enum values must be known.
    ///
    /// ```
    /// use auditlog_event::{Action, AuditEvent, ResourceType};
    /// use uuid::Uuid;
    ///
    /// let mut event = AuditEvent::builder(ResourceType::User, Action::Write)
    ///     .with_request_id(Uuid::new_v4())
    ///     .with_resource_id(Uuid::new_v4())
    ///     .with_status_code(200)
    ///     .build()?;
    /// event.action = Action::from_wire("explode");
    /// assert!(event.validate().is_err());
    /// assert!(event.validate_allow_unknown().is_ok());
    /// # Ok::<(), auditlog_event::EventError>(())
    /// ```
    pub fn validate(&self) -> Result<(), EventError> {
        self.check(true)
    }

    /// Checks the event like [`Self::validate`], but keeps enum values this build does not
    /// know, as a reader of events from newer producers must.
    pub fn validate_allow_unknown(&self) -> Result<(), EventError> {
        self.check(false)
    }

    fn check(&self, strict: bool) -> Result<(), EventError> {
        if self.id.is_nil() {
            return Err(EventError::NilId { field: "id" });
        }
        if self.request_id.is_nil() {
            return Err(EventError::NilId {
                field: "request_id",
            });
        }
        if self.user.as_ref().is_some_and(|user| user.id.is_nil()) {
            return Err(EventError::NilId { field: "user.id" });
        }
        if self
            .organization
            .as_ref()
            .is_some_and(|organization| organization.id.is_nil())
        {
            return Err(EventError::NilId {
                field: "organization.id",
            });
        }
        if strict {
            check_known(&self.resource_type, ResourceType::KIND, |value| {
                value.is_known()
            })?;
            check_known(&self.action, Action::KIND, |value| value.is_known())?;
            if let Some(build_reason) = &self.build_reason {
                check_known(build_reason, BuildReason::KIND, |value| value.is_known())?;
            }
        }
        if !(100..=599).contains(&self.status_code) {
            return Err(EventError::InvalidStatusCode {
                status_code: self.status_code,
            });
        }
        if self.time < MIN_TIME || self.time > MAX_TIME {
            return Err(EventError::TimeOutOfRange {
                micros: unix_micros_saturating(self.time),
            });
        }
        if self.build_reason.is_some() && !self.may_have_build_reason() {
            return Err(EventError::BuildReasonNotAllowed {
                resource_type: self.resource_type.to_string(),
                action: self.action.to_string(),
            });
        }
        self.check_lengths()?;
        self.check_diff()?;
        self.check_additional_fields()?;
        Ok(())
    }

    /// Coder records a build reason for builds, and for a workspace's creation (the reason
    /// of its first build); unknown values from newer producers get the benefit of the doubt.
    fn may_have_build_reason(&self) -> bool {
        matches!(
            (&self.resource_type, &self.action),
            (ResourceType::WorkspaceBuild | ResourceType::Unknown(_), _)
                | (ResourceType::Workspace, Action::Create | Action::Unknown(_))
        )
    }

    fn check_lengths(&self) -> Result<(), EventError> {
        // Byte length bounds the character count, so counting characters is rarely needed.
        if self.user_agent.len() > MAX_USER_AGENT_CHARS {
            let chars = self.user_agent.chars().count();
            if chars > MAX_USER_AGENT_CHARS {
                return Err(EventError::TooLong {
                    field: "user_agent",
                    len: chars,
                    max: MAX_USER_AGENT_CHARS,
                    unit: "chars",
                });
            }
        }
        let (username, email, user_name) = self.user.as_ref().map_or(("", "", ""), |user| {
            (
                user.username.as_str(),
                user.email.as_str(),
                user.name.as_str(),
            )
        });
        let (organization_name, organization_display_name, organization_icon) = self
            .organization
            .as_ref()
            .map_or(("", "", ""), |organization| {
                (
                    organization.name.as_str(),
                    organization.display_name.as_str(),
                    organization.icon.as_str(),
                )
            });
        let texts = [
            ("resource_type", self.resource_type.as_str()),
            ("action", self.action.as_str()),
            ("resource_target", &self.resource_target),
            ("resource_icon", &self.resource_icon),
            (
                "build_reason",
                self.build_reason.as_ref().map_or("", BuildReason::as_str),
            ),
            ("user.username", username),
            ("user.email", email),
            ("user.name", user_name),
            ("organization.name", organization_name),
            ("organization.display_name", organization_display_name),
            ("organization.icon", organization_icon),
        ];
        for (field, text) in texts {
            if text.len() > MAX_TEXT_BYTES {
                return Err(EventError::TooLong {
                    field,
                    len: text.len(),
                    max: MAX_TEXT_BYTES,
                    unit: "bytes",
                });
            }
        }
        Ok(())
    }

    fn check_additional_fields(&self) -> Result<(), EventError> {
        // The cheap bound settles typical events without serializing anything.
        if json_object_len_bound(&self.additional_fields) <= MAX_ADDITIONAL_FIELDS_BYTES {
            return Ok(());
        }
        let len = json_len(&self.additional_fields);
        if len > MAX_ADDITIONAL_FIELDS_BYTES {
            return Err(EventError::TooLong {
                field: "additional_fields",
                len,
                max: MAX_ADDITIONAL_FIELDS_BYTES,
                unit: "bytes",
            });
        }
        Ok(())
    }

    fn check_diff(&self) -> Result<(), EventError> {
        for (field, entry) in &self.diff {
            if entry.secret && !(entry.old.is_null() && entry.new.is_null()) {
                return Err(EventError::SecretValueInDiff {
                    field: field.clone(),
                });
            }
        }
        // The cheap bound settles typical events without serializing anything.
        if self.diff_encoded_len(json_len_bound) <= MAX_DIFF_BYTES {
            return Ok(());
        }
        let encoded_len = self.diff_encoded_len(json_len);
        if encoded_len > MAX_DIFF_BYTES {
            return Err(EventError::TooLong {
                field: "diff",
                len: encoded_len,
                max: MAX_DIFF_BYTES,
                unit: "bytes",
            });
        }
        Ok(())
    }

    /// Size of the diff in the Avro datum, given a way to measure JSON text.
    fn diff_encoded_len(&self, json_len: fn(&Value) -> usize) -> usize {
        let encoded_array_len = |text_len: usize| varint_len(text_len) + text_len;
        let entries_len: usize = self
            .diff
            .iter()
            .map(|(field, entry)| {
                const SECRET_FLAG_LEN: usize = 1;
                encoded_array_len(field.len())
                    + encoded_array_len(json_len(&entry.old))
                    + encoded_array_len(json_len(&entry.new))
                    + SECRET_FLAG_LEN
            })
            .sum();
        // One block: its count and the closing zero.
        varint_len(self.diff.len()) + entries_len + 1
    }

    /// Coder's description template, with literal `{user}` and `{target}` placeholders that
    /// the UI fills in.
    ///
    /// ```
    /// use auditlog_event::testing::sample_event;
    /// use auditlog_event::{Action, ResourceType};
    ///
    /// let mut event = sample_event();
    /// event.resource_type = ResourceType::Template;
    /// event.action = Action::Write;
    /// assert_eq!(event.description(), "{user} updated template {target}");
    /// event.status_code = 403;
    /// assert_eq!(event.description(), "{user} unsuccessfully attempted to write template {target}");
    /// ```
    pub fn description(&self) -> String {
        let mut text = String::with_capacity(64);
        // Anyone who knows a user's email can request a password reset for them, so Coder
        // does not say the user did it.
        if self.action != Action::RequestPasswordReset {
            text.push_str("{user} ");
        }
        if self.status_code == STATUS_SEE_OTHER {
            text.push_str("was redirected attempting to ");
            text.push_str(self.action.as_str());
        } else if self.status_code >= STATUS_FIRST_FAILURE {
            text.push_str("unsuccessfully attempted to ");
            text.push_str(self.action.as_str());
        } else {
            text.push_str(self.action.friendly());
        }

        // Logging in and out names no resource: "{user} logged in".
        if self.resource_type == ResourceType::ApiKey
            && matches!(
                self.action,
                Action::Login | Action::Logout | Action::Register
            )
        {
            return text;
        }
        // A git ssh key's target is the long key itself, which Coder does not show.
        if self.resource_type == ResourceType::GitSshKey {
            text.push_str(" the ");
            text.push_str(self.resource_type.friendly());
            return text;
        }
        text.push(' ');
        text.push_str(self.resource_type.friendly());
        if self.resource_type == ResourceType::ConvertLogin {
            text.push_str(" to");
        }
        text.push_str(" {target}");
        text
    }
}

fn check_known<T: std::fmt::Display>(
    value: &T,
    kind: &'static str,
    is_known: impl Fn(&T) -> bool,
) -> Result<(), EventError> {
    if is_known(value) {
        return Ok(());
    }
    Err(EventError::UnknownValue {
        kind,
        value: value.to_string(),
    })
}

/// Microseconds since the Unix epoch, floored, saturating at the ends of `i64`.
pub(crate) fn unix_micros_saturating(time: OffsetDateTime) -> i64 {
    let micros = time.unix_timestamp_nanos().div_euclid(1000);
    i64::try_from(micros).unwrap_or(if micros < 0 { i64::MIN } else { i64::MAX })
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
    use crate::DiffEntry;
    use crate::testing::sample_event;

    fn event(resource_type: ResourceType, action: Action, status_code: i32) -> AuditEvent {
        AuditEvent {
            resource_type,
            action,
            status_code,
            build_reason: None,
            ..sample_event()
        }
    }

    fn describe(resource_type: ResourceType, action: Action, status_code: i32) -> String {
        event(resource_type, action, status_code).description()
    }

    #[test]
    fn description_is_actor_friendly_action_resource_and_target() {
        use Action::*;
        use ResourceType::*;
        assert_eq!(
            describe(Workspace, Create, 201),
            "{user} created workspace {target}"
        );
        assert_eq!(
            describe(Template, Write, 200),
            "{user} updated template {target}"
        );
        assert_eq!(describe(User, Delete, 200), "{user} deleted user {target}");
        assert_eq!(
            describe(Workspace, Start, 200),
            "{user} started workspace {target}"
        );
        assert_eq!(
            describe(WorkspaceApp, Open, 200),
            "{user} opened workspace app {target}"
        );
        assert_eq!(
            describe(WorkspaceAgent, Connect, 200),
            "{user} connected workspace agent {target}"
        );
    }

    #[test]
    fn description_uses_coders_friendly_resource_words() {
        use Action::*;
        use ResourceType::*;
        assert_eq!(
            describe(WorkspaceBuild, Start, 200),
            "{user} started workspace {target}"
        );
        assert_eq!(
            describe(ApiKey, Create, 201),
            "{user} created token {target}"
        );
        assert_eq!(
            describe(Oauth2ProviderApp, Delete, 200),
            "{user} deleted oauth2 app {target}"
        );
        assert_eq!(
            describe(IdpSyncSettingsGroup, Write, 200),
            "{user} updated settings {target}"
        );
        assert_eq!(
            describe(TemplateVersion, Create, 200),
            "{user} created template version {target}"
        );
    }

    #[test]
    fn failed_operations_use_the_raw_action() {
        use Action::*;
        use ResourceType::*;
        assert_eq!(
            describe(Workspace, Write, 400),
            "{user} unsuccessfully attempted to write workspace {target}"
        );
        assert_eq!(
            describe(Template, Delete, 500),
            "{user} unsuccessfully attempted to delete template {target}"
        );
        assert_eq!(
            describe(WorkspaceBuild, Start, 403),
            "{user} unsuccessfully attempted to start workspace {target}"
        );
        // 399 still succeeded.
        assert_eq!(
            describe(Workspace, Write, 399),
            "{user} updated workspace {target}"
        );
    }

    #[test]
    fn redirects_are_attempts() {
        assert_eq!(
            describe(ResourceType::WorkspaceApp, Action::Open, 303),
            "{user} was redirected attempting to open workspace app {target}"
        );
        assert_eq!(
            describe(ResourceType::WorkspaceApp, Action::Open, 302),
            "{user} opened workspace app {target}"
        );
    }

    #[test]
    fn api_key_login_logout_register_have_no_resource_words() {
        use Action::*;
        use ResourceType::*;
        assert_eq!(describe(ApiKey, Login, 201), "{user} logged in");
        assert_eq!(describe(ApiKey, Logout, 200), "{user} logged out");
        assert_eq!(describe(ApiKey, Register, 201), "{user} registered");
        assert_eq!(
            describe(ApiKey, Login, 401),
            "{user} unsuccessfully attempted to login"
        );
        assert_eq!(
            describe(ApiKey, Login, 303),
            "{user} was redirected attempting to login"
        );
        // Only api_key gets the short form.
        assert_eq!(describe(User, Login, 201), "{user} logged in user {target}");
    }

    #[test]
    fn git_ssh_key_reads_the_git_ssh_key_without_target() {
        use Action::*;
        use ResourceType::*;
        assert_eq!(
            describe(GitSshKey, Create, 201),
            "{user} created the git ssh key"
        );
        assert_eq!(
            describe(GitSshKey, Write, 500),
            "{user} unsuccessfully attempted to write the git ssh key"
        );
    }

    #[test]
    fn convert_login_adds_to_before_the_target() {
        assert_eq!(
            describe(ResourceType::ConvertLogin, Action::Create, 201),
            "{user} created login type conversion to {target}"
        );
        assert_eq!(
            describe(ResourceType::ConvertLogin, Action::Create, 400),
            "{user} unsuccessfully attempted to create login type conversion to {target}"
        );
    }

    #[test]
    fn password_reset_requests_are_not_attributed_to_the_user() {
        assert_eq!(
            describe(ResourceType::User, Action::RequestPasswordReset, 200),
            "password reset requested user {target}"
        );
        assert_eq!(
            describe(ResourceType::User, Action::RequestPasswordReset, 404),
            "unsuccessfully attempted to request_password_reset user {target}"
        );
    }

    #[test]
    fn unknown_values_are_described_with_their_wire_text() {
        assert_eq!(
            describe(
                ResourceType::from_wire("spaceship"),
                Action::from_wire("launch"),
                200
            ),
            "{user} launch spaceship {target}"
        );
    }

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

    #[test]
    fn validate_rejects_nil_ids() {
        let mut event = sample_event();
        event.id = Uuid::nil();
        assert_eq!(
            event.validate().unwrap_err().to_string(),
            "id must not be the nil uuid"
        );
        let mut event = sample_event();
        event.request_id = Uuid::nil();
        assert_eq!(
            event.validate().unwrap_err().to_string(),
            "request_id must not be the nil uuid"
        );
        let mut event = sample_event();
        event.user.as_mut().unwrap().id = Uuid::nil();
        assert_eq!(
            event.validate().unwrap_err().to_string(),
            "user.id must not be the nil uuid"
        );
        let mut event = sample_event();
        event.organization.as_mut().unwrap().id = Uuid::nil();
        assert_eq!(
            event.validate().unwrap_err().to_string(),
            "organization.id must not be the nil uuid"
        );
    }

    #[test]
    fn strict_validation_rejects_unknown_enum_values_lenient_keeps_them() {
        let mut event = sample_event();
        event.build_reason = Some(BuildReason::from_wire("moonphase"));
        assert_eq!(
            event.validate().unwrap_err().to_string(),
            r#"build_reason has invalid value: "moonphase" is not a valid value"#
        );
        assert!(event.validate_allow_unknown().is_ok());
        let mut event = sample_event();
        event.resource_type = ResourceType::from_wire("spaceship");
        assert!(matches!(
            event.validate(),
            Err(EventError::UnknownValue {
                kind: "resource_type",
                ..
            })
        ));
        assert!(event.validate_allow_unknown().is_ok());
    }

    #[test]
    fn validate_rejects_oversized_fields() {
        let mut event = sample_event();
        event.user_agent = "a".repeat(MAX_USER_AGENT_CHARS + 1);
        assert_eq!(
            event.validate().unwrap_err().to_string(),
            "user_agent is 257 chars long, the limit is 256"
        );
        // 256 multi-byte characters are fine: the limit counts characters, like varchar.
        event.user_agent = "é".repeat(MAX_USER_AGENT_CHARS);
        assert!(event.validate().is_ok());

        let mut event = sample_event();
        event.resource_target = "t".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(
            event.validate().unwrap_err().to_string(),
            "resource_target is 4097 bytes long, the limit is 4096"
        );
        let mut event = sample_event();
        event.organization.as_mut().unwrap().icon = "i".repeat(MAX_TEXT_BYTES + 1);
        assert!(matches!(
            event.validate(),
            Err(EventError::TooLong {
                field: "organization.icon",
                ..
            })
        ));

        let mut event = sample_event();
        event.diff.insert(
            "blob",
            DiffEntry::changed(Value::Null, Value::String("x".repeat(MAX_DIFF_BYTES))),
        );
        assert!(matches!(
            event.validate(),
            Err(EventError::TooLong { field: "diff", .. })
        ));

        let mut event = sample_event();
        event.additional_fields.insert(
            "blob".into(),
            Value::String("x".repeat(MAX_ADDITIONAL_FIELDS_BYTES)),
        );
        assert!(matches!(
            event.validate(),
            Err(EventError::TooLong {
                field: "additional_fields",
                ..
            })
        ));
    }

    #[test]
    fn diff_size_counts_exactly_what_the_encoder_writes() {
        let with_diff = sample_event();
        let without_diff = AuditEvent {
            diff: Diff::new(),
            ..sample_event()
        };
        let mut with_bytes = Vec::new();
        crate::avro::encode_datum(&with_diff, &mut with_bytes).unwrap();
        let mut without_bytes = Vec::new();
        crate::avro::encode_datum(&without_diff, &mut without_bytes).unwrap();
        // An empty diff encodes as the closing zero alone.
        assert_eq!(
            with_bytes.len() - without_bytes.len() + 1,
            with_diff.diff_encoded_len(json_len)
        );
        assert!(with_diff.diff_encoded_len(json_len_bound) >= with_diff.diff_encoded_len(json_len));
    }

    #[test]
    fn validate_rejects_secret_diff_entries_with_values() {
        let mut event = sample_event();
        event.diff.insert(
            "token",
            DiffEntry {
                old: Value::Null,
                new: json!("leaked"),
                secret: true,
            },
        );
        assert_eq!(
            event.validate().unwrap_err().to_string(),
            r#"secret diff field "token" must not carry values"#
        );
    }

    #[test]
    fn validate_rejects_build_reasons_outside_builds() {
        let mut event = event(ResourceType::Template, Action::Write, 200);
        event.build_reason = Some(BuildReason::Cli);
        assert_eq!(
            event.validate().unwrap_err().to_string(),
            "build_reason is only allowed on workspace_build and workspace create events, not template write"
        );
        let mut event = self::event(ResourceType::Workspace, Action::Create, 201);
        event.build_reason = Some(BuildReason::Cli);
        assert!(event.validate().is_ok());
        let mut event = self::event(ResourceType::WorkspaceBuild, Action::Stop, 200);
        event.build_reason = Some(BuildReason::Autostop);
        assert!(event.validate().is_ok());
    }

    #[test]
    fn validate_rejects_bad_status_codes_and_times() {
        let event = self::event(ResourceType::Workspace, Action::Write, 42);
        assert_eq!(
            event.validate().unwrap_err().to_string(),
            "status_code 42 is not an http status"
        );
        let mut event = sample_event();
        event.time = datetime!(1899-12-31 23:59:59 UTC);
        assert_eq!(
            event.validate().unwrap_err().to_string(),
            "time -2208988801000000 us since the epoch is out of range"
        );
        event.time = MIN_TIME;
        assert!(event.validate().is_ok());
        event.time = MAX_TIME;
        assert!(event.validate().is_ok());
    }

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
        assert_eq!(event.description(), "{user} deleted workspace {target}");
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
