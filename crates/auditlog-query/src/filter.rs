//! The typed filter: what a query asks for, with every value checked.
//!
//! The error order and the points where Coder's code and the reference differ are
//! documented on [`AuditFilter::parse`].

use std::str::FromStr;

use auditlog_event::{Action, BuildReason, ResourceType};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use time::Date;
use uuid::Uuid;

use crate::date::{GO_DATE_LAYOUT, parse_go_date};
use crate::error::{Error, InvalidQuery, Validation};
use crate::go_quote::go_quote;
use crate::grammar::{Terms, tokenize};

/// The filter keys, in the order Coder's parser requests them (and so reports their errors).
pub(crate) const KEYS_IN_CODER_ORDER: [&str; 11] = [
    "request_id",
    "resource_id",
    "resource_target",
    "username",
    "email",
    "date_from",
    "date_to",
    "organization",
    "resource_type",
    "action",
    "build_reason",
];

/// The value of `username:` that stands for the caller.
pub(crate) const ME: &str = "me";

/// A parsed audit filter; `None` means no condition on that key. All conditions are ANDed.
///
/// String values are lowercase, because the whole query is lowercased before parsing (as in
/// Coder). `username:me` and organization names stay unresolved until
/// [`AuditFilter::resolve`].
///
/// Serializing it gives the `auditlog query --parse` view: one JSON object with the keys that
/// have a value, in the reference's key order, every value a string.
///
/// ```
/// use auditlog_query::AuditFilter;
///
/// let filter = AuditFilter::parse("Workspace action:delete username:Alice date_from:2026-01-01")?;
/// assert_eq!(
///     serde_json::to_string(&filter).unwrap(),
///     r#"{"resource_type":"workspace","action":"delete","username":"alice","date_from":"2026-01-01"}"#
/// );
/// # Ok::<(), auditlog_query::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// `resource_type:` the kind of resource touched (bare words also land here).
    pub resource_type: Option<ResourceType>,
    /// `action:` what was done.
    pub action: Option<Action>,
    /// `resource_id:` the resource's id.
    pub resource_id: Option<Uuid>,
    /// `resource_target:` the resource's name, lowercased.
    pub resource_target: Option<String>,
    /// `username:` the actor, or the caller for `me`.
    pub username: Option<Username>,
    /// `email:` the actor's email, lowercased.
    pub email: Option<String>,
    /// `date_from:` events at or after this day's start (UTC).
    pub date_from: Option<Date>,
    /// `date_to:` events up to the end of this day (UTC).
    pub date_to: Option<Date>,
    /// `organization:` an organization id or name.
    pub organization: Option<OrganizationRef>,
    /// `request_id:` the HTTP request that caused the event.
    pub request_id: Option<Uuid>,
    /// `build_reason:` why a workspace build ran.
    pub build_reason: Option<BuildReason>,
}

/// The value of `username:`, before the caller is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Username {
    /// `username:me`: whoever runs the query.
    Me,
    /// Any other username, lowercased.
    Name(String),
}

/// The value of `organization:`, before names are looked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OrganizationRef {
    /// A value that parsed as a UUID (Coder tries the UUID reading first).
    Id(Uuid),
    /// Anything else: an organization name, lowercased, that must exist.
    Name(String),
}

impl AuditFilter {
    /// Parses Coder's filter language; a blank query is the empty filter.
    ///
    /// # Errors
    ///
    /// A structural error (`Query element "x:" cannot start or end with ':'`, `... can only
    /// contain 1 ':'`) stops parsing and is reported alone, on field `q`. Otherwise every
    /// value error is reported, in the order Coder's `QueryParamParser` produces them:
    ///
    /// 1. the known keys, in the order Coder's `searchquery.AuditLogs` requests them:
    ///    `request_id`, `resource_id`, `resource_target`, `username`, `email`, `date_from`,
    ///    `date_to`, `organization`, `resource_type`, `action`, `build_reason`; at most one
    ///    validation each, either "provided more than once" (then the values are not checked)
    ///    or the value's own error;
    /// 2. then unknown keys (`"foo" is not a valid query param`), in order of first
    ///    appearance. Coder iterates a Go map here, so its order is random; ours is stable.
    ///
    /// [`Resolver::parse_and_resolve`](crate::Resolver::parse_and_resolve) slots an unknown
    /// organization name into its place in this order, as Coder does.
    ///
    /// # Where Coder's code decided
    ///
    /// Where the reference is silent, this follows Coder's code: `a::b` is `a` = `b` (Go's
    /// `FieldsFunc` drops empty fields); a token whose only `:` is inside quotes goes,
    /// quotes and all, to `resource_type`; lowercasing is Go's one-to-one `ToLower`; user
    /// text in details is quoted like Go's `%q`; date errors are Go's `time.Parse` texts.
    ///
    /// # Where the reference wins over Coder's code
    ///
    /// - A key given twice is an error even when its first value is empty. Coder returns
    ///   "no filter" as soon as the first value is empty, so `username:"" username:bob`
    ///   passes there.
    /// - UUIDs are accepted in exactly the reference's four forms (canonical, `{braced}`,
    ///   `urn:uuid:`, 32 hex digits; any case). Go's `uuid.Parse` accepts any character in
    ///   place of the braces (it skips the first and never reads the last).
    ///
    /// ```
    /// use auditlog_query::{AuditFilter, Error, Username};
    ///
    /// let filter = AuditFilter::parse("username:me action:start")?;
    /// assert_eq!(filter.username, Some(Username::Me));
    ///
    /// let Err(Error::InvalidQuery(invalid)) = AuditFilter::parse("username:") else {
    ///     panic!("expected an error");
    /// };
    /// assert_eq!(
    ///     invalid.validations()[0].detail,
    ///     r#"Query element "username:" cannot start or end with ':'"#
    /// );
    /// # Ok::<(), Error>(())
    /// ```
    pub fn parse(query: &str) -> Result<Self, Error> {
        let (filter, validations) = parse_collecting(query)?;
        if validations.is_empty() {
            Ok(filter)
        } else {
            Err(InvalidQuery::filter(validations).into())
        }
    }

