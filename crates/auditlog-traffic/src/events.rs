//! How each kind of event is put together from the world: one base draft per request, which
//! each kind adjusts.
//!
//! Every draw from the random stream happens in a fixed order per kind; changing that order
//! changes every event after it, which the digest test in `generator` catches.

use std::net::IpAddr;

use auditlog_event::{Action, AuditEvent, BuildReason, Diff, ResourceType};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::diffs::DiffTable;
use crate::kinds::{Kind, Shape};
use crate::names::{APPS, BROWSER_AGENTS, CLI_AGENTS, GROUPS, JETBRAINS_AGENTS, VSCODE_AGENTS};
use crate::rng::Rng;
use crate::world::{WorkspaceRecord, World};

/// Share of requests that fail, in per-mille.
const FAILED_PER_MILLE: u32 = 50;

/// Share of requests that are redirects (303), in per-mille, where Coder redirects.
const REDIRECT_PER_MILLE: u32 = 60;

/// Who made a request: a person from a client, or a background job with no user.
enum Origin {
    Person {
        user: usize,
        ip: IpAddr,
        user_agent: String,
    },
    Job {
        actor: &'static str,
        subsystem: &'static str,
    },
}

/// An event before the fields every event gets (id, time, request id); users and
/// organizations are indexes until the end, so only the final event clones them.
pub(crate) struct Draft {
    ip: Option<IpAddr>,
    user_agent: String,
    user: Option<usize>,
    organization: Option<usize>,
    resource_type: ResourceType,
    resource_id: Uuid,
    resource_target: String,
    resource_icon: String,
    action: Action,
    diff: Diff,
    status_code: i32,
    additional_fields: Map<String, Value>,
    build_reason: Option<BuildReason>,
    /// Background jobs do not fail with HTTP statuses.
    may_fail: bool,
    may_redirect: bool,
}

impl Draft {
    /// The base every kind adjusts: a successful request on a site-wide resource, with no
    /// icon, diff or build reason. A job's request records Coder's `automatic_*` fields.
    fn new(
        origin: Origin,
        resource_type: ResourceType,
        action: Action,
        resource_id: Uuid,
        resource_target: String,
    ) -> Self {
        let status_code = if action == Action::Create { 201 } else { 200 };
        let (ip, user_agent, user, additional_fields, may_fail) = match origin {
            Origin::Person {
                user,
                ip,
                user_agent,
            } => (Some(ip), user_agent, Some(user), Map::new(), true),
            Origin::Job { actor, subsystem } => {
                let mut fields = Map::with_capacity(2);
                fields.insert("automatic_actor".into(), Value::String(actor.into()));
                fields.insert(
                    "automatic_subsystem".into(),
                    Value::String(subsystem.into()),
                );
                (None, String::new(), None, fields, false)
            }
        };
        Draft {
            ip,
            user_agent,
            user,
            organization: None,
            resource_type,
            resource_id,
            resource_target,
            resource_icon: String::new(),
            action,
            diff: Diff::new(),
            status_code,
            additional_fields,
            build_reason: None,
            may_fail,
            may_redirect: false,
        }
    }

    /// The base draft of a kind whose resource type and action the table fixes.
    fn of_kind(
        kind: &Kind,
        origin: Origin,
        resource_id: Uuid,
        resource_target: String,
        diff: Diff,
    ) -> Self {
        let base = Draft::new(
            origin,
            kind.resource_type.clone(),
            kind.action.clone(),
            resource_id,
            resource_target,
        );
        Draft { diff, ..base }
    }

    /// The finished event, with the users and organizations of `world` its indexes name.
    pub(crate) fn into_event(
        self,
        id: Uuid,
        time: OffsetDateTime,
        request_id: Uuid,
        world: &World,
    ) -> AuditEvent {
        AuditEvent {
            id,
            time,
            request_id,
            ip: self.ip,
            user_agent: self.user_agent,
            user: self.user.map(|index| world.users[index].clone()),
            organization: self
                .organization
                .map(|index| world.organizations[index].clone()),
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            resource_target: self.resource_target,
            resource_icon: self.resource_icon,
            action: self.action,
            diff: self.diff,
            status_code: self.status_code,
            additional_fields: self.additional_fields,
            build_reason: self.build_reason,
        }
    }
}

