//! What happens how often: the (resource type, action) pairs with their weights.

use auditlog_event::Action as A;
use auditlog_event::ResourceType as R;
use auditlog_event::{Action, BuildReason, ResourceType};

use crate::diffs::DiffTable;
use crate::diffs::DiffTable as D;
use crate::names::{
    AI_SEATS, CHATS, HEALTH, IDP, LICENSES, NOTIFY, NOTIFY_TEMPLATES, OAUTH, PREBUILDS, PROXIES,
    ROLES, TASKS,
};
use crate::rng::Weighted;

use self::Shape as S;

/// Weight (per 100,000 events), resource type, action, how to build it, which diffs it
/// draws from, and names for resources the world does not model.
type KindRow = (u32, R, A, S, D, &'static [&'static str]);

#[rustfmt::skip]
const KINDS: &[KindRow] = &[
    (19_000, R::WorkspaceBuild, A::Start, S::Build, D::WorkspaceBuild, &[]),
    (17_000, R::WorkspaceBuild, A::Stop, S::Build, D::WorkspaceBuild, &[]),
    (1_200, R::WorkspaceBuild, A::Delete, S::Build, D::WorkspaceBuild, &[]),
    (2_500, R::Workspace, A::Create, S::WorkspaceCreate, D::Workspace, &[]),
    (3_500, R::Workspace, A::Write, S::Workspace, D::Workspace, &[]),
    (1_000, R::Workspace, A::Delete, S::Workspace, D::Workspace, &[]),
    (5_000, R::WorkspaceAgent, A::Connect, S::Agent, D::None, &[]),
    (4_500, R::WorkspaceAgent, A::Disconnect, S::Agent, D::None, &[]),
    (6_000, R::WorkspaceApp, A::Open, S::App, D::None, &[]),
    (2_000, R::WorkspaceApp, A::Close, S::App, D::None, &[]),
    (12_000, R::ApiKey, A::Login, S::Session, D::None, &[]),
    (4_000, R::ApiKey, A::Logout, S::Session, D::None, &[]),
    (300, R::ApiKey, A::Register, S::Session, D::None, &[]),
    (1_500, R::ApiKey, A::Create, S::Token, D::ApiKey, &[]),
    (800, R::ApiKey, A::Delete, S::Token, D::ApiKey, &[]),
    (2_000, R::Template, A::Write, S::Template, D::Template, &[]),
    (500, R::Template, A::Create, S::Template, D::Template, &[]),
    (150, R::Template, A::Delete, S::Template, D::Template, &[]),
    (1_500, R::TemplateVersion, A::Create, S::Template, D::TemplateVersion, &[]),
    (600, R::TemplateVersion, A::Write, S::Template, D::TemplateVersion, &[]),
    (800, R::User, A::Create, S::User, D::User, &[]),
    (1_200, R::User, A::Write, S::User, D::User, &[]),
    (250, R::User, A::Delete, S::User, D::User, &[]),
    (300, R::User, A::RequestPasswordReset, S::User, D::None, &[]),
    (40, R::Organization, A::Create, S::Organization, D::Organization, &[]),
    (150, R::Organization, A::Write, S::Organization, D::Organization, &[]),
    (30, R::Organization, A::Delete, S::Organization, D::Organization, &[]),
    (700, R::OrganizationMember, A::Create, S::OrgScoped, D::Member, &[]),
    (400, R::OrganizationMember, A::Write, S::OrgScoped, D::Member, &[]),
    (200, R::OrganizationMember, A::Delete, S::OrgScoped, D::Member, &[]),
    (250, R::Group, A::Create, S::OrgScoped, D::Group, &[]),
    (600, R::Group, A::Write, S::OrgScoped, D::Group, &[]),
    (80, R::Group, A::Delete, S::OrgScoped, D::Group, &[]),
    (60, R::CustomRole, A::Create, S::OrgScoped, D::Settings, ROLES),
    (100, R::CustomRole, A::Write, S::OrgScoped, D::Settings, ROLES),
    (30, R::CustomRole, A::Delete, S::OrgScoped, D::Settings, ROLES),
    (40, R::IdpSyncSettingsOrganization, A::Write, S::OrgScoped, D::Settings, IDP),
    (40, R::IdpSyncSettingsGroup, A::Write, S::OrgScoped, D::Settings, IDP),
    (40, R::IdpSyncSettingsRole, A::Write, S::OrgScoped, D::Settings, IDP),
    (40, R::PrebuildsSettings, A::Write, S::OrgScoped, D::Settings, PREBUILDS),
    (500, R::Task, A::Create, S::OrgScoped, D::Task, TASKS),
    (300, R::Task, A::Write, S::OrgScoped, D::Task, TASKS),
    (150, R::Task, A::Delete, S::OrgScoped, D::Task, TASKS),
    (600, R::Chat, A::Create, S::OrgScoped, D::Chat, CHATS),
    (200, R::Chat, A::Write, S::OrgScoped, D::Chat, CHATS),
    (100, R::Chat, A::Delete, S::OrgScoped, D::Chat, CHATS),
    (300, R::GitSshKey, A::Write, S::SiteWide, D::GitSshKey, &[]),
    (100, R::GitSshKey, A::Create, S::SiteWide, D::GitSshKey, &[]),
    (60, R::ConvertLogin, A::Create, S::SiteWide, D::None, &[]),
    (40, R::License, A::Create, S::SiteWide, D::License, LICENSES),
    (30, R::License, A::Delete, S::SiteWide, D::License, LICENSES),
    (40, R::WorkspaceProxy, A::Create, S::SiteWide, D::Proxy, PROXIES),
    (80, R::WorkspaceProxy, A::Write, S::SiteWide, D::Proxy, PROXIES),
    (30, R::WorkspaceProxy, A::Delete, S::SiteWide, D::Proxy, PROXIES),
    (40, R::HealthSettings, A::Write, S::SiteWide, D::Settings, HEALTH),
    (40, R::NotificationsSettings, A::Write, S::SiteWide, D::Settings, NOTIFY),
    (80, R::NotificationTemplate, A::Write, S::SiteWide, D::Settings, NOTIFY_TEMPLATES),
    (60, R::Oauth2ProviderApp, A::Create, S::SiteWide, D::OAuthApp, OAUTH),
    (60, R::Oauth2ProviderApp, A::Write, S::SiteWide, D::OAuthApp, OAUTH),
    (30, R::Oauth2ProviderApp, A::Delete, S::SiteWide, D::OAuthApp, OAUTH),
    (50, R::Oauth2ProviderAppSecret, A::Create, S::SiteWide, D::OAuthSecret, OAUTH),
    (30, R::Oauth2ProviderAppSecret, A::Delete, S::SiteWide, D::OAuthSecret, OAUTH),
    (120, R::AiSeat, A::Create, S::SiteWide, D::None, AI_SEATS),
    (60, R::AiSeat, A::Delete, S::SiteWide, D::None, AI_SEATS),
];

