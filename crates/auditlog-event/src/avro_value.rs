//! The generic (apache-avro `Value`) binding of [`AuditEvent`]: the reference path.
//!
//! Slow but schema-driven. It decodes messages written with older schema versions (apache-avro
//! resolves them into the newest schema first), and the tests and benchmark hold the fast
//! path in `avro.rs` against it.

use apache_avro::types::Value as AvroValue;
use serde_json::Value as JsonValue;
use uuid::Uuid;

use crate::micros::{from_unix_micros, unix_micros};
use crate::schema::SchemaVersion;
use crate::{
    Action, Actor, AuditEvent, BuildReason, Diff, DiffEntry, EventError, Organization,
    ResourceType, newest_schema,
};

impl AuditEvent {
    /// The event as an apache-avro record of the newest schema.
    ///
    /// ```
    /// use auditlog_event::{newest_schema, testing::sample_event};
    ///
    /// let value = sample_event().to_avro_value()?;
    /// let datum = apache_avro::to_avro_datum(newest_schema().schema(), value).unwrap();
    /// assert!(!datum.is_empty());
    /// # Ok::<(), auditlog_event::EventError>(())
    /// ```
    pub fn to_avro_value(&self) -> Result<AvroValue, EventError> {
        let user = self.user.as_ref().map(|user| {
            AvroValue::Record(vec![
                ("id".into(), AvroValue::Uuid(user.id)),
                ("username".into(), AvroValue::String(user.username.clone())),
                ("email".into(), AvroValue::String(user.email.clone())),
                ("name".into(), AvroValue::String(user.name.clone())),
            ])
        });
        let organization = self.organization.as_ref().map(|organization| {
            AvroValue::Record(vec![
                ("id".into(), AvroValue::Uuid(organization.id)),
                ("name".into(), AvroValue::String(organization.name.clone())),
                (
                    "display_name".into(),
                    AvroValue::String(organization.display_name.clone()),
                ),
                ("icon".into(), AvroValue::String(organization.icon.clone())),
            ])
        });
        let diff = self
            .diff
            .iter()
            .map(|(field, entry)| {
                AvroValue::Record(vec![
                    ("field".into(), AvroValue::String(field.clone())),
                    ("old".into(), AvroValue::String(entry.old.to_string())),
                    ("new".into(), AvroValue::String(entry.new.to_string())),
                    ("secret".into(), AvroValue::Boolean(entry.secret)),
                ])
            })
            .collect();
        let additional_fields =
            serde_json::to_string(&self.additional_fields).map_err(|error| {
                EventError::InvalidJson {
                    field: "additional_fields",
                    reason: error.to_string(),
                }
            })?;
        Ok(AvroValue::Record(vec![
            ("id".into(), AvroValue::Uuid(self.id)),
            (
                "time".into(),
                AvroValue::TimestampMicros(unix_micros(self.time)?),
            ),
            ("request_id".into(), AvroValue::Uuid(self.request_id)),
            (
                "ip".into(),
                optional(self.ip.map(|ip| AvroValue::String(ip.to_string()))),
            ),
            (
                "user_agent".into(),
                AvroValue::String(self.user_agent.clone()),
            ),
            ("user".into(), optional(user)),
            ("organization".into(), optional(organization)),
            (
                "resource_type".into(),
                AvroValue::String(self.resource_type.as_str().to_owned()),
            ),
            ("resource_id".into(), AvroValue::Uuid(self.resource_id)),
            (
                "resource_target".into(),
                AvroValue::String(self.resource_target.clone()),
            ),
            (
                "resource_icon".into(),
                AvroValue::String(self.resource_icon.clone()),
            ),
            (
                "action".into(),
                AvroValue::String(self.action.as_str().to_owned()),
            ),
            ("diff".into(), AvroValue::Array(diff)),
            ("status_code".into(), AvroValue::Int(self.status_code)),
            (
                "additional_fields".into(),
                AvroValue::String(additional_fields),
            ),
            (
                "build_reason".into(),
                optional(
                    self.build_reason
                        .as_ref()
                        .map(|reason| AvroValue::String(reason.as_str().to_owned())),
                ),
            ),
        ]))
    }

