//! A valid event read in place: the ingester's fast path from Avro bytes to a stored row.
//!
//! ```text
//! message ── EventCodec::decode_view ──▶ Some(EventView)  borrowed texts, JSON as it came
//!                                    └─▶ None ──▶ EventCodec::decode + validate_allow_unknown
//! ```
//!
//! [`EventCodec::decode`](crate::EventCodec::decode) builds owned strings and
//! `serde_json::Value`s, which the store then writes back as JSON text. A view borrows every
//! text from the message and keeps `diff` and `additional_fields` as the JSON text they came
//! as, when that text is already the form the store writes ([`crate::json_text`]).
//!
//! A view is only ever a shortcut for an event that decodes and passes
//! [`AuditEvent::validate_allow_unknown`](crate::AuditEvent::validate_allow_unknown): the
//! rules below are those, checked on the borrowed fields. Whenever the shortcut is not sure
//! (an older schema, JSON written in another form, anything invalid), it answers `None` and
//! the caller takes the general path, which gives the verdict and its exact error.

use std::net::IpAddr;

use uuid::Uuid;

use crate::avro::Reader;
use crate::encoded_len::varint_len;
use crate::json_text::{is_canonical, is_canonical_object};
use crate::limits::{
    MAX_ADDITIONAL_FIELDS_BYTES, MAX_DIFF_BYTES, MAX_TEXT_BYTES, MAX_USER_AGENT_CHARS,
};
#[cfg(doc)]
use crate::limits::{MAX_TIME, MIN_TIME};
use crate::micros::unix_micros_saturating;
use crate::{Action, AuditEvent, BuildReason, ResourceType};

/// The actor of an [`EventView`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActorView<'a> {
    /// The user's id.
    pub id: Uuid,
    /// Username.
    pub username: &'a str,
    /// Email.
    pub email: &'a str,
    /// Display name.
    pub name: &'a str,
}

/// The organization of an [`EventView`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrganizationView<'a> {
    /// The organization's id.
    pub id: Uuid,
    /// Name.
    pub name: &'a str,
    /// Display name.
    pub display_name: &'a str,
    /// Icon.
    pub icon: &'a str,
}

/// A valid event borrowed from its message: the fields of [`crate::AuditEvent`], with enum
/// values as their wire strings and the JSON fields as their stored text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventView<'a> {
    /// `id`
    pub id: Uuid,
    /// `time`, µs since the Unix epoch.
    pub time_micros: i64,
    /// `request_id`
    pub request_id: Uuid,
    /// `ip`
    pub ip: Option<IpAddr>,
    /// `user_agent`
    pub user_agent: &'a str,
    /// `user`
    pub user: Option<ActorView<'a>>,
    /// `organization`
    pub organization: Option<OrganizationView<'a>>,
    /// `resource_type`, as [`ResourceType::as_str`] gives it.
    pub resource_type: &'a str,
    /// `resource_id`
    pub resource_id: Uuid,
    /// `resource_target`
    pub resource_target: &'a str,
    /// `resource_icon`
    pub resource_icon: &'a str,
    /// `action`, as [`Action::as_str`] gives it.
    pub action: &'a str,
    /// The diff's entries as they are in the datum, validated and in field order.
    diff: DiffEntries<'a>,
    /// `status_code`
    pub status_code: i32,
    /// `additional_fields`, as the JSON text serde_json writes for it.
    pub additional_fields: &'a str,
    /// `build_reason`, as [`crate::BuildReason::as_str`] gives it.
    pub build_reason: Option<&'a str>,
}