    /// Whether no key has a value, i.e. the filter matches every event.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// The keys that have a value, in the reference's order, each with its canonical text.
    ///
    /// Enums are their lowercase names, UUIDs canonical lowercase hyphenated, dates
    /// `YYYY-MM-DD`; `me` and organization names are left unresolved.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let mut entries = Vec::new();
        let mut push = |key: &'static str, value: Option<String>| {
            if let Some(value) = value.filter(|value| !value.is_empty()) {
                entries.push((key, value));
            }
        };
        push(
            "resource_type",
            self.resource_type.as_ref().map(ToString::to_string),
        );
        push("action", self.action.as_ref().map(ToString::to_string));
        push("resource_id", self.resource_id.map(canonical_uuid));
        push("resource_target", self.resource_target.clone());
        push(
            "username",
            self.username.as_ref().map(|username| match username {
                Username::Me => ME.to_owned(),
                Username::Name(name) => name.clone(),
            }),
        );
        push("email", self.email.clone());
        push("date_from", self.date_from.map(format_date));
        push("date_to", self.date_to.map(format_date));
        push(
            "organization",
            self.organization
                .as_ref()
                .map(|organization| match organization {
                    OrganizationRef::Id(id) => canonical_uuid(*id),
                    OrganizationRef::Name(name) => name.clone(),
                }),
        );
        push("request_id", self.request_id.map(canonical_uuid));
        push(
            "build_reason",
            self.build_reason.as_ref().map(ToString::to_string),
        );
        entries
    }

    /// The `auditlog query --parse` view as a JSON value (an object of strings).
    ///
    /// `serde_json::Value` sorts object keys; serialize the filter itself to keep the
    /// reference's key order.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.entries()
                .into_iter()
                .map(|(key, value)| (key.to_owned(), serde_json::Value::String(value)))
                .collect(),
        )
    }
}

impl FromStr for AuditFilter {
    type Err = Error;

    fn from_str(query: &str) -> Result<Self, Self::Err> {
        Self::parse(query)
    }
}