    /// Reads an apache-avro record of the newest schema (resolve older data into it first).
    ///
    /// ```
    /// use auditlog_event::{AuditEvent, newest_schema, testing::sample_event};
    ///
    /// let event = sample_event();
    /// let value = event.to_avro_value()?;
    /// assert_eq!(AuditEvent::from_avro_value(value)?, event);
    /// # Ok::<(), auditlog_event::EventError>(())
    /// ```
    pub fn from_avro_value(value: AvroValue) -> Result<Self, EventError> {
        let AvroValue::Record(fields) = value else {
            return Err(EventError::SchemaMismatch {
                field: "AuditEvent",
            });
        };
        let mut record = Fields(fields);
        let ip = match record.optional("ip")? {
            None => None,
            Some(value) => {
                let text = string(value, "ip")?;
                if text.is_empty() {
                    None
                } else {
                    Some(text.parse().map_err(|_| EventError::InvalidIp)?)
                }
            }
        };
        let user = match record.optional("user")? {
            None => None,
            Some(value) => {
                let mut user = Fields::of(value, "user")?;
                Some(Actor {
                    id: uuid(user.take("id")?, "user.id")?,
                    username: string(user.take("username")?, "user.username")?,
                    email: string(user.take("email")?, "user.email")?,
                    name: string(user.take("name")?, "user.name")?,
                })
            }
        };
        let organization = match record.optional("organization")? {
            None => None,
            Some(value) => {
                let mut organization = Fields::of(value, "organization")?;
                Some(Organization {
                    id: uuid(organization.take("id")?, "organization.id")?,
                    name: string(organization.take("name")?, "organization.name")?,
                    display_name: string(
                        organization.take("display_name")?,
                        "organization.display_name",
                    )?,
                    icon: string(organization.take("icon")?, "organization.icon")?,
                })
            }
        };
        let AvroValue::Array(diff_items) = record.take("diff")? else {
            return Err(EventError::SchemaMismatch { field: "diff" });
        };
        let mut diff = Diff::new();
        for item in diff_items {
            let mut entry = Fields::of(item, "diff")?;
            let field = string(entry.take("field")?, "diff.field")?;
            let old = json(entry.take("old")?, "diff.old")?;
            let new = json(entry.take("new")?, "diff.new")?;
            let AvroValue::Boolean(secret) = entry.take("secret")? else {
                return Err(EventError::SchemaMismatch {
                    field: "diff.secret",
                });
            };
            if diff.get(&field).is_some() {
                return Err(EventError::DuplicateDiffField { field });
            }
            diff.insert(field, DiffEntry { old, new, secret });
        }
        let JsonValue::Object(additional_fields) =
            json(record.take("additional_fields")?, "additional_fields")?
        else {
            return Err(EventError::NotAnObject {
                field: "additional_fields",
            });
        };
        let time = match record.take("time")? {
            AvroValue::TimestampMicros(micros) | AvroValue::Long(micros) => {
                from_unix_micros(micros)?
            }
            _ => return Err(EventError::SchemaMismatch { field: "time" }),
        };
        let AvroValue::Int(status_code) = record.take("status_code")? else {
            return Err(EventError::SchemaMismatch {
                field: "status_code",
            });
        };
        let build_reason = match record.optional("build_reason")? {
            None => None,
            Some(value) => Some(BuildReason::from_wire(&string(value, "build_reason")?)),
        };
        Ok(AuditEvent {
            id: uuid(record.take("id")?, "id")?,
            time,
            request_id: uuid(record.take("request_id")?, "request_id")?,
            ip,
            user_agent: string(record.take("user_agent")?, "user_agent")?,
            user,
            organization,
            resource_type: ResourceType::from_wire(&string(
                record.take("resource_type")?,
                "resource_type",
            )?),
            resource_id: uuid(record.take("resource_id")?, "resource_id")?,
            resource_target: string(record.take("resource_target")?, "resource_target")?,
            resource_icon: string(record.take("resource_icon")?, "resource_icon")?,
            action: Action::from_wire(&string(record.take("action")?, "action")?),
            diff,
            status_code,
            additional_fields,
            build_reason,
        })
    }
}

/// Decodes a datum written with `writer` and resolves it into the newest schema.
pub(crate) fn decode_generic(
    writer: &SchemaVersion,
    datum: &[u8],
) -> Result<AuditEvent, EventError> {
    let mut rest = datum;
    let value =
        apache_avro::from_avro_datum(writer.schema(), &mut rest, Some(newest_schema().schema()))
            .map_err(|error| EventError::Avro {
                reason: error.to_string(),
            })?;
    if !rest.is_empty() {
        return Err(EventError::TrailingBytes { count: rest.len() });
    }
    AuditEvent::from_avro_value(value)
}

/// A `["null", T]` union value.
fn optional(value: Option<AvroValue>) -> AvroValue {
    match value {
        None => AvroValue::Union(0, Box::new(AvroValue::Null)),
        Some(value) => AvroValue::Union(1, Box::new(value)),
    }
}

/// The fields of a record, taken out one by one by name.
struct Fields(Vec<(String, AvroValue)>);

impl Fields {
    fn of(value: AvroValue, field: &'static str) -> Result<Self, EventError> {
        match value {
            AvroValue::Record(fields) => Ok(Fields(fields)),
            _ => Err(EventError::SchemaMismatch { field }),
        }
    }

    fn take(&mut self, name: &'static str) -> Result<AvroValue, EventError> {
        let position = self
            .0
            .iter()
            .position(|(field_name, _)| field_name == name)
            .ok_or(EventError::SchemaMismatch { field: name })?;
        Ok(self.0.swap_remove(position).1)
    }

    fn optional(&mut self, name: &'static str) -> Result<Option<AvroValue>, EventError> {
        match self.take(name)? {
            AvroValue::Union(_, inner) => match *inner {
                AvroValue::Null => Ok(None),
                value => Ok(Some(value)),
            },
            AvroValue::Null => Ok(None),
            _ => Err(EventError::SchemaMismatch { field: name }),
        }
    }
}

fn string(value: AvroValue, field: &'static str) -> Result<String, EventError> {
    match value {
        AvroValue::String(text) => Ok(text),
        _ => Err(EventError::SchemaMismatch { field }),
    }
}

fn uuid(value: AvroValue, field: &'static str) -> Result<Uuid, EventError> {
    match value {
        AvroValue::Uuid(uuid) => Ok(uuid),
        AvroValue::String(text) => {
            Uuid::try_parse(&text).map_err(|_| EventError::InvalidUuid { field })
        }
        _ => Err(EventError::SchemaMismatch { field }),
    }
}

fn json(value: AvroValue, field: &'static str) -> Result<JsonValue, EventError> {
    let text = string(value, field)?;
    serde_json::from_str(&text).map_err(|error| EventError::InvalidJson {
        field,
        reason: error.to_string(),
    })
}