impl EventView<'_> {
    /// Appends the diff's JSON text, exactly as serde_json writes the event's
    /// [`Diff`](crate::Diff): `{"field":{"old":..,"new":..,"secret":false},..}`.
    pub fn write_diff_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (index, entry) in self.diff.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            // The key exactly as serde_json escapes a map key; a Vec never fails a write.
            let _ = serde_json::to_writer(&mut *out, entry.field);
            out.extend_from_slice(b":{\"old\":");
            out.extend_from_slice(entry.old);
            out.extend_from_slice(b",\"new\":");
            out.extend_from_slice(entry.new);
            out.extend_from_slice(if entry.secret {
                b",\"secret\":true}"
            } else {
                b",\"secret\":false}"
            });
        }
        out.push(b'}');
    }

    /// Number of changed fields in the diff.
    pub fn diff_len(&self) -> usize {
        self.diff.count
    }

    /// The first field where this view does not hold what `event` (decoded from the same
    /// message) does, JSON fields compared with the text serde_json writes for them.
    pub(crate) fn first_difference(&self, event: &AuditEvent) -> Option<&'static str> {
        let user = event.user.as_ref().map(|user| ActorView {
            id: user.id,
            username: &user.username,
            email: &user.email,
            name: &user.name,
        });
        let organization = event
            .organization
            .as_ref()
            .map(|organization| OrganizationView {
                id: organization.id,
                name: &organization.name,
                display_name: &organization.display_name,
                icon: &organization.icon,
            });
        let mut diff_json = Vec::new();
        self.write_diff_json(&mut diff_json);
        let checks = [
            ("id", self.id == event.id),
            (
                "time",
                self.time_micros == unix_micros_saturating(event.time),
            ),
            ("request_id", self.request_id == event.request_id),
            ("ip", self.ip == event.ip),
            ("user_agent", self.user_agent == event.user_agent),
            ("user", self.user == user),
            ("organization", self.organization == organization),
            (
                "resource_type",
                self.resource_type == event.resource_type.as_str(),
            ),
            ("resource_id", self.resource_id == event.resource_id),
            (
                "resource_target",
                self.resource_target == event.resource_target,
            ),
            ("resource_icon", self.resource_icon == event.resource_icon),
            ("action", self.action == event.action.as_str()),
            ("diff.len", self.diff.count == event.diff.len()),
            (
                "diff",
                serde_json::to_vec(&event.diff).is_ok_and(|text| text == diff_json),
            ),
            ("status_code", self.status_code == event.status_code),
            (
                "additional_fields",
                serde_json::to_string(&event.additional_fields)
                    .is_ok_and(|text| text == self.additional_fields),
            ),
            (
                "build_reason",
                self.build_reason == event.build_reason.as_ref().map(BuildReason::as_str),
            ),
        ];
        checks
            .into_iter()
            .find(|(_, same)| !same)
            .map(|(field, _)| field)
    }
}

/// The diff's blocks in the datum, already read once and found valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DiffEntries<'a> {
    blocks: &'a [u8],
    count: usize,
    /// The entries' size as validation counts it (see [`diff_encoded_len`]).
    entries_len: usize,
}

struct DiffEntryView<'a> {
    field: &'a str,
    old: &'a str,
    new: &'a str,
    secret: bool,
}

/// An entry read again from blocks [`read_diff`] has validated: its JSON texts as bytes,
/// since their UTF-8 was checked on the first read (in profiles, checking it again on the
/// way into the row cost about 3% of the ingester's CPU).
struct ValidatedEntry<'a> {
    field: &'a str,
    old: &'a [u8],
    new: &'a [u8],
    secret: bool,
}

impl<'a> DiffEntries<'a> {
    fn iter(&self) -> impl Iterator<Item = ValidatedEntry<'a>> + use<'a> {
        let mut reader = Reader { rest: self.blocks };
        let mut left_in_block = 0_u64;
        std::iter::from_fn(move || {
            while left_in_block == 0 {
                // The closing zero ends the entries (and bad bytes would, in a datum not
                // read once already).
                left_in_block = read_block_count(&mut reader).ok().filter(|&n| n > 0)?;
            }
            left_in_block -= 1;
            Some(ValidatedEntry {
                field: reader.read_str("diff.field").ok()?,
                old: reader.read_bytes("diff.old").ok()?,
                new: reader.read_bytes("diff.new").ok()?,
                secret: reader.read_bool("diff.secret").ok()?,
            })
        })
    }
}

