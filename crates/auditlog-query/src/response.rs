//! Coder's response types (`codersdk.AuditLogResponse`, `codersdk.AuditLog`) and how an
//! event becomes one.
//!
//! ```text
//!  ClickHouse row ──AuditLogRow::into_event──► AuditEvent ──AuditLog::from_event──► JSON
//! ```
//!
//! Coder joins the `users` and `organizations` tables to fill `user` and `organization`; we
//! have no such tables, so both come from the event's denormalized actor and organization,
//! as they were when the event happened. Fields Coder's `User` has and the event does not
//! carry (timestamps, status, roles, ...) are Go's zero values, which is what Coder's typed
//! clients decode without complaint.
//!
//! # What is derived
//!
//! - `description`: Coder's template (see `description.rs`), with literal `{user}` and
//!   `{target}` placeholders that Coder's UI fills in.
//! - `resource_link`, as Coder's `auditLogResourceLink`, where the event alone suffices:
//!   - `template`: `/templates/{organization name}/{resource_target}`;
//!   - `user`: `/users?filter={resource_target}`;
//!   - `workspace`: `/@{owner}/{resource_target}`, the owner being `workspace_owner` in
//!     `additional_fields` (Coder looks the owner up in its database; the actor is not
//!     necessarily the owner, so without that field the link is empty);
//!   - `workspace_build`: `/@{workspace_owner}/{workspace_name}/builds/{build_number}` from
//!     `additional_fields` (empty when any is missing, as in Coder);
//!   - `oauth2_provider_app`: `/deployment/oauth2-provider/apps/{resource_id}`;
//!   - everything else: empty, as in Coder (or because Coder needs a database lookup).
//! - `is_deleted`: true only for a successful `delete` event itself, whose resource is known
//!   to be gone; Coder asks its database, which this service does not have. A deleted
//!   resource has an empty `resource_link`, as in Coder.

use std::net::IpAddr;

use auditlog_event::{Action, AuditEvent, ResourceType};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::description::{STATUS_FIRST_FAILURE, description};
use crate::sql::COUNT_CAP;

/// `GET /api/v2/audit`'s body (`codersdk.AuditLogResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLogsResponse {
    /// The page, newest first.
    pub audit_logs: Vec<AuditLog>,
    /// Matching events, counted up to `count_cap + 1`.
    pub count: u64,
    /// The cap of `count`: clients show "2,000+" when `count > count_cap`.
    pub count_cap: u64,
}

impl AuditLogsResponse {
    /// A page with its capped count and Coder's cap.
    pub fn new(audit_logs: Vec<AuditLog>, count: u64) -> Self {
        Self {
            audit_logs,
            count,
            count_cap: COUNT_CAP,
        }
    }
}

/// One audit log as Coder's API returns it (`codersdk.AuditLog`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLog {
    /// The event's id.
    pub id: Uuid,
    /// The request that caused it.
    pub request_id: Uuid,
    /// When it happened, RFC 3339 (fractional seconds only when non-zero, as Go writes).
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The client's address, `""` when unknown (Go's zero `netip.Addr`).
    pub ip: String,
    /// The client's User-Agent.
    pub user_agent: String,
    /// The kind of resource touched.
    pub resource_type: String,
    /// The resource's id.
    pub resource_id: Uuid,
    /// The resource's name.
    pub resource_target: String,
    /// The resource's icon.
    pub resource_icon: String,
    /// What was done.
    pub action: String,
    /// Changed fields: `{field: {old?, new?, secret}}` (`old`/`new` omitted when null, as
    /// Go's `omitempty` does).
    pub diff: Map<String, Value>,
    /// The HTTP status of the operation.
    pub status_code: i32,
    /// Extra context, a JSON object.
    pub additional_fields: Map<String, Value>,
    /// Coder's description template (`{user} created workspace {target}`).
    pub description: String,
    /// Where the resource lives in Coder's UI, `""` when not derivable.
    pub resource_link: String,
    /// Whether the resource is known to be deleted.
    pub is_deleted: bool,
    /// The organization's id, nil for site-wide events (deprecated in Coder, still sent).
    pub organization_id: Uuid,
    /// The organization, omitted for site-wide events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<MinimalOrganization>,
    /// The actor, `null` for system actions.
    pub user: Option<User>,
}