/// How an event of a kind is put together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Build,
    WorkspaceCreate,
    Workspace,
    Agent,
    App,
    Session,
    Token,
    Template,
    User,
    Organization,
    OrgScoped,
    SiteWide,
}

/// One (resource type, action) with its weight and how to build it.
#[derive(Debug, Clone)]
pub(crate) struct Kind {
    pub(crate) resource_type: ResourceType,
    pub(crate) action: Action,
    pub(crate) shape: Shape,
    pub(crate) diff_table: DiffTable,
    /// Resource names for kinds whose resources the world does not model.
    pub(crate) targets: &'static [&'static str],
}

/// Weights per 100,000 events. Builds and workspace traffic dominate; logins are frequent;
/// the rarest kinds still appear about 15 times in 50,000 events.
pub(crate) fn kinds() -> Weighted<Kind> {
    Weighted::new(
        KINDS
            .iter()
            .map(
                |(weight, resource_type, action, shape, diff_table, targets)| {
                    let kind = Kind {
                        resource_type: resource_type.clone(),
                        action: action.clone(),
                        shape: *shape,
                        diff_table: *diff_table,
                        targets,
                    };
                    (*weight, kind)
                },
            )
            .collect(),
    )
}

pub(crate) fn build_reasons() -> Weighted<BuildReason> {
    use BuildReason as B;
    Weighted::new(vec![
        (4_000, B::Initiator),
        (1_600, B::Autostart),
        (1_900, B::Autostop),
        (700, B::Dashboard),
        (600, B::Cli),
        (300, B::SshConnection),
        (300, B::VscodeConnection),
        (150, B::JetbrainsConnection),
        (100, B::Dormancy),
        (80, B::Failedstop),
        (80, B::Autodelete),
        (60, B::TaskAutoPause),
        (60, B::TaskManualPause),
        (60, B::TaskResume),
    ])
}

/// A workspace's creation records the reason of its first build.
pub(crate) fn create_reasons() -> Weighted<BuildReason> {
    Weighted::new(vec![
        (7_000, BuildReason::Initiator),
        (2_000, BuildReason::Dashboard),
        (1_000, BuildReason::Cli),
    ])
}