/// The next block's item count: zero at the closing zero, `Err` for bad bytes.
fn read_block_count(reader: &mut Reader<'_>) -> Result<u64, crate::EventError> {
    let count = reader.read_long("diff")?;
    // Writers that buffer blocks prefix a negative count with the block's byte size.
    if count < 0 {
        reader.read_len("diff")?;
    }
    Ok(count.unsigned_abs())
}

fn read_entry<'a>(reader: &mut Reader<'a>) -> Option<DiffEntryView<'a>> {
    Some(DiffEntryView {
        field: reader.read_str("diff.field").ok()?,
        old: reader.read_str("diff.old").ok()?,
        new: reader.read_str("diff.new").ok()?,
        secret: reader.read_bool("diff.secret").ok()?,
    })
}

/// Reads a datum of the newest schema as a view, if it is valid and its JSON needs no
/// rewriting; `None` otherwise (see the module's documentation).
pub(crate) fn view_datum(datum: &[u8]) -> Option<EventView<'_>> {
    let mut reader = Reader { rest: datum };
    let id = reader.read_uuid("id").ok()?;
    let time_micros = reader.read_long("time").ok()?;
    let request_id = reader.read_uuid("request_id").ok()?;
    let ip = if reader.read_optional("ip").ok()? {
        match reader.read_str("ip").ok()? {
            "" => None,
            text => Some(text.parse().ok()?),
        }
    } else {
        None
    };
    let user_agent = reader.read_str("user_agent").ok()?;
    let user = if reader.read_optional("user").ok()? {
        Some(ActorView {
            id: reader.read_uuid("user.id").ok()?,
            username: reader.read_str("user.username").ok()?,
            email: reader.read_str("user.email").ok()?,
            name: reader.read_str("user.name").ok()?,
        })
    } else {
        None
    };
    let organization = if reader.read_optional("organization").ok()? {
        Some(OrganizationView {
            id: reader.read_uuid("organization.id").ok()?,
            name: reader.read_str("organization.name").ok()?,
            display_name: reader.read_str("organization.display_name").ok()?,
            icon: reader.read_str("organization.icon").ok()?,
        })
    } else {
        None
    };
    let resource_type = reader.read_str("resource_type").ok()?;
    let resource_id = reader.read_uuid("resource_id").ok()?;
    let resource_target = reader.read_str("resource_target").ok()?;
    let resource_icon = reader.read_str("resource_icon").ok()?;
    let action = reader.read_str("action").ok()?;
    let diff = read_diff(&mut reader)?;
    let status_code = reader.read_int("status_code").ok()?;
    let additional_fields = reader.read_str("additional_fields").ok()?;
    let build_reason = if reader.read_optional("build_reason").ok()? {
        Some(reader.read_str("build_reason").ok()?)
    } else {
        None
    };
    if !reader.rest.is_empty() {
        return None;
    }
    let view = EventView {
        id,
        time_micros,
        request_id,
        ip,
        user_agent,
        user,
        organization,
        resource_type,
        resource_id,
        resource_target,
        resource_icon,
        action,
        diff,
        status_code,
        additional_fields,
        build_reason,
    };
    is_valid(&view).then_some(view)
}