/// `codersdk.MinimalOrganization`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinimalOrganization {
    /// The organization's id.
    pub id: Uuid,
    /// Its unique name.
    pub name: String,
    /// Its display name.
    pub display_name: String,
    /// Its icon.
    pub icon: String,
}

/// Go's zero `time.Time` as JSON.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `codersdk.User`: what the event carries, Go zero values for the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub id: Uuid,
    /// The login name at the time of the event.
    pub username: String,
    /// Not carried by events: `""`.
    pub avatar_url: String,
    /// The display name at the time of the event.
    pub name: String,
    /// The email at the time of the event.
    pub email: String,
    /// Not carried by events: Go's zero time.
    pub created_at: String,
    /// Not carried by events: Go's zero time.
    pub updated_at: String,
    /// Not carried by events: Go's zero time.
    pub last_seen_at: String,
    /// Not carried by events: `""`.
    pub status: String,
    /// Not carried by events: `""`.
    pub login_type: String,
    /// Not carried by events: `""`.
    pub theme_preference: String,
    /// Not carried by events: `[]` (Coder leaves it empty here too).
    pub organization_ids: Vec<Uuid>,
    /// Not carried by events: `[]`.
    pub roles: Vec<Value>,
}

impl User {
    fn from_actor(actor: &auditlog_event::Actor) -> Self {
        Self {
            id: actor.id,
            username: actor.username.clone(),
            avatar_url: String::new(),
            name: actor.name.clone(),
            email: actor.email.clone(),
            created_at: GO_ZERO_TIME.to_owned(),
            updated_at: GO_ZERO_TIME.to_owned(),
            last_seen_at: GO_ZERO_TIME.to_owned(),
            status: String::new(),
            login_type: String::new(),
            theme_preference: String::new(),
            organization_ids: Vec::new(),
            roles: Vec::new(),
        }
    }
}

impl AuditLog {
    /// Coder's view of an event; see the module docs for what is derived and how.
    pub fn from_event(event: &AuditEvent) -> Self {
        let is_deleted = event.action == Action::Delete && event.status_code < STATUS_FIRST_FAILURE;
        let resource_link = if is_deleted {
            String::new()
        } else {
            resource_link(event)
        };
        let diff = event
            .diff
            .iter()
            .map(|(field, entry)| {
                let mut object = Map::new();
                // Go's `omitempty` on an `any` drops nil, which is what JSON null decodes to.
                if !entry.old.is_null() {
                    object.insert("old".to_owned(), entry.old.clone());
                }
                if !entry.new.is_null() {
                    object.insert("new".to_owned(), entry.new.clone());
                }
                object.insert("secret".to_owned(), Value::Bool(entry.secret));
                (field.clone(), Value::Object(object))
            })
            .collect();
        Self {
            id: event.id,
            request_id: event.request_id,
            time: event.time,
            ip: event
                .ip
                .map(|ip: IpAddr| ip.to_string())
                .unwrap_or_default(),
            user_agent: event.user_agent.clone(),
            resource_type: event.resource_type.as_str().to_owned(),
            resource_id: event.resource_id,
            resource_target: event.resource_target.clone(),
            resource_icon: event.resource_icon.clone(),
            action: event.action.as_str().to_owned(),
            diff,
            status_code: event.status_code,
            additional_fields: event.additional_fields.clone(),
            description: description(event),
            resource_link,
            is_deleted,
            organization_id: event.organization_id(),
            organization: event
                .organization
                .as_ref()
                .map(|organization| MinimalOrganization {
                    id: organization.id,
                    name: organization.name.clone(),
                    display_name: organization.display_name.clone(),
                    icon: organization.icon.clone(),
                }),
            user: event.user.as_ref().map(User::from_actor),
        }
    }