/// Drafts events from a world, the random stream and each workspace's next build number.
pub(crate) struct Drafter<'a> {
    pub(crate) world: &'a World,
    pub(crate) rng: &'a mut Rng,
    pub(crate) build_numbers: &'a mut [u32],
}

impl<'a> Drafter<'a> {
    /// The next request: a kind picked by weight, built, then perhaps failed or redirected.
    pub(crate) fn draft(&mut self) -> Draft {
        let world = self.world;
        let kind = world.kinds.pick(self.rng);
        let mut draft = match kind.shape {
            Shape::Build => self.build_event(kind.action.clone()),
            Shape::WorkspaceCreate => self.workspace_create_event(),
            Shape::Workspace => self.workspace_event(kind.action.clone()),
            Shape::Agent => self.agent_event(kind.action.clone()),
            Shape::App => self.app_event(kind.action.clone()),
            Shape::Session => self.session_event(kind.action.clone()),
            Shape::Token => self.token_event(kind.action.clone()),
            Shape::Template => self.template_event(kind.resource_type.clone(), kind.action.clone()),
            Shape::User => self.user_event(kind.action.clone()),
            Shape::Organization => self.organization_event(kind.action.clone()),
            Shape::OrgScoped => self.org_scoped_event(kind),
            Shape::SiteWide => self.site_wide_event(kind),
        };
        self.finish_status(&mut draft);
        draft
    }

    /// Turns some requests into failures (empty diff, as Coder records them) or redirects.
    fn finish_status(&mut self, draft: &mut Draft) {
        if !draft.may_fail {
            return;
        }
        let roll = self.rng.below(1_000);
        if roll < FAILED_PER_MILLE {
            const FAILURES: [i32; 8] = [400, 400, 401, 403, 403, 404, 409, 500];
            draft.status_code = FAILURES[self.rng.below(FAILURES.len() as u32) as usize];
            draft.diff = Diff::new();
        } else if draft.may_redirect && roll < FAILED_PER_MILLE + REDIRECT_PER_MILLE {
            draft.status_code = 303;
            draft.diff = Diff::new();
        }
    }