impl Serialize for AuditFilter {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entries = self.entries();
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (key, value) in &entries {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Parses `query`, keeping every value error; a tokenizer error is returned alone.
///
/// The filter holds the keys whose values were valid, so resolution can still check the
/// organization name and report its error in Coder's position.
pub(crate) fn parse_collecting(query: &str) -> Result<(AuditFilter, Vec<Validation>), Error> {
    let terms = tokenize(query).map_err(|validation| InvalidQuery::filter(vec![validation]))?;
    let mut checker = ValueChecker {
        terms: &terms,
        validations: Vec::new(),
    };

    // One statement per key, in KEYS_IN_CODER_ORDER, because the order of these calls is the
    // order of the errors.
    let request_id = checker.uuid("request_id");
    let resource_id = checker.uuid("resource_id");
    let resource_target = checker.string("resource_target");
    let username = checker.string("username").map(|name| {
        if name == ME {
            Username::Me
        } else {
            Username::Name(name)
        }
    });
    let email = checker.string("email");
    let date_from = checker.date("date_from");
    let date_to = checker.date("date_to");
    let organization = checker.single("organization").map(|value| {
        // Coder tries the UUID reading first; anything else is a name to look up later.
        match Uuid::parse_str(value) {
            Ok(id) => OrganizationRef::Id(id),
            Err(_) => OrganizationRef::Name(value.to_owned()),
        }
    });
    let resource_type = checker.enumerated("resource_type", ResourceType::from_known);
    let action = checker.enumerated("action", Action::from_known);
    let build_reason = checker.enumerated("build_reason", BuildReason::from_known);
    checker.reject_unknown_keys();

    let filter = AuditFilter {
        resource_type,
        action,
        resource_id,
        resource_target,
        username,
        email,
        date_from,
        date_to,
        organization,
        request_id,
        build_reason,
    };
    Ok((filter, checker.validations))
}

/// Where a validation of `field` goes in Coder's order (unknown keys last).
pub(crate) fn coder_rank(field: &str) -> usize {
    KEYS_IN_CODER_ORDER
        .iter()
        .position(|key| *key == field)
        .unwrap_or(KEYS_IN_CODER_ORDER.len())
}

/// Coder's `QueryParamParser`: reads one key at a time and collects validations.
struct ValueChecker<'t> {
    terms: &'t Terms,
    validations: Vec<Validation>,
}

impl<'t> ValueChecker<'t> {
    /// The key's one non-empty value; duplicates are reported and yield no value.
    fn single(&mut self, key: &'static str) -> Option<&'t str> {
        let values = self.terms.values(key)?;
        if values.len() > 1 {
            self.reject(
                key,
                format!(
                    "Query param {} provided more than once, found {} times. Only provide 1 instance of this query param.",
                    go_quote(key),
                    values.len()
                ),
            );
            return None;
        }
        values
            .first()
            .map(String::as_str)
            .filter(|value| !value.is_empty())
    }

    fn string(&mut self, key: &'static str) -> Option<String> {
        self.single(key).map(str::to_owned)
    }

    fn uuid(&mut self, key: &'static str) -> Option<Uuid> {
        let value = self.single(key)?;
        match Uuid::parse_str(value) {
            Ok(id) => Some(id),
            Err(_) => {
                self.reject(
                    key,
                    format!("Query param {} must be a valid uuid", go_quote(key)),
                );
                None
            }
        }
    }

    fn date(&mut self, key: &'static str) -> Option<Date> {
        let value = self.single(key)?;
        match parse_go_date(value) {
            Ok(date) => Some(date),
            Err(reason) => {
                self.reject(
                    key,
                    format!(
                        "Query param {} must be a valid date format ({GO_DATE_LAYOUT}): {reason}",
                        go_quote(key)
                    ),
                );
                None
            }
        }
    }

    fn enumerated<T>(&mut self, key: &'static str, from_known: fn(&str) -> Option<T>) -> Option<T> {
        let value = self.single(key)?;
        let known = from_known(value);
        if known.is_none() {
            self.reject(
                key,
                invalid_value(key, &format!("{} is not a valid value", go_quote(value))),
            );
        }
        known
    }

    fn reject_unknown_keys(&mut self) {
        let terms = self.terms;
        for key in terms.keys() {
            if !KEYS_IN_CODER_ORDER.contains(&key) {
                self.reject(key, format!("{} is not a valid query param", go_quote(key)));
            }
        }
    }

    fn reject(&mut self, field: &str, detail: String) {
        self.validations.push(Validation::new(field, detail));
    }
}

/// Coder's `ParseCustom` wording: `Query param "key" has invalid value: <reason>`.
pub(crate) fn invalid_value(key: &str, reason: &str) -> String {
    format!("Query param {} has invalid value: {reason}", go_quote(key))
}

fn canonical_uuid(id: Uuid) -> String {
    id.hyphenated().to_string()
}

fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_coder_order_are_the_reference_keys() {
        let mut sorted = KEYS_IN_CODER_ORDER;
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            [
                "action",
                "build_reason",
                "date_from",
                "date_to",
                "email",
                "organization",
                "request_id",
                "resource_id",
                "resource_target",
                "resource_type",
                "username"
            ]
        );
    }

    #[test]
    fn organization_prefers_the_uuid_reading() {
        let filter =
            AuditFilter::parse("organization:A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11").unwrap();
        assert_eq!(
            filter.organization,
            Some(OrganizationRef::Id(
                Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap()
            ))
        );
        let filter = AuditFilter::parse("organization:Acme").unwrap();
        assert_eq!(
            filter.organization,
            Some(OrganizationRef::Name("acme".to_owned()))
        );
    }

    #[test]
    fn the_json_view_has_canonical_strings() {
        let filter = AuditFilter::parse(
            "resource_id:{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11} organization:acme username:me date_to:2026-02-28",
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&filter).unwrap(),
            r#"{"resource_id":"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","username":"me","date_to":"2026-02-28","organization":"acme"}"#
        );
        assert_eq!(
            filter.to_json(),
            serde_json::json!({
                "resource_id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                "username": "me",
                "date_to": "2026-02-28",
                "organization": "acme",
            })
        );
        assert!(AuditFilter::parse("  ").unwrap().is_empty());
        assert_eq!(
            serde_json::to_string(&AuditFilter::default()).unwrap(),
            "{}"
        );
    }
}
