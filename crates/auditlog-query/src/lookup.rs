//! Point filters: one value of one key (a request, a resource, a target, a user, an
//! organization), which the lookup table (migration 0003) holds sorted by value, so that a
//! value's newest events are one short range however old they are. [`LookupKey::route`] says
//! which filters are point filters and what is left of them to apply there.

use crate::grammar::go_lowercase;
use crate::resolve::{Actor, ResolvedFilter};

/// The point keys the lookup table holds, as its `key` column spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKey {
    /// `request_id:`
    RequestId,
    /// `resource_id:`
    ResourceId,
    /// `resource_target:` (lowercase)
    ResourceTarget,
    /// `username:` (lowercase)
    Username,
    /// `username:me` with the caller's id
    UserId,
    /// `email:` (lowercase)
    Email,
    /// `organization:`
    OrganizationId,
}

impl LookupKey {
    /// The `key` column's value.
    pub fn as_str(self) -> &'static str {
        match self {
            LookupKey::RequestId => "request_id",
            LookupKey::ResourceId => "resource_id",
            LookupKey::ResourceTarget => "resource_target",
            LookupKey::Username => "username",
            LookupKey::UserId => "user_id",
            LookupKey::Email => "email",
            LookupKey::OrganizationId => "organization_id",
        }
    }

    /// The key a filter is looked up by, with its value as the lookup table stores it, and
    /// the filter left to apply there; `None` when the table serves it better: no point key
    /// (a read in time order stops early), or two (the lookup holds one per row).
    ///
    /// The organization is a point key only on its own: next to another one it is a column.
    pub fn route(filter: &ResolvedFilter) -> Option<(LookupKey, String, ResolvedFilter)> {
        let mut rest = filter.clone();
        let mut points = Vec::new();
        if let Some(request_id) = rest.request_id.take() {
            points.push((LookupKey::RequestId, request_id.hyphenated().to_string()));
        }
        if let Some(resource_id) = rest.resource_id.take() {
            points.push((LookupKey::ResourceId, resource_id.hyphenated().to_string()));
        }
        if let Some(target) = rest.resource_target.take() {
            points.push((LookupKey::ResourceTarget, go_lowercase(&target)));
        }
        match rest.actor.take() {
            Some(Actor::Username(username)) => {
                points.push((LookupKey::Username, go_lowercase(&username)));
            }
            Some(Actor::UserId(user_id)) => {
                points.push((LookupKey::UserId, user_id.hyphenated().to_string()));
            }
            None => {}
        }
        if let Some(email) = rest.email.take() {
            points.push((LookupKey::Email, go_lowercase(&email)));
        }
        if points.is_empty()
            && let Some(organization_id) = rest.organization_id.take()
        {
            points.push((
                LookupKey::OrganizationId,
                organization_id.hyphenated().to_string(),
            ));
        }
        match <[_; 1]>::try_from(points) {
            Ok([(key, value)]) => Some((key, value, rest)),
            Err(_) => None,
        }
    }
}