    /// A user acting from a client: an address and one of `agents`.
    fn person(&mut self, user: usize, agents: &'static [&'static str]) -> Origin {
        let ip = self.world.user_ip(user, self.rng);
        let agent = agents[self.rng.below(agents.len() as u32) as usize];
        Origin::Person {
            user,
            ip,
            user_agent: agent.to_owned(),
        }
    }

    fn random_user(&mut self) -> usize {
        self.world.user_by_activity(self.rng)
    }

    /// A workspace, with more of the traffic on a few busy ones.
    fn random_workspace(&mut self) -> (usize, &'a WorkspaceRecord) {
        let world = self.world;
        let index = world.random_workspace(self.rng);
        (index, &world.workspaces[index])
    }

    fn template_icon(&self, workspace: &WorkspaceRecord) -> String {
        self.world.templates[workspace.template].icon.to_owned()
    }

    fn diff_of(&mut self, table: DiffTable, action: &Action) -> Diff {
        let variants = self.world.diffs.get(table, action);
        if variants.is_empty() {
            return Diff::new();
        }
        variants[self.rng.below(variants.len() as u32) as usize].clone()
    }

    /// A named resource the world does not model: a fresh id and one of the kind's names.
    fn unmodelled(&mut self, kind: &Kind) -> (Uuid, String) {
        let names = kind.targets;
        let name = names[self.rng.below(names.len() as u32) as usize];
        (self.rng.uuid_v4(), name.to_owned())
    }

    fn build_event(&mut self, requested: Action) -> Draft {
        let world = self.world;
        let (index, workspace) = self.random_workspace();
        let reason = world.build_reasons.pick(self.rng).clone();
        let action = build_action(&reason, requested);
        let build_number = self.build_numbers[index];
        self.build_numbers[index] = build_number.saturating_add(1);
        let origin = match automatic_actor(&reason) {
            Some((actor, subsystem)) => Origin::Job { actor, subsystem },
            None => {
                // Owners start most of their own builds; admins sometimes act for them.
                let actor = if self.rng.below(10) == 0 {
                    self.random_user()
                } else {
                    workspace.owner
                };
                let agents = match reason {
                    BuildReason::Cli | BuildReason::SshConnection => CLI_AGENTS,
                    BuildReason::VscodeConnection => VSCODE_AGENTS,
                    BuildReason::JetbrainsConnection => JETBRAINS_AGENTS,
                    _ => BROWSER_AGENTS,
                };
                self.person(actor, agents)
            }
        };
        let diff = self.diff_of(DiffTable::WorkspaceBuild, &action);
        let resource_id = self.rng.uuid_v4();
        let mut draft = Draft::new(
            origin,
            ResourceType::WorkspaceBuild,
            action,
            resource_id,
            workspace.name.clone(),
        );
        let build_fields = [
            ("workspace_name", workspace.name.clone()),
            ("build_number", build_number.to_string()),
            ("build_reason", reason.as_str().to_owned()),
            (
                "workspace_owner",
                world.users[workspace.owner].username.clone(),
            ),
            ("workspace_id", workspace.id_text.clone()),
        ];
        for (key, value) in build_fields {
            draft
                .additional_fields
                .insert(key.to_owned(), Value::String(value));
        }
        Draft {
            organization: Some(workspace.organization),
            resource_icon: self.template_icon(workspace),
            diff,
            build_reason: Some(reason),
            ..draft
        }
    }

    fn workspace_create_event(&mut self) -> Draft {
        let world = self.world;
        let (_, workspace) = self.random_workspace();
        let reason = world.create_reasons.pick(self.rng).clone();
        let agents = if reason == BuildReason::Cli {
            CLI_AGENTS
        } else {
            BROWSER_AGENTS
        };
        let origin = self.person(workspace.owner, agents);
        let diff = self.diff_of(DiffTable::Workspace, &Action::Create);
        Draft {
            organization: Some(workspace.organization),
            resource_icon: self.template_icon(workspace),
            diff,
            build_reason: Some(reason),
            ..Draft::new(
                origin,
                ResourceType::Workspace,
                Action::Create,
                workspace.id,
                workspace.name.clone(),
            )
        }
    }

    fn workspace_event(&mut self, action: Action) -> Draft {
        let (_, workspace) = self.random_workspace();
        let diff = self.diff_of(DiffTable::Workspace, &action);
        // Dormancy marks idle workspaces and deletes long-dormant ones with no user at all.
        let origin = if self.rng.below(20) == 0 {
            Origin::Job {
                actor: "dormancy",
                subsystem: "dormancy",
            }
        } else {
            self.person(workspace.owner, BROWSER_AGENTS)
        };
        Draft {
            organization: Some(workspace.organization),
            resource_icon: self.template_icon(workspace),
            diff,
            ..Draft::new(
                origin,
                ResourceType::Workspace,
                action,
                workspace.id,
                workspace.name.clone(),
            )
        }
    }

    fn agent_event(&mut self, action: Action) -> Draft {
        let (_, workspace) = self.random_workspace();
        let agents = if self.rng.below(2) == 0 {
            VSCODE_AGENTS
        } else {
            CLI_AGENTS
        };
        let origin = self.person(workspace.owner, agents);
        Draft {
            organization: Some(workspace.organization),
            ..Draft::new(
                origin,
                ResourceType::WorkspaceAgent,
                action,
                workspace.agent_id,
                format!("{}.main", workspace.name),
            )
        }
    }

    fn app_event(&mut self, action: Action) -> Draft {
        let (_, workspace) = self.random_workspace();
        let app = self.rng.below(APPS.len() as u32) as usize;
        let (app_slug, app_icon) = APPS[app];
        let origin = self.person(workspace.owner, BROWSER_AGENTS);
        Draft {
            organization: Some(workspace.organization),
            resource_icon: app_icon.to_owned(),
            // Coder redirects app opens through the subdomain proxy.
            may_redirect: true,
            ..Draft::new(
                origin,
                ResourceType::WorkspaceApp,
                action,
                workspace.app_ids[app],
                app_slug.to_owned(),
            )
        }
    }

    /// Logins, logouts and registrations: site-wide, on the session's token, no diff.
    fn session_event(&mut self, action: Action) -> Draft {
        let user = self.random_user();
        let origin = self.person(user, BROWSER_AGENTS);
        let status_code = if action == Action::Logout { 200 } else { 201 };
        let resource_id = self.rng.uuid_v4();
        let username = self.world.users[user].username.clone();
        Draft {
            status_code,
            // OIDC logins bounce through the identity provider.
            may_redirect: true,
            ..Draft::new(origin, ResourceType::ApiKey, action, resource_id, username)
        }
    }

    fn token_event(&mut self, action: Action) -> Draft {
        let user = self.random_user();
        let token = self.world.tokens[self.rng.below(self.world.tokens.len() as u32) as usize];
        let person = self.person(user, CLI_AGENTS);
        let diff = self.diff_of(DiffTable::ApiKey, &action);
        // Expired tokens are swept by a background job.
        let origin = if action == Action::Delete && self.rng.below(4) == 0 {
            Origin::Job {
                actor: "token_expiry",
                subsystem: "dbpurge",
            }
        } else {
            person
        };
        let resource_id = self.rng.uuid_v4();
        Draft {
            diff,
            ..Draft::new(
                origin,
                ResourceType::ApiKey,
                action,
                resource_id,
                token.to_owned(),
            )
        }
    }

    fn template_event(&mut self, resource_type: ResourceType, action: Action) -> Draft {
        let world = self.world;
        let template = &world.templates[self.rng.below(world.templates.len() as u32) as usize];
        let (resource_id, resource_target, table) = if resource_type == ResourceType::Template {
            (template.id, template.name.clone(), DiffTable::Template)
        } else {
            let version = self.rng.below(template.version_ids.len() as u32) as usize;
            (
                template.version_ids[version],
                format!("{}-v{}", template.name, version + 1),
                DiffTable::TemplateVersion,
            )
        };
        let admin = world.admin_of(template.organization, self.rng);
        let agents = if self.rng.below(3) == 0 {
            CLI_AGENTS
        } else {
            BROWSER_AGENTS
        };
        let origin = self.person(admin, agents);
        let diff = self.diff_of(table, &action);
        Draft {
            organization: Some(template.organization),
            resource_icon: template.icon.to_owned(),
            diff,
            ..Draft::new(origin, resource_type, action, resource_id, resource_target)
        }
    }

    fn user_event(&mut self, action: Action) -> Draft {
        let subject = self.random_user();
        let resource_id = self.world.users[subject].id;
        let resource_target = self.world.users[subject].username.clone();
        let diff = self.diff_of(DiffTable::User, &action);
        // A password reset is requested by whoever knows the email, signed in or not.
        let actor = match action {
            Action::RequestPasswordReset => subject,
            Action::Write if self.rng.below(2) == 0 => subject,
            _ => self.world.admin_of(0, self.rng),
        };
        let origin = self.person(actor, BROWSER_AGENTS);
        Draft {
            diff,
            ..Draft::new(
                origin,
                ResourceType::User,
                action,
                resource_id,
                resource_target,
            )
        }
    }

    fn organization_event(&mut self, action: Action) -> Draft {
        let organization = self.rng.below(self.world.organizations.len() as u32) as usize;
        let admin = self.world.admin_of(organization, self.rng);
        let origin = self.person(admin, BROWSER_AGENTS);
        let diff = self.diff_of(DiffTable::Organization, &action);
        let record = &self.world.organizations[organization];
        Draft {
            organization: Some(organization),
            resource_icon: record.icon.clone(),
            diff,
            ..Draft::new(
                origin,
                ResourceType::Organization,
                action,
                record.id,
                record.name.clone(),
            )
        }
    }

    /// Groups, members, roles, IdP sync, prebuilds, tasks and chats: organization resources
    /// an administrator (or, for tasks and chats, a user) manages.
    fn org_scoped_event(&mut self, kind: &Kind) -> Draft {
        let by_user = matches!(kind.resource_type, ResourceType::Task | ResourceType::Chat);
        let (actor, organization) = if by_user {
            let user = self.random_user();
            (user, self.world.user_organization[user])
        } else {
            let organization = self.world.random_organization(self.rng);
            (self.world.admin_of(organization, self.rng), organization)
        };
        let origin = self.person(actor, BROWSER_AGENTS);
        let (resource_id, resource_target) = match kind.resource_type {
            ResourceType::OrganizationMember => {
                let member = self.random_user();
                let member = &self.world.users[member];
                (member.id, member.username.clone())
            }
            ResourceType::Group => {
                let group = self.rng.below(GROUPS.len() as u32) as usize;
                (
                    self.world.org_group_ids[organization][group],
                    GROUPS[group].to_owned(),
                )
            }
            _ => self.unmodelled(kind),
        };
        let diff = self.diff_of(kind.diff_table, &kind.action);
        Draft {
            organization: Some(organization),
            ..Draft::of_kind(kind, origin, resource_id, resource_target, diff)
        }
    }

    /// Licenses, proxies, deployment settings, OAuth2 apps, ssh keys, login conversions and
    /// AI seats: deployment-wide resources with no organization.
    fn site_wide_event(&mut self, kind: &Kind) -> Draft {
        let by_owner = matches!(
            kind.resource_type,
            ResourceType::GitSshKey | ResourceType::ConvertLogin
        );
        let actor = if by_owner {
            self.random_user()
        } else {
            self.world.admin_of(0, self.rng)
        };
        let origin = self.person(actor, BROWSER_AGENTS);
        let (resource_id, resource_target) = match kind.resource_type {
            // The key itself is the target, which descriptions never show.
            ResourceType::GitSshKey => (self.world.users[actor].id, String::new()),
            ResourceType::ConvertLogin => (self.world.users[actor].id, "oidc".to_owned()),
            _ => self.unmodelled(kind),
        };
        let diff = self.diff_of(kind.diff_table, &kind.action);
        Draft::of_kind(kind, origin, resource_id, resource_target, diff)
    }
}

