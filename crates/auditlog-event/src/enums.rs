//! The closed vocabularies of an audit event: resource types, actions and build reasons.
//!
//! On the wire (Avro, ClickHouse, JSON) each one is a plain string, so that a reader built
//! before a value existed still reads the event. In Rust each is an enum of the values Coder
//! knows today, plus `Unknown(String)`, the escape that carries a newer value through untouched.
//! Turning arbitrary text into a value is strict ([`std::str::FromStr`] rejects unknown text);
//! taking the escape is always explicit ([`ResourceType::from_wire`] or the `Unknown` variant).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::EventError;

macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $wire:literal, $friendly:literal; )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this build does not know yet, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// Every value this build knows, in the reference's order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )* ];

            /// The name of this vocabulary as used in filters and error texts.
            pub const KIND: &'static str = $kind;

            /// The wire string, exactly as stored in Avro and ClickHouse.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )*
                    $name::Unknown(value) => value.as_str(),
                }
            }

            /// The known value whose wire string is exactly `text` (case-sensitive, as Coder).
            pub fn from_known(text: &str) -> Option<Self> {
                match text {
                    $( $wire => Some($name::$variant), )*
                    _ => None,
                }
            }

            /// Reads a wire string, keeping values this build does not know in `Unknown`.
            pub fn from_wire(text: &str) -> Self {
                Self::from_known(text).unwrap_or_else(|| $name::Unknown(text.to_owned()))
            }

            /// Coder's human word for this value, as used in descriptions.
            pub fn friendly(&self) -> &str {
                match self {
                    $( $name::$variant => $friendly, )*
                    $name::Unknown(value) => value.as_str(),
                }
            }

            /// Whether this is one of the values this build knows.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl FromStr for $name {
            type Err = EventError;

            /// Strict: only known values. Use [`Self::from_wire`] to accept newer ones.
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::from_known(text).ok_or_else(|| EventError::UnknownValue {
                    kind: $kind,
                    value: text.to_owned(),
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            /// Lenient, like every reader of stored data: unknown values are kept.
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Ok(Self::from_wire(&text))
            }
        }
    };
}

wire_enum! {
    /// The kind of resource an audited operation touched (Coder's `resource_type`).
    ///
    /// Friendly words follow Coder: most are the value with spaces for underscores; the
    /// exceptions the reference lists (`api_key` is "token", ...) are spelled out.
    ResourceType, "resource_type" {
        Organization => "organization", "organization";
        Template => "template", "template";
        TemplateVersion => "template_version", "template version";
        User => "user", "user";
        Workspace => "workspace", "workspace";
        GitSshKey => "git_ssh_key", "git ssh key";
        ApiKey => "api_key", "token";
        Group => "group", "group";
        WorkspaceBuild => "workspace_build", "workspace";
        License => "license", "license";
        WorkspaceProxy => "workspace_proxy", "workspace proxy";
        ConvertLogin => "convert_login", "login type conversion";
        HealthSettings => "health_settings", "health settings";
        Oauth2ProviderApp => "oauth2_provider_app", "oauth2 app";
        Oauth2ProviderAppSecret => "oauth2_provider_app_secret", "oauth2 app secret";
        CustomRole => "custom_role", "custom role";
        OrganizationMember => "organization_member", "organization member";
        NotificationsSettings => "notifications_settings", "notifications settings";
        NotificationTemplate => "notification_template", "notification template";
        IdpSyncSettingsOrganization => "idp_sync_settings_organization", "settings";
        IdpSyncSettingsGroup => "idp_sync_settings_group", "settings";
        IdpSyncSettingsRole => "idp_sync_settings_role", "settings";
        WorkspaceAgent => "workspace_agent", "workspace agent";
        WorkspaceApp => "workspace_app", "workspace app";
        PrebuildsSettings => "prebuilds_settings", "prebuilds settings";
        Task => "task", "task";
        AiSeat => "ai_seat", "ai seat";
        Chat => "chat", "chat";
    }
}

wire_enum! {
    /// What was done to the resource (Coder's `audit_action`).
    Action, "action" {
        Create => "create", "created";
        Write => "write", "updated";
        Delete => "delete", "deleted";
        Start => "start", "started";
        Stop => "stop", "stopped";
        Login => "login", "logged in";
        Logout => "logout", "logged out";
        Register => "register", "registered";
        RequestPasswordReset => "request_password_reset", "password reset requested";
        Connect => "connect", "connected";
        Disconnect => "disconnect", "disconnected";
        Open => "open", "opened";
        Close => "close", "closed";
    }
}

wire_enum! {
    /// Why a workspace build ran (Coder's `build_reason`).
    BuildReason, "build_reason" {
        Initiator => "initiator", "initiator";
        Autostart => "autostart", "autostart";
        Autostop => "autostop", "autostop";
        Dormancy => "dormancy", "dormancy";
        Failedstop => "failedstop", "failedstop";
        Autodelete => "autodelete", "autodelete";
        Dashboard => "dashboard", "dashboard";
        Cli => "cli", "cli";
        SshConnection => "ssh_connection", "ssh connection";
        VscodeConnection => "vscode_connection", "vscode connection";
        JetbrainsConnection => "jetbrains_connection", "jetbrains connection";
        TaskAutoPause => "task_auto_pause", "task auto pause";
        TaskManualPause => "task_manual_pause", "task manual pause";
        TaskResume => "task_resume", "task resume";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_value_round_trips_through_its_wire_string() {
        for value in ResourceType::ALL {
            assert_eq!(
                ResourceType::from_known(value.as_str()).as_ref(),
                Some(value)
            );
        }
        for value in Action::ALL {
            assert_eq!(value.as_str().parse::<Action>().unwrap(), *value);
        }
        for value in BuildReason::ALL {
            assert_eq!(BuildReason::from_wire(value.as_str()), *value);
        }
        assert_eq!(ResourceType::ALL.len(), 28);
        assert_eq!(Action::ALL.len(), 13);
        assert_eq!(BuildReason::ALL.len(), 14);
    }

    #[test]
    fn unknown_text_is_rejected_strictly_and_kept_leniently() {
        let error = "explode".parse::<Action>().unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"action has invalid value: "explode" is not a valid value"#
        );
        assert_eq!(
            Action::from_wire("explode"),
            Action::Unknown("explode".into())
        );
        // Coder's enum check is exact: no case folding.
        assert!(Action::from_known("Create").is_none());
    }

    #[test]
    fn serde_keeps_values_from_newer_producers() {
        let parsed: ResourceType = serde_json::from_str(r#""spaceship""#).unwrap();
        assert_eq!(parsed, ResourceType::Unknown("spaceship".into()));
        assert_eq!(
            serde_json::to_string(&ResourceType::ApiKey).unwrap(),
            r#""api_key""#
        );
        assert_eq!(ResourceType::ApiKey.friendly(), "token");
        assert_eq!(
            Action::RequestPasswordReset.friendly(),
            "password reset requested"
        );
    }
}
