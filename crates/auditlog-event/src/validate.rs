//! Validation: the rules every [`AuditEvent`] must meet before it is published or stored.
//!
//! Producers check strictly ([`AuditEvent::validate`]); readers of events from newer
//! producers keep enum values they do not know ([`AuditEvent::validate_allow_unknown`]).
//! The size limits are in [`crate::limits`].

use serde_json::Value;

use crate::encoded_len::{json_len, json_len_bound, json_object_len_bound, varint_len};
use crate::limits::{
    MAX_ADDITIONAL_FIELDS_BYTES, MAX_DIFF_BYTES, MAX_TEXT_BYTES, MAX_TIME, MAX_USER_AGENT_CHARS,
    MIN_TIME,
};
use crate::micros::unix_micros_saturating;
use crate::{Action, AuditEvent, BuildReason, EventError, ResourceType};

impl AuditEvent {
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

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;
    use uuid::Uuid;

    use super::*;
    use crate::testing::{sample_event, sample_event_for};
    use crate::{Diff, DiffEntry};

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
        let mut event = sample_event_for(ResourceType::Template, Action::Write, 200);
        event.build_reason = Some(BuildReason::Cli);
        assert_eq!(
            event.validate().unwrap_err().to_string(),
            "build_reason is only allowed on workspace_build and workspace create events, not template write"
        );
        let mut event = sample_event_for(ResourceType::Workspace, Action::Create, 201);
        event.build_reason = Some(BuildReason::Cli);
        assert!(event.validate().is_ok());
        let mut event = sample_event_for(ResourceType::WorkspaceBuild, Action::Stop, 200);
        event.build_reason = Some(BuildReason::Autostop);
        assert!(event.validate().is_ok());
    }

    #[test]
    fn validate_rejects_bad_status_codes_and_times() {
        let event = sample_event_for(ResourceType::Workspace, Action::Write, 42);
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
}