    /// The description with `{user}` and `{target}` filled in, as Coder's UI shows it.
    pub fn readable_description(&self) -> String {
        let username = self
            .user
            .as_ref()
            .map_or("system", |user| user.username.as_str());
        self.description
            .replace("{user}", username)
            .replace("{target}", &self.resource_target)
    }

    /// The row of this log under [`CSV_HEADER`].
    pub fn csv_record(&self) -> [String; CSV_HEADER.len()] {
        let (organization_name, organization_display_name) = self
            .organization
            .as_ref()
            .map_or((String::new(), String::new()), |organization| {
                (organization.name.clone(), organization.display_name.clone())
            });
        let (user_id, username, email, name) = self.user.as_ref().map_or(
            (String::new(), String::new(), String::new(), String::new()),
            |user| {
                (
                    user.id.to_string(),
                    user.username.clone(),
                    user.email.clone(),
                    user.name.clone(),
                )
            },
        );
        let time = self
            .time
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        [
            self.id.to_string(),
            time,
            self.organization_id.to_string(),
            organization_name,
            organization_display_name,
            user_id,
            username,
            email,
            name,
            self.ip.clone(),
            self.user_agent.clone(),
            self.resource_type.clone(),
            self.resource_id.to_string(),
            self.resource_target.clone(),
            self.resource_icon.clone(),
            self.action.clone(),
            self.status_code.to_string(),
            self.description.clone(),
            self.resource_link.clone(),
            self.is_deleted.to_string(),
            self.request_id.to_string(),
            Value::Object(self.diff.clone()).to_string(),
            Value::Object(self.additional_fields.clone()).to_string(),
        ]
    }
}

/// The CSV export's columns: the audit log flattened, `diff` and `additional_fields` as JSON.
pub const CSV_HEADER: [&str; 23] = [
    "id",
    "time",
    "organization_id",
    "organization_name",
    "organization_display_name",
    "user_id",
    "username",
    "email",
    "user_name",
    "ip",
    "user_agent",
    "resource_type",
    "resource_id",
    "resource_target",
    "resource_icon",
    "action",
    "status_code",
    "description",
    "resource_link",
    "is_deleted",
    "request_id",
    "diff",
    "additional_fields",
];

fn additional_text<'a>(event: &'a AuditEvent, key: &str) -> Option<&'a str> {
    match event.additional_fields.get(key)? {
        Value::String(text) if !text.is_empty() => Some(text),
        _ => None,
    }
}

