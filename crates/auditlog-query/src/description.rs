//! Coder's description of an event: the sentence its UI shows for each audit log, e.g.
//! `{user} updated template {target}`.
//!
//! ```text
//!  AuditEvent ──description──► "{user} updated template {target}"   AuditLog::description
//!                                  │ AuditLog::readable_description
//!                                  ▼
//!                             "alice updated template docker"         the CLI's table
//! ```
//!
//! The template keeps literal `{user}` and `{target}` placeholders, which Coder's UI fills
//! with the actor's name and the resource target (and links); the words are Coder's
//! `auditLogDescription` (see the reference, `coder-audit-logs.md`).

use auditlog_event::{Action, AuditEvent, ResourceType};

/// HTTP 303 See Other: Coder describes such events as redirected attempts.
const STATUS_SEE_OTHER: i32 = 303;

/// HTTP statuses from this one on are failures (Coder's `status_code >= 400`).
pub(crate) const STATUS_FIRST_FAILURE: i32 = 400;

/// Coder's description template of `event`, with literal `{user}` and `{target}`
/// placeholders that the UI fills in.
pub(crate) fn description(event: &AuditEvent) -> String {
    let mut text = String::with_capacity(64);
    // Anyone who knows a user's email can request a password reset for them, so Coder
    // does not say the user did it.
    if event.action != Action::RequestPasswordReset {
        text.push_str("{user} ");
    }
    if event.status_code == STATUS_SEE_OTHER {
        text.push_str("was redirected attempting to ");
        text.push_str(event.action.as_str());
    } else if event.status_code >= STATUS_FIRST_FAILURE {
        text.push_str("unsuccessfully attempted to ");
        text.push_str(event.action.as_str());
    } else {
        text.push_str(event.action.friendly());
    }

    // Logging in and out names no resource: "{user} logged in".
    if event.resource_type == ResourceType::ApiKey
        && matches!(
            event.action,
            Action::Login | Action::Logout | Action::Register
        )
    {
        return text;
    }
    // A git ssh key's target is the long key itself, which Coder does not show.
    if event.resource_type == ResourceType::GitSshKey {
        text.push_str(" the ");
        text.push_str(event.resource_type.friendly());
        return text;
    }
    text.push(' ');
    text.push_str(event.resource_type.friendly());
    if event.resource_type == ResourceType::ConvertLogin {
        text.push_str(" to");
    }
    text.push_str(" {target}");
    text
}

#[cfg(test)]
mod tests {
    use auditlog_event::testing::sample_event_for;

    use super::*;

    fn describe(resource_type: ResourceType, action: Action, status_code: i32) -> String {
        description(&sample_event_for(resource_type, action, status_code))
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
}