/// Reads the diff's blocks, accepting only entries in strictly increasing field order (as
/// the event's ordered map writes them, so no duplicates) whose JSON needs no rewriting.
/// Also checks the rules of validation that concern single entries: secret ones carry nulls.
fn read_diff<'a>(reader: &mut Reader<'a>) -> Option<DiffEntries<'a>> {
    let blocks = reader.rest;
    let mut count = 0;
    let mut entries_len = 0;
    let mut previous_field: Option<&str> = None;
    loop {
        let in_block = read_block_count(reader).ok()?;
        if in_block == 0 {
            break;
        }
        for _ in 0..in_block {
            let entry = read_entry(reader)?;
            if previous_field.is_some_and(|previous| previous >= entry.field) {
                return None;
            }
            previous_field = Some(entry.field);
            if !is_canonical(entry.old) || !is_canonical(entry.new) {
                return None;
            }
            if entry.secret && (entry.old != "null" || entry.new != "null") {
                return None;
            }
            count += 1;
            entries_len += entry_encoded_len(&entry);
        }
    }
    let used = blocks.len() - reader.rest.len();
    Some(DiffEntries {
        blocks: &blocks[..used],
        count,
        entries_len,
    })
}

/// [`AuditEvent::validate_allow_unknown`](crate::AuditEvent::validate_allow_unknown)'s rules
/// on a view whose JSON texts are canonical (so their lengths are the lengths it measures).
fn is_valid(view: &EventView<'_>) -> bool {
    let ids_set = !view.id.is_nil()
        && !view.request_id.is_nil()
        && view.user.is_none_or(|user| !user.id.is_nil())
        && view
            .organization
            .is_none_or(|organization| !organization.id.is_nil());
    let time_in_range = (MIN_TIME_MICROS..=MAX_TIME_MICROS).contains(&view.time_micros);
    ids_set
        && (100..=599).contains(&view.status_code)
        && time_in_range
        && (view.build_reason.is_none() || may_have_build_reason(view.resource_type, view.action))
        && lengths_within_limits(view)
        && diff_encoded_len(view) <= MAX_DIFF_BYTES
        && view.additional_fields.len() <= MAX_ADDITIONAL_FIELDS_BYTES
        && is_canonical_object(view.additional_fields)
}

/// The rule of `AuditEvent::may_have_build_reason`, on wire strings.
fn may_have_build_reason(resource_type: &str, action: &str) -> bool {
    match ResourceType::from_known(resource_type) {
        None | Some(ResourceType::WorkspaceBuild) => true,
        Some(ResourceType::Workspace) => {
            matches!(Action::from_known(action), None | Some(Action::Create))
        }
        Some(_) => false,
    }
}

fn lengths_within_limits(view: &EventView<'_>) -> bool {
    let user_agent_fits = view.user_agent.len() <= MAX_USER_AGENT_CHARS
        || view.user_agent.chars().count() <= MAX_USER_AGENT_CHARS;
    let fits = |text: &str| text.len() <= MAX_TEXT_BYTES;
    user_agent_fits
        && [
            view.resource_type,
            view.action,
            view.resource_target,
            view.resource_icon,
            view.build_reason.unwrap_or(""),
        ]
        .into_iter()
        .all(fits)
        && view
            .user
            .is_none_or(|user| fits(user.username) && fits(user.email) && fits(user.name))
        && view.organization.is_none_or(|organization| {
            fits(organization.name) && fits(organization.display_name) && fits(organization.icon)
        })
}

/// The diff's size as validation counts it: one block of canonical entries, its count
/// and the closing zero.
fn diff_encoded_len(view: &EventView<'_>) -> usize {
    varint_len(view.diff.count) + view.diff.entries_len + 1
}

/// One entry's share of [`diff_encoded_len`]: its field, old and new texts as Avro strings
/// and the secret flag.
fn entry_encoded_len(entry: &DiffEntryView<'_>) -> usize {
    const SECRET_FLAG_LEN: usize = 1;
    let encoded_array_len = |text_len: usize| varint_len(text_len) + text_len;
    encoded_array_len(entry.field.len())
        + encoded_array_len(entry.old.len())
        + encoded_array_len(entry.new.len())
        + SECRET_FLAG_LEN
}

/// [`MIN_TIME`] and [`MAX_TIME`] in µs since the epoch (a test holds them to the times).
const MIN_TIME_MICROS: i64 = -2_208_988_800_000_000;
const MAX_TIME_MICROS: i64 = 10_413_791_999_999_999;

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