/// Builds record the transition the reason implies; people choose start, stop or delete.
fn build_action(reason: &BuildReason, requested: Action) -> Action {
    match reason {
        BuildReason::Autostart
        | BuildReason::Dashboard
        | BuildReason::SshConnection
        | BuildReason::VscodeConnection
        | BuildReason::JetbrainsConnection
        | BuildReason::TaskResume => Action::Start,
        BuildReason::Autostop
        | BuildReason::Dormancy
        | BuildReason::Failedstop
        | BuildReason::TaskAutoPause
        | BuildReason::TaskManualPause => Action::Stop,
        BuildReason::Autodelete => Action::Delete,
        _ => requested,
    }
}

/// Coder's `automatic_actor` and `automatic_subsystem` of builds no person started.
fn automatic_actor(reason: &BuildReason) -> Option<(&'static str, &'static str)> {
    match reason {
        BuildReason::Autostart => Some(("autostart", "lifecycle_executor")),
        BuildReason::Autostop => Some(("autostop", "lifecycle_executor")),
        BuildReason::Dormancy => Some(("dormancy", "lifecycle_executor")),
        BuildReason::Failedstop => Some(("failedstop", "lifecycle_executor")),
        BuildReason::Autodelete => Some(("autodelete", "lifecycle_executor")),
        BuildReason::TaskAutoPause => Some(("task_auto_pause", "task_lifecycle")),
        _ => None,
    }
}