/// Build numbers are strings in Coder's additional fields; accept numbers too.
fn additional_number_or_text(event: &AuditEvent, key: &str) -> Option<String> {
    match event.additional_fields.get(key)? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn resource_link(event: &AuditEvent) -> String {
    match &event.resource_type {
        ResourceType::Template => match &event.organization {
            Some(organization) => {
                format!("/templates/{}/{}", organization.name, event.resource_target)
            }
            None => String::new(),
        },
        ResourceType::User => format!("/users?filter={}", event.resource_target),
        ResourceType::Workspace => match additional_text(event, "workspace_owner") {
            Some(owner) => format!("/@{owner}/{}", event.resource_target),
            None => String::new(),
        },
        ResourceType::WorkspaceBuild => {
            let owner = additional_text(event, "workspace_owner");
            let workspace = additional_text(event, "workspace_name");
            let build_number = additional_number_or_text(event, "build_number");
            match (owner, workspace, build_number) {
                (Some(owner), Some(workspace), Some(build_number)) => {
                    format!("/@{owner}/{workspace}/builds/{build_number}")
                }
                _ => String::new(),
            }
        }
        ResourceType::Oauth2ProviderApp => {
            format!("/deployment/oauth2-provider/apps/{}", event.resource_id)
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use auditlog_event::testing::sample_event;
    use auditlog_event::{BuildReason, DiffEntry};
    use serde_json::json;

    use super::*;

    #[test]
    fn site_wide_rows_omit_the_organization_and_system_rows_have_a_null_user() {
        let mut event = sample_event();
        event.organization = None;
        event.user = None;
        event.ip = None;
        let value = serde_json::to_value(AuditLog::from_event(&event)).unwrap();
        let object = value.as_object().unwrap();
        assert!(!object.contains_key("organization"));
        assert_eq!(object["user"], Value::Null);
        assert_eq!(object["ip"], json!(""));
        assert_eq!(
            object["organization_id"],
            json!("00000000-0000-0000-0000-000000000000")
        );
    }

    #[test]
    fn the_json_has_every_coder_field() {
        let event = sample_event();
        let value = serde_json::to_value(AuditLog::from_event(&event)).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "action",
                "additional_fields",
                "description",
                "diff",
                "id",
                "ip",
                "is_deleted",
                "organization",
                "organization_id",
                "request_id",
                "resource_icon",
                "resource_id",
                "resource_link",
                "resource_target",
                "resource_type",
                "status_code",
                "time",
                "user",
                "user_agent"
            ]
        );
        let mut user_keys: Vec<&str> = value["user"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        user_keys.sort_unstable();
        assert_eq!(
            user_keys,
            [
                "avatar_url",
                "created_at",
                "email",
                "id",
                "last_seen_at",
                "login_type",
                "name",
                "organization_ids",
                "roles",
                "status",
                "theme_preference",
                "updated_at",
                "username"
            ]
        );
        assert_eq!(value["time"], json!("2025-06-01T12:34:56.789012Z"));
    }

    #[test]
    fn secret_diff_fields_omit_old_and_new() {
        let mut event = sample_event();
        let mut diff = auditlog_event::Diff::new();
        diff.insert("token", DiffEntry::secret());
        diff.insert("name", DiffEntry::changed(json!("a"), json!("b")));
        event.diff = diff;
        let log = AuditLog::from_event(&event);
        assert_eq!(
            Value::Object(log.diff),
            json!({"token": {"secret": true}, "name": {"old": "a", "new": "b", "secret": false}})
        );
    }

    #[test]
    fn links_are_derived_where_the_event_suffices() {
        let mut event = sample_event();
        event.action = Action::Write;
        event.status_code = 200;
        event.resource_type = ResourceType::Template;
        event.resource_target = "docker".to_owned();
        let organization = event.organization.clone().unwrap().name;
        assert_eq!(
            AuditLog::from_event(&event).resource_link,
            format!("/templates/{organization}/docker")
        );

        event.resource_type = ResourceType::WorkspaceBuild;
        event.action = Action::Start;
        event.build_reason = Some(BuildReason::Initiator);
        event.additional_fields = json!({
            "workspace_name": "dev", "build_number": "7", "workspace_owner": "alice"
        })
        .as_object()
        .unwrap()
        .clone();
        assert_eq!(
            AuditLog::from_event(&event).resource_link,
            "/@alice/dev/builds/7"
        );

        event.resource_type = ResourceType::Workspace;
        event.resource_target = "dev".to_owned();
        assert_eq!(AuditLog::from_event(&event).resource_link, "/@alice/dev");
        event.additional_fields.clear();
        assert_eq!(AuditLog::from_event(&event).resource_link, "");

        event.resource_type = ResourceType::User;
        event.resource_target = "bob".to_owned();
        assert_eq!(
            AuditLog::from_event(&event).resource_link,
            "/users?filter=bob"
        );
        event.action = Action::Delete;
        let deleted = AuditLog::from_event(&event);
        assert!(deleted.is_deleted);
        assert_eq!(deleted.resource_link, "");
        event.status_code = 403;
        assert!(!AuditLog::from_event(&event).is_deleted);
    }

    #[test]
    fn csv_records_match_the_header() {
        let log = AuditLog::from_event(&sample_event());
        let record = log.csv_record();
        assert_eq!(record.len(), CSV_HEADER.len());
        assert_eq!(record[0], log.id.to_string());
        assert_eq!(record[1], "2025-06-01T12:34:56.789012Z");
        assert!(log.readable_description().starts_with("alice "));
    }
}
