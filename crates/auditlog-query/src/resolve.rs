//! Resolution: turning `username:me` and organization names into what the SQL compares.
//!
//! Parsing needs nothing but the query text; resolution needs to know who is asking and which
//! organizations exist, which only the caller (HTTP handler or CLI) knows. Keeping them apart
//! lets `auditlog query --parse` show a filter without any lookup, and makes a filter that
//! still holds `me` or a name impossible to hand to the SQL builder.

use std::collections::HashMap;
use std::fmt;

use auditlog_event::{Action, BuildReason, ResourceType};
use time::Date;
use uuid::Uuid;

use crate::error::{Error, InvalidQuery, Validation};
use crate::filter::{
    AuditFilter, OrganizationRef, Username, coder_rank, invalid_value, parse_collecting,
};
use crate::go_quote::go_quote;

/// Finds an organization's id by name, for `organization:<name>`.
///
/// Implementations compare names case-insensitively (the filter's name is lowercased, as
/// Coder's `GetOrganizationByName` compares `LOWER(name)`), and should answer `None` for an
/// organization the caller may not see: Coder gives the same error for both.
pub trait OrganizationLookup {
    /// The id of the organization called `name`, if it exists and the caller may see it.
    fn organization_id(&self, name: &str) -> Option<Uuid>;
}

impl<F> OrganizationLookup for F
where
    F: Fn(&str) -> Option<Uuid>,
{
    fn organization_id(&self, name: &str) -> Option<Uuid> {
        self(name)
    }
}

impl OrganizationLookup for HashMap<String, Uuid> {
    fn organization_id(&self, name: &str) -> Option<Uuid> {
        self.iter()
            .find(|(known, _)| known.to_lowercase() == name.to_lowercase())
            .map(|(_, id)| *id)
    }
}

/// What a resolver needs to know about the caller and the organizations.
///
/// ```
/// use std::collections::HashMap;
/// use auditlog_query::{Actor, AuditFilter, Resolver};
/// use uuid::Uuid;
///
/// let acme = Uuid::from_u128(7);
/// let organizations = HashMap::from([("Acme".to_owned(), acme)]);
/// let resolver = Resolver::new()
///     .with_caller_username("alice")
///     .with_organizations(&organizations);
///
/// let resolved = AuditFilter::parse("username:me organization:acme")?.resolve(&resolver)?;
/// assert_eq!(resolved.actor, Some(Actor::Username("alice".to_owned())));
/// assert_eq!(resolved.organization_id, Some(acme));
/// # Ok::<(), auditlog_query::Error>(())
/// ```
#[derive(Default)]
pub struct Resolver<'a> {
    caller_username: Option<String>,
    caller_id: Option<Uuid>,
    organizations: Option<&'a dyn OrganizationLookup>,
}

impl<'a> Resolver<'a> {
    /// A resolver that knows no caller and no organization.
    pub fn new() -> Self {
        Self::default()
    }

    /// `username:me` matches this username (case-insensitively), e.g. the CLI's `--as`.
    pub fn with_caller_username(mut self, username: impl Into<String>) -> Self {
        self.caller_username = Some(username.into());
        self
    }

    /// `username:me` matches this user id; takes precedence over the username.
    ///
    /// This is Coder's behaviour (`me` becomes the API key's user id), and it keeps finding
    /// the caller's events from before a rename.
    pub fn with_caller_id(mut self, user_id: Uuid) -> Self {
        self.caller_id = Some(user_id);
        self
    }

    /// Where organization names are looked up; without it every name is unknown.
    pub fn with_organizations(mut self, organizations: &'a dyn OrganizationLookup) -> Self {
        self.organizations = Some(organizations);
        self
    }

    /// Parses and resolves in one step, reporting every problem in Coder's order.
    ///
    /// Unlike `parse` followed by `resolve`, an unknown organization name is reported
    /// together with the other keys' errors, in its place, as Coder does.
    ///
    /// ```
    /// use auditlog_query::{Error, Resolver};
    ///
    /// let Err(Error::InvalidQuery(invalid)) =
    ///     Resolver::new().parse_and_resolve("action:explode organization:nowhere")
    /// else {
    ///     panic!("expected an error");
    /// };
    /// let fields: Vec<&str> = invalid.validations().iter().map(|v| v.field.as_str()).collect();
    /// assert_eq!(fields, ["organization", "action"]);
    /// ```
    pub fn parse_and_resolve(&self, query: &str) -> Result<ResolvedFilter, Error> {
        let (filter, validations) = parse_collecting(query)?;
        self.resolve_parsed(&filter, validations)
    }

    /// Resolves what [`parse_collecting`] made of a query, adding resolution's problems to
    /// the parser's `validations` in Coder's order; the second half of
    /// [`Self::parse_and_resolve`], for a caller that must look at the filter in between.
    pub(crate) fn resolve_parsed(
        &self,
        filter: &AuditFilter,
        mut validations: Vec<Validation>,
    ) -> Result<ResolvedFilter, Error> {
        let resolved = self.resolve_collecting(filter, &mut validations);
        // Stable: each known key has at most one validation, unknown keys keep query order.
        validations.sort_by_key(|validation| coder_rank(&validation.field));
        if validations.is_empty() {
            Ok(resolved)
        } else {
            Err(InvalidQuery::filter(validations).into())
        }
    }

    fn resolve_collecting(
        &self,
        filter: &AuditFilter,
        validations: &mut Vec<Validation>,
    ) -> ResolvedFilter {
        let actor = match &filter.username {
            None => None,
            Some(Username::Name(name)) => Some(Actor::Username(name.clone())),
            Some(Username::Me) => match (self.caller_id, &self.caller_username) {
                (Some(user_id), _) => Some(Actor::UserId(user_id)),
                (None, Some(username)) => Some(Actor::Username(username.clone())),
                (None, None) => {
                    validations.push(Validation::new(
                        "username",
                        invalid_value(
                            "username",
                            &format!(
                                "{} means the caller, and no caller is known (the CLI takes one from --as <username>)",
                                go_quote(crate::filter::ME)
                            ),
                        ),
                    ));
                    None
                }
            },
        };
        let organization_id = match &filter.organization {
            None => None,
            Some(OrganizationRef::Id(id)) => Some(*id),
            Some(OrganizationRef::Name(name)) => {
                let found = self
                    .organizations
                    .and_then(|organizations| organizations.organization_id(name));
                if found.is_none() {
                    validations.push(Validation::new(
                        "organization",
                        invalid_value(
                            "organization",
                            &format!(
                                "organization {} either does not exist, or you are unauthorized to view it",
                                go_quote(name)
                            ),
                        ),
                    ));
                }
                found
            }
        };
        ResolvedFilter {
            resource_type: filter.resource_type.clone(),
            action: filter.action.clone(),
            resource_id: filter.resource_id,
            resource_target: filter.resource_target.clone(),
            actor,
            email: filter.email.clone(),
            date_from: filter.date_from,
            date_to: filter.date_to,
            organization_id,
            request_id: filter.request_id,
            build_reason: filter.build_reason.clone(),
        }
    }
}

impl fmt::Debug for Resolver<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Resolver")
            .field("caller_username", &self.caller_username)
            .field("caller_id", &self.caller_id)
            .field("has_organizations", &self.organizations.is_some())
            .finish()
    }
}

impl AuditFilter {
    /// Resolves `username:me` and an organization name; problems come back as validations.
    pub fn resolve(&self, resolver: &Resolver<'_>) -> Result<ResolvedFilter, Error> {
        let mut validations = Vec::new();
        let resolved = resolver.resolve_collecting(self, &mut validations);
        if validations.is_empty() {
            Ok(resolved)
        } else {
            Err(InvalidQuery::filter(validations).into())
        }
    }
}

/// Whose events `username:` selects, once `me` is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// The username recorded in the event, compared case-insensitively.
    Username(String),
    /// The user id recorded in the event (`me` when the caller's id is known).
    UserId(Uuid),
}

/// A filter ready for SQL: like [`AuditFilter`], with the caller and organization resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedFilter {
    /// The kind of resource touched.
    pub resource_type: Option<ResourceType>,
    /// What was done.
    pub action: Option<Action>,
    /// The resource's id.
    pub resource_id: Option<Uuid>,
    /// The resource's name, compared case-insensitively.
    pub resource_target: Option<String>,
    /// The actor.
    pub actor: Option<Actor>,
    /// The actor's email, compared case-insensitively.
    pub email: Option<String>,
    /// Events at or after this day's start (UTC).
    pub date_from: Option<Date>,
    /// Events before the next day's start (UTC).
    pub date_to: Option<Date>,
    /// The organization's id.
    pub organization_id: Option<Uuid>,
    /// The HTTP request that caused the event.
    pub request_id: Option<Uuid>,
    /// Why a workspace build ran.
    pub build_reason: Option<BuildReason>,
}

/// The filter `query` resolved without a caller or organizations, for tests.
#[cfg(test)]
pub(crate) fn resolved(query: &str) -> ResolvedFilter {
    crate::AuditFilter::parse(query)
        .unwrap()
        .resolve(&Resolver::new())
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn me_needs_a_caller() {
        let filter = AuditFilter::parse("username:me").unwrap();
        let Err(Error::InvalidQuery(invalid)) = filter.resolve(&Resolver::new()) else {
            panic!("expected an error");
        };
        assert_eq!(
            invalid.validations(),
            [Validation::new(
                "username",
                r#"Query param "username" has invalid value: "me" means the caller, and no caller is known (the CLI takes one from --as <username>)"#
            )]
        );
    }

    #[test]
    fn the_caller_id_wins_over_the_username() {
        let filter = AuditFilter::parse("username:me").unwrap();
        let caller = Uuid::from_u128(42);
        let resolver = Resolver::new()
            .with_caller_username("alice")
            .with_caller_id(caller);
        assert_eq!(
            filter.resolve(&resolver).unwrap().actor,
            Some(Actor::UserId(caller))
        );
    }

    #[test]
    fn unknown_organization_names_get_coders_error() {
        let lookup = |name: &str| (name == "acme").then(|| Uuid::from_u128(1));
        let resolver = Resolver::new().with_organizations(&lookup);
        let filter = AuditFilter::parse(r#"organization:"Wile E""#).unwrap();
        let Err(Error::InvalidQuery(invalid)) = filter.resolve(&resolver) else {
            panic!("expected an error");
        };
        assert_eq!(
            invalid.validations(),
            [Validation::new(
                "organization",
                r#"Query param "organization" has invalid value: organization "wile e" either does not exist, or you are unauthorized to view it"#
            )]
        );
    }

    #[test]
    fn combined_errors_follow_coder_order() {
        let lookup = HashMap::<String, Uuid>::new();
        let resolver = Resolver::new().with_organizations(&lookup);
        let Err(Error::InvalidQuery(invalid)) = resolver.parse_and_resolve(
            "zzz:1 build_reason:x organization:nowhere username:me date_from:x request_id:x aaa:2",
        ) else {
            panic!("expected an error");
        };
        let fields: Vec<&str> = invalid
            .validations()
            .iter()
            .map(|validation| validation.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "request_id",
                "username",
                "date_from",
                "organization",
                "build_reason",
                "zzz",
                "aaa"
            ]
        );
    }
}
