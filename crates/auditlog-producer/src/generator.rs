//! Realistic, deterministic Coder-like audit traffic for load tests, demos and oracles.
//!
//! ```text
//! seed ──▶ world (organizations, users, templates, workspaces, tokens)
//!            │
//! sequence ──┴──▶ pick (resource type, action) by weight ──▶ AuditEvent (valid)
//! ```
//!
//! The world is built once from the seed. Each event then draws from one random stream, so
//! the same seed and the same settings give the same events, in the same order, with the
//! same ids. Event ids are UUID v7 whose timestamp and random bits come from the seed and
//! the sequence number only (not from the clock), so they stay identical across runs even
//! when the default time span (which ends at "now") moves.
//!
//! Proportions follow what a busy Coder deployment records: workspace builds (start/stop)
//! dominate, logins are frequent, deletes are rarer, and every resource type and action
//! Coder knows shows up at least occasionally. About 5% of requests fail (status >= 400,
//! empty diff), a few are redirects (303), background jobs act with no user, and site-wide
//! resources (users, licenses, tokens, ...) have no organization.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use auditlog_event::{Action, Actor, AuditEvent, BuildReason, Diff, Organization, ResourceType};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use self::diffs::DiffTable;
use self::rng::{Rng, Weighted, splitmix64};
use self::world::{
    APPS, BROWSER_AGENTS, CLI_AGENTS, GROUPS, JETBRAINS_AGENTS, VSCODE_AGENTS, World,
};

mod diffs;
mod kinds;
mod rng;
mod world;

/// Events in the default time span.
pub const DEFAULT_EVENT_COUNT: u64 = 1_000_000;

/// Length of the default time span, which ends when the generator is created.
pub const DEFAULT_SPAN: time::Duration = time::Duration::days(30);

/// Users in the generated world.
pub const NUM_USERS: usize = 3_000;

/// Base of the timestamp field of generated event ids: 2025-01-01T00:00:00Z in
/// milliseconds. Event `n` gets `base + n`, so ids sort like the events and never collide
/// within one generator.
const ID_EPOCH_MS: u64 = 1_735_689_600_000;

/// Share of requests that fail, in per-mille.
const FAILED_PER_MILLE: u32 = 50;

/// Share of requests that are redirects (303), in per-mille, where Coder redirects.
const REDIRECT_PER_MILLE: u32 = 60;

/// One deterministic generator of Coder-like audit events.
///
/// ```
/// use auditlog_producer::generator::TrafficGenerator;
/// use time::macros::datetime;
///
/// let events: Vec<_> = TrafficGenerator::new(7)
///     .with_time_span(datetime!(2025-01-01 0:00 UTC), datetime!(2025-01-02 0:00 UTC), 1_000)
///     .collect();
/// assert_eq!(events.len(), 1_000);
/// assert!(events.iter().all(|event| event.validate().is_ok()));
/// assert!(events.windows(2).all(|pair| pair[0].time <= pair[1].time));
///
/// let again: Vec<_> = TrafficGenerator::new(7)
///     .with_time_span(datetime!(2025-01-01 0:00 UTC), datetime!(2025-01-02 0:00 UTC), 1_000)
///     .collect();
/// assert_eq!(events, again);
/// ```
#[derive(Clone)]
pub struct TrafficGenerator {
    world: Arc<World>,
    rng: Rng,
    /// Seed-derived key that makes the random bits of event ids differ between seeds.
    id_key: u64,
    start_nanos: i128,
    span_nanos: u128,
    count: u64,
    /// Index of the next event; `count` when the iterator is done.
    sequence: u64,
    /// The next build number of each workspace, indexed like `World::workspaces`.
    build_numbers: Vec<u32>,
}

impl fmt::Debug for TrafficGenerator {
    // The world holds thousands of users; a summary is what a log line needs.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TrafficGenerator")
            .field("seed", &self.world.seed)
            .field("organizations", &self.world.organizations.len())
            .field("users", &self.world.users.len())
            .field("workspaces", &self.world.workspaces.len())
            .field("count", &self.count)
            .field("sequence", &self.sequence)
            .finish_non_exhaustive()
    }
}

impl TrafficGenerator {
    /// A generator of [`DEFAULT_EVENT_COUNT`] events over the 30 days before now.
    pub fn new(seed: u64) -> Self {
        let world = World::build(seed);
        let build_numbers = world
            .workspaces
            .iter()
            .map(|workspace| workspace.first_build_number)
            .collect();
        let end = OffsetDateTime::now_utc();
        let mut generator = TrafficGenerator {
            world: Arc::new(world),
            rng: Rng::new(splitmix64(seed ^ 0x6576_656e_7473)),
            id_key: splitmix64(seed ^ 0x0069_646b_6579),
            start_nanos: 0,
            span_nanos: 0,
            count: 0,
            sequence: 0,
            build_numbers,
        };
        generator.set_span(end - DEFAULT_SPAN, end, DEFAULT_EVENT_COUNT);
        generator
    }

    /// Spreads `count` events over `[start, end)` in increasing time order (with jitter).
    ///
    /// The iterator then yields exactly `count` events. Events are valid only if the span
    /// lies in the range [`AuditEvent::validate`] accepts (1900 to 2299); an empty or
    /// reversed span puts every event at `start`.
    pub fn with_time_span(
        mut self,
        start: OffsetDateTime,
        end: OffsetDateTime,
        count: u64,
    ) -> Self {
        self.set_span(start, end, count);
        self
    }

    fn set_span(&mut self, start: OffsetDateTime, end: OffsetDateTime, count: u64) {
        self.start_nanos = start.unix_timestamp_nanos();
        self.span_nanos =
            u128::try_from(end.unix_timestamp_nanos() - self.start_nanos).unwrap_or(0);
        self.count = count;
    }

    /// The organizations events belong to (site-wide events have none).
    pub fn organizations(&self) -> &[Organization] {
        &self.world.organizations
    }

    /// Every user that acts in the generated events.
    pub fn users(&self) -> &[Actor] {
        &self.world.users
    }

    /// The seed this generator was made with.
    pub fn seed(&self) -> u64 {
        self.world.seed
    }

    /// Events this generator yields in total (its `count`).
    pub fn event_count(&self) -> u64 {
        self.count
    }

    /// The time of event `sequence`: its slot of the span plus a random offset within it,
    /// so times strictly follow the sequence order up to microsecond truncation.
    fn event_time(&mut self, sequence: u64) -> OffsetDateTime {
        const JITTER_BITS: u32 = 32;
        let jitter = u128::from(self.rng.next_u64() >> (64 - JITTER_BITS));
        let position = (u128::from(sequence) << JITTER_BITS) | jitter;
        let slots = u128::from(self.count.max(1)) << JITTER_BITS;
        let offset = self.span_nanos.saturating_mul(position) / slots;
        let nanos = self.start_nanos + i128::try_from(offset).unwrap_or(0);
        let micros_nanos = nanos - nanos.rem_euclid(1_000);
        OffsetDateTime::from_unix_timestamp_nanos(micros_nanos)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// A UUID v7 made of the seed and the sequence only.
    fn event_id(&self, sequence: u64) -> Uuid {
        let millis = ID_EPOCH_MS.wrapping_add(sequence) & ((1 << 48) - 1);
        let random = splitmix64(self.id_key.wrapping_add(sequence));
        let random_a = (random >> 52) as u16 & 0x0fff;
        let random_b = splitmix64(random) & ((1 << 62) - 1);
        let value = (u128::from(millis) << 80)
            | (0x7 << 76)
            | (u128::from(random_a) << 64)
            | (0b10 << 62)
            | u128::from(random_b);
        Uuid::from_u128(value)
    }

    fn generate(&mut self, sequence: u64) -> AuditEvent {
        let time = self.event_time(sequence);
        let id = self.event_id(sequence);
        let request_id = self.rng.uuid_v4();
        // A second handle on the world lets the kind borrow from it while `self` mutates.
        let world = Arc::clone(&self.world);
        let kind = world.kinds.pick(&mut self.rng);
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
        AuditEvent {
            id,
            time,
            request_id,
            ip: draft.ip,
            user_agent: draft.user_agent,
            user: draft.user.map(|index| self.world.users[index].clone()),
            organization: draft
                .organization
                .map(|index| self.world.organizations[index].clone()),
            resource_type: draft.resource_type,
            resource_id: draft.resource_id,
            resource_target: draft.resource_target,
            resource_icon: draft.resource_icon,
            action: draft.action,
            diff: draft.diff,
            status_code: draft.status_code,
            additional_fields: draft.additional_fields,
            build_reason: draft.build_reason,
        }
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

    /// A user acting from a client: the user, an address and a user agent.
    fn client(&mut self, user: usize, agents: &'static [&'static str]) -> (Option<IpAddr>, String) {
        let ip = self.world.user_ip(user, &mut self.rng);
        let agent = agents[self.rng.below(agents.len() as u32) as usize];
        (Some(ip), agent.to_owned())
    }

    fn random_user(&mut self) -> usize {
        self.world.user_by_activity(&mut self.rng)
    }

    fn diff_of(&mut self, table: DiffTable, action: &Action) -> Diff {
        let variants = self.world.diffs.get(table, action);
        if variants.is_empty() {
            return Diff::new();
        }
        variants[self.rng.below(variants.len() as u32) as usize].clone()
    }

    fn build_event(&mut self, requested: Action) -> Draft {
        let workspace_index = self.world.random_workspace(&mut self.rng);
        let reason = self.world.build_reasons.pick(&mut self.rng).clone();
        let action = build_action(&reason, requested);
        let workspace = &self.world.workspaces[workspace_index];
        let owner = workspace.owner;
        let build_number = self.build_numbers[workspace_index];
        self.build_numbers[workspace_index] = build_number.saturating_add(1);

        let mut additional_fields = Map::with_capacity(7);
        additional_fields.insert(
            "workspace_name".into(),
            Value::String(workspace.name.clone()),
        );
        additional_fields.insert(
            "build_number".into(),
            Value::String(build_number.to_string()),
        );
        additional_fields.insert(
            "build_reason".into(),
            Value::String(reason.as_str().to_owned()),
        );
        additional_fields.insert(
            "workspace_owner".into(),
            Value::String(self.world.users[owner].username.clone()),
        );
        additional_fields.insert(
            "workspace_id".into(),
            Value::String(workspace.id_text.clone()),
        );
        let automatic = automatic_actor(&reason);
        let (user, ip, user_agent) = match automatic {
            Some((actor, subsystem)) => {
                additional_fields.insert("automatic_actor".into(), Value::String(actor.into()));
                additional_fields.insert(
                    "automatic_subsystem".into(),
                    Value::String(subsystem.into()),
                );
                (None, None, String::new())
            }
            None => {
                // Owners start most of their own builds; admins sometimes act for them.
                let actor = if self.rng.below(10) == 0 {
                    self.random_user()
                } else {
                    owner
                };
                let agents = match reason {
                    BuildReason::Cli | BuildReason::SshConnection => CLI_AGENTS,
                    BuildReason::VscodeConnection => VSCODE_AGENTS,
                    BuildReason::JetbrainsConnection => JETBRAINS_AGENTS,
                    _ => BROWSER_AGENTS,
                };
                let (ip, agent) = self.client(actor, agents);
                (Some(actor), ip, agent)
            }
        };
        let workspace = &self.world.workspaces[workspace_index];
        let organization = Some(workspace.organization);
        let resource_target = workspace.name.clone();
        let resource_icon = self.world.templates[workspace.template].icon.to_owned();
        let diff = self.diff_of(DiffTable::WorkspaceBuild, &action);
        Draft {
            ip,
            user_agent,
            user,
            organization,
            resource_type: ResourceType::WorkspaceBuild,
            resource_id: self.rng.uuid_v4(),
            resource_target,
            resource_icon,
            status_code: 200,
            action,
            diff,
            additional_fields,
            build_reason: Some(reason),
            may_fail: automatic.is_none(),
            may_redirect: false,
        }
    }

    fn workspace_create_event(&mut self) -> Draft {
        let workspace_index = self.world.random_workspace(&mut self.rng);
        let reason = self.world.create_reasons.pick(&mut self.rng).clone();
        let workspace = &self.world.workspaces[workspace_index];
        let owner = workspace.owner;
        let organization = workspace.organization;
        let resource_id = workspace.id;
        let resource_target = workspace.name.clone();
        let resource_icon = self.world.templates[workspace.template].icon.to_owned();
        let agents = if reason == BuildReason::Cli {
            CLI_AGENTS
        } else {
            BROWSER_AGENTS
        };
        let (ip, user_agent) = self.client(owner, agents);
        let diff = self.diff_of(DiffTable::Workspace, &Action::Create);
        Draft {
            ip,
            user_agent,
            user: Some(owner),
            organization: Some(organization),
            resource_type: ResourceType::Workspace,
            resource_id,
            resource_target,
            resource_icon,
            action: Action::Create,
            diff,
            status_code: 201,
            additional_fields: Map::new(),
            build_reason: Some(reason),
            may_fail: true,
            may_redirect: false,
        }
    }

    fn workspace_event(&mut self, action: Action) -> Draft {
        let workspace_index = self.world.random_workspace(&mut self.rng);
        let workspace = &self.world.workspaces[workspace_index];
        let owner = workspace.owner;
        let organization = workspace.organization;
        let resource_id = workspace.id;
        let resource_target = workspace.name.clone();
        let resource_icon = self.world.templates[workspace.template].icon.to_owned();
        let diff = self.diff_of(DiffTable::Workspace, &action);
        // Dormancy marks idle workspaces and deletes long-dormant ones with no user at all.
        if self.rng.below(20) == 0 {
            let mut additional_fields = Map::with_capacity(2);
            additional_fields.insert("automatic_actor".into(), Value::String("dormancy".into()));
            additional_fields.insert(
                "automatic_subsystem".into(),
                Value::String("dormancy".into()),
            );
            return Draft {
                ip: None,
                user_agent: String::new(),
                user: None,
                organization: Some(organization),
                resource_type: ResourceType::Workspace,
                resource_id,
                resource_target,
                resource_icon,
                action,
                diff,
                status_code: 200,
                additional_fields,
                build_reason: None,
                may_fail: false,
                may_redirect: false,
            };
        }
        let (ip, user_agent) = self.client(owner, BROWSER_AGENTS);
        Draft {
            ip,
            user_agent,
            user: Some(owner),
            organization: Some(organization),
            resource_type: ResourceType::Workspace,
            resource_id,
            resource_target,
            resource_icon,
            action,
            diff,
            status_code: 200,
            additional_fields: Map::new(),
            build_reason: None,
            may_fail: true,
            may_redirect: false,
        }
    }

    fn agent_event(&mut self, action: Action) -> Draft {
        let workspace_index = self.world.random_workspace(&mut self.rng);
        let workspace = &self.world.workspaces[workspace_index];
        let owner = workspace.owner;
        let organization = workspace.organization;
        let resource_id = workspace.agent_id;
        let resource_target = format!("{}.main", workspace.name);
        let agents = if self.rng.below(2) == 0 {
            VSCODE_AGENTS
        } else {
            CLI_AGENTS
        };
        let (ip, user_agent) = self.client(owner, agents);
        Draft {
            ip,
            user_agent,
            user: Some(owner),
            organization: Some(organization),
            resource_type: ResourceType::WorkspaceAgent,
            resource_id,
            resource_target,
            resource_icon: String::new(),
            action,
            diff: Diff::new(),
            status_code: 200,
            additional_fields: Map::new(),
            build_reason: None,
            may_fail: true,
            may_redirect: false,
        }
    }

    fn app_event(&mut self, action: Action) -> Draft {
        let workspace_index = self.world.random_workspace(&mut self.rng);
        let workspace = &self.world.workspaces[workspace_index];
        let owner = workspace.owner;
        let organization = workspace.organization;
        let app = self.rng.below(APPS.len() as u32) as usize;
        let resource_id = workspace.app_ids[app];
        let (app_slug, app_icon) = APPS[app];
        let (ip, user_agent) = self.client(owner, BROWSER_AGENTS);
        Draft {
            ip,
            user_agent,
            user: Some(owner),
            organization: Some(organization),
            resource_type: ResourceType::WorkspaceApp,
            resource_id,
            resource_target: app_slug.to_owned(),
            resource_icon: app_icon.to_owned(),
            action,
            diff: Diff::new(),
            status_code: 200,
            additional_fields: Map::new(),
            build_reason: None,
            may_fail: true,
            // Coder redirects app opens through the subdomain proxy.
            may_redirect: true,
        }
    }

    /// Logins, logouts and registrations: site-wide, on the session's token, no diff.
    fn session_event(&mut self, action: Action) -> Draft {
        let user = self.random_user();
        let (ip, user_agent) = self.client(user, BROWSER_AGENTS);
        let status_code = if action == Action::Logout { 200 } else { 201 };
        Draft {
            ip,
            user_agent,
            user: Some(user),
            organization: None,
            resource_type: ResourceType::ApiKey,
            resource_id: self.rng.uuid_v4(),
            resource_target: self.world.users[user].username.clone(),
            resource_icon: String::new(),
            action,
            diff: Diff::new(),
            status_code,
            additional_fields: Map::new(),
            build_reason: None,
            may_fail: true,
            // OIDC logins bounce through the identity provider.
            may_redirect: true,
        }
    }

    fn token_event(&mut self, action: Action) -> Draft {
        let user = self.random_user();
        let token = self.world.tokens[self.rng.below(self.world.tokens.len() as u32) as usize];
        let (ip, user_agent) = self.client(user, CLI_AGENTS);
        let diff = self.diff_of(DiffTable::ApiKey, &action);
        let status_code = if action == Action::Create { 201 } else { 200 };
        // Expired tokens are swept by a background job.
        if action == Action::Delete && self.rng.below(4) == 0 {
            let mut additional_fields = Map::with_capacity(2);
            additional_fields.insert(
                "automatic_actor".into(),
                Value::String("token_expiry".into()),
            );
            additional_fields.insert(
                "automatic_subsystem".into(),
                Value::String("dbpurge".into()),
            );
            return Draft {
                ip: None,
                user_agent: String::new(),
                user: None,
                organization: None,
                resource_type: ResourceType::ApiKey,
                resource_id: self.rng.uuid_v4(),
                resource_target: token.to_owned(),
                resource_icon: String::new(),
                action,
                diff,
                status_code,
                additional_fields,
                build_reason: None,
                may_fail: false,
                may_redirect: false,
            };
        }
        Draft {
            ip,
            user_agent,
            user: Some(user),
            organization: None,
            resource_type: ResourceType::ApiKey,
            resource_id: self.rng.uuid_v4(),
            resource_target: token.to_owned(),
            resource_icon: String::new(),
            action,
            diff,
            status_code,
            additional_fields: Map::new(),
            build_reason: None,
            may_fail: true,
            may_redirect: false,
        }
    }

    fn template_event(&mut self, resource_type: ResourceType, action: Action) -> Draft {
        let template_index = self.rng.below(self.world.templates.len() as u32) as usize;
        let template = &self.world.templates[template_index];
        let organization = template.organization;
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
        let resource_icon = template.icon.to_owned();
        let admin = self.world.admin_of(organization, &mut self.rng);
        let agents = if self.rng.below(3) == 0 {
            CLI_AGENTS
        } else {
            BROWSER_AGENTS
        };
        let (ip, user_agent) = self.client(admin, agents);
        let diff = self.diff_of(table, &action);
        let status_code = if action == Action::Create { 201 } else { 200 };
        Draft {
            ip,
            user_agent,
            user: Some(admin),
            organization: Some(organization),
            resource_type,
            resource_id,
            resource_target,
            resource_icon,
            action,
            diff,
            status_code,
            additional_fields: Map::new(),
            build_reason: None,
            may_fail: true,
            may_redirect: false,
        }
    }

    fn user_event(&mut self, action: Action) -> Draft {
        let subject = self.random_user();
        let resource_id = self.world.users[subject].id;
        let resource_target = self.world.users[subject].username.clone();
        let diff = self.diff_of(DiffTable::User, &action);
        let status_code = if action == Action::Create { 201 } else { 200 };
        // A password reset is requested by whoever knows the email, signed in or not.
        let actor = match action {
            Action::RequestPasswordReset => subject,
            Action::Write if self.rng.below(2) == 0 => subject,
            _ => self.world.admin_of(0, &mut self.rng),
        };
        let (ip, user_agent) = self.client(actor, BROWSER_AGENTS);
        Draft {
            ip,
            user_agent,
            user: Some(actor),
            organization: None,
            resource_type: ResourceType::User,
            resource_id,
            resource_target,
            resource_icon: String::new(),
            action,
            diff,
            status_code,
            additional_fields: Map::new(),
            build_reason: None,
            may_fail: true,
            may_redirect: false,
        }
    }

    fn organization_event(&mut self, action: Action) -> Draft {
        let organization = self.rng.below(self.world.organizations.len() as u32) as usize;
        let admin = self.world.admin_of(organization, &mut self.rng);
        let (ip, user_agent) = self.client(admin, BROWSER_AGENTS);
        let diff = self.diff_of(DiffTable::Organization, &action);
        let status_code = if action == Action::Create { 201 } else { 200 };
        let record = &self.world.organizations[organization];
        Draft {
            ip,
            user_agent,
            user: Some(admin),
            organization: Some(organization),
            resource_type: ResourceType::Organization,
            resource_id: record.id,
            resource_target: record.name.clone(),
            resource_icon: record.icon.clone(),
            action,
            diff,
            status_code,
            additional_fields: Map::new(),
            build_reason: None,
            may_fail: true,
            may_redirect: false,
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
            let organization = self.world.random_organization(&mut self.rng);
            (
                self.world.admin_of(organization, &mut self.rng),
                organization,
            )
        };
        let (ip, user_agent) = self.client(actor, BROWSER_AGENTS);
        let (resource_id, resource_target) = match kind.resource_type {
            ResourceType::OrganizationMember => {
                let member = self.random_user();
                (
                    self.world.users[member].id,
                    self.world.users[member].username.clone(),
                )
            }
            ResourceType::Group => {
                let group = self.rng.below(GROUPS.len() as u32) as usize;
                (
                    self.world.org_group_ids[organization][group],
                    GROUPS[group].to_owned(),
                )
            }
            _ => {
                let names = kind.targets;
                let name = names[self.rng.below(names.len() as u32) as usize];
                (self.rng.uuid_v4(), name.to_owned())
            }
        };
        let diff = self.diff_of(kind.diff_table, &kind.action);
        let status_code = if kind.action == Action::Create {
            201
        } else {
            200
        };
        Draft {
            ip,
            user_agent,
            user: Some(actor),
            organization: Some(organization),
            resource_type: kind.resource_type.clone(),
            resource_id,
            resource_target,
            resource_icon: String::new(),
            action: kind.action.clone(),
            diff,
            status_code,
            additional_fields: Map::new(),
            build_reason: None,
            may_fail: true,
            may_redirect: false,
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
            self.world.admin_of(0, &mut self.rng)
        };
        let (ip, user_agent) = self.client(actor, BROWSER_AGENTS);
        let (resource_id, resource_target) = match kind.resource_type {
            // The key itself is the target, which descriptions never show.
            ResourceType::GitSshKey => (self.world.users[actor].id, String::new()),
            ResourceType::ConvertLogin => (self.world.users[actor].id, "oidc".to_owned()),
            _ => {
                let names = kind.targets;
                let name = names[self.rng.below(names.len() as u32) as usize];
                (self.rng.uuid_v4(), name.to_owned())
            }
        };
        let diff = self.diff_of(kind.diff_table, &kind.action);
        let status_code = if kind.action == Action::Create {
            201
        } else {
            200
        };
        Draft {
            ip,
            user_agent,
            user: Some(actor),
            organization: None,
            resource_type: kind.resource_type.clone(),
            resource_id,
            resource_target,
            resource_icon: String::new(),
            action: kind.action.clone(),
            diff,
            status_code,
            additional_fields: Map::new(),
            build_reason: None,
            may_fail: true,
            may_redirect: false,
        }
    }
}

impl Iterator for TrafficGenerator {
    type Item = AuditEvent;

    fn next(&mut self) -> Option<AuditEvent> {
        if self.sequence >= self.count {
            return None;
        }
        let sequence = self.sequence;
        self.sequence += 1;
        Some(self.generate(sequence))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = usize::try_from(self.count - self.sequence).unwrap_or(usize::MAX);
        (remaining, Some(remaining))
    }
}

impl ExactSizeIterator for TrafficGenerator {}

impl std::iter::FusedIterator for TrafficGenerator {}

/// An event before the fields every event gets (id, time, request id); users and
/// organizations are indexes until the end, so only the final event clones them.
struct Draft {
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

/// How an event of a kind is put together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
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
struct Kind {
    resource_type: ResourceType,
    action: Action,
    shape: Shape,
    diff_table: DiffTable,
    /// Resource names for kinds whose resources the world does not model.
    targets: &'static [&'static str],
}

/// Weights per 100,000 events. Builds and workspace traffic dominate; logins are frequent;
/// the rarest kinds still appear about 15 times in 50,000 events.
fn kinds() -> Weighted<Kind> {
    Weighted::new(
        kinds::KINDS
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

fn build_reasons() -> Weighted<BuildReason> {
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
fn create_reasons() -> Weighted<BuildReason> {
    Weighted::new(vec![
        (7_000, BuildReason::Initiator),
        (2_000, BuildReason::Dashboard),
        (1_000, BuildReason::Cli),
    ])
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use time::macros::datetime;

    use super::*;

    fn sample(count: u64) -> Vec<AuditEvent> {
        TrafficGenerator::new(42)
            .with_time_span(
                datetime!(2025-03-01 0:00 UTC),
                datetime!(2025-04-01 0:00 UTC),
                count,
            )
            .collect()
    }

    #[test]
    fn every_event_of_100k_is_valid_with_a_unique_v7_id() {
        let events = sample(100_000);
        assert_eq!(events.len(), 100_000);
        let mut ids = HashSet::with_capacity(events.len());
        for event in &events {
            if let Err(error) = event.validate() {
                panic!("invalid generated event {}: {error}: {event:?}", event.id);
            }
            assert_eq!(event.id.get_version_num(), 7);
            assert!(ids.insert(event.id), "duplicate id {}", event.id);
        }
    }

    #[test]
    fn times_increase_and_stay_in_the_span() {
        let start = datetime!(2025-03-01 0:00 UTC);
        let end = datetime!(2025-03-02 0:00 UTC);
        let events: Vec<_> = TrafficGenerator::new(1)
            .with_time_span(start, end, 10_000)
            .collect();
        assert!(events.windows(2).all(|pair| pair[0].time <= pair[1].time));
        assert!(
            events
                .iter()
                .all(|event| event.time >= start && event.time < end)
        );
        assert!(
            events
                .iter()
                .all(|event| event.time.nanosecond() % 1_000 == 0)
        );
        // Jitter: times are not simply evenly spaced.
        let gaps: HashSet<_> = events
            .windows(2)
            .map(|pair| pair[1].time - pair[0].time)
            .collect();
        assert!(gaps.len() > 100);
    }

    #[test]
    fn same_seed_same_events_other_seed_other_events() {
        let first = sample(2_000);
        assert_eq!(first, sample(2_000));
        let other: Vec<_> = TrafficGenerator::new(43)
            .with_time_span(
                datetime!(2025-03-01 0:00 UTC),
                datetime!(2025-04-01 0:00 UTC),
                2_000,
            )
            .collect();
        assert_ne!(first[0].id, other[0].id);
        assert_ne!(first[0].request_id, other[0].request_id);
    }

    #[test]
    fn ids_do_not_depend_on_the_time_span() {
        let default_span: Vec<Uuid> = TrafficGenerator::new(9)
            .take(100)
            .map(|event| event.id)
            .collect();
        let fixed_span: Vec<Uuid> = sample_with_seed(9, 100)
            .iter()
            .map(|event| event.id)
            .collect();
        assert_eq!(default_span, fixed_span);
    }

    fn sample_with_seed(seed: u64, count: u64) -> Vec<AuditEvent> {
        TrafficGenerator::new(seed)
            .with_time_span(
                datetime!(2025-03-01 0:00 UTC),
                datetime!(2025-04-01 0:00 UTC),
                count,
            )
            .collect()
    }

    #[test]
    fn every_known_resource_type_action_and_build_reason_appears_in_50k() {
        let events = sample(50_000);
        let resource_types: HashSet<_> = events
            .iter()
            .map(|event| event.resource_type.clone())
            .collect();
        let actions: HashSet<_> = events.iter().map(|event| event.action.clone()).collect();
        let reasons: HashSet<_> = events
            .iter()
            .filter_map(|event| event.build_reason.clone())
            .collect();
        for resource_type in ResourceType::ALL {
            assert!(resource_types.contains(resource_type), "no {resource_type}");
        }
        for action in Action::ALL {
            assert!(actions.contains(action), "no {action}");
        }
        for reason in BuildReason::ALL {
            assert!(reasons.contains(reason), "no {reason}");
        }
    }

    #[test]
    fn proportions_are_plausible() {
        let events = sample(100_000);
        let total = events.len() as f64;
        let share = |predicate: &dyn Fn(&AuditEvent) -> bool| {
            events.iter().filter(|event| predicate(event)).count() as f64 / total
        };
        let builds = share(&|event| event.resource_type == ResourceType::WorkspaceBuild);
        assert!((0.30..0.45).contains(&builds), "builds {builds}");
        let logins = share(&|event| event.action == Action::Login);
        assert!((0.08..0.16).contains(&logins), "logins {logins}");
        let deletes = share(&|event| event.action == Action::Delete);
        assert!(deletes < 0.06, "deletes {deletes}");
        let failed = share(&|event| event.status_code >= 400);
        assert!((0.03..0.07).contains(&failed), "failed {failed}");
        let redirects = share(&|event| event.status_code == 303);
        assert!((0.001..0.03).contains(&redirects), "redirects {redirects}");
        let background = share(&|event| event.user.is_none());
        assert!(
            (0.05..0.25).contains(&background),
            "background {background}"
        );
        let site_wide = share(&|event| event.organization.is_none());
        assert!((0.10..0.35).contains(&site_wide), "site-wide {site_wide}");
        let v6 = share(&|event| matches!(event.ip, Some(IpAddr::V6(_))));
        assert!((0.05..0.30).contains(&v6), "ipv6 {v6}");

        let mut reasons: HashMap<BuildReason, usize> = HashMap::new();
        for reason in events.iter().filter_map(|event| event.build_reason.clone()) {
            *reasons.entry(reason).or_default() += 1;
        }
        let common = reasons[&BuildReason::Initiator]
            + reasons[&BuildReason::Autostart]
            + reasons[&BuildReason::Autostop];
        assert!(
            common * 10 > reasons.values().sum::<usize>() * 6,
            "{reasons:?}"
        );
    }

    #[test]
    fn events_have_coders_shapes() {
        for event in sample(20_000) {
            let failed = event.status_code >= 400 || event.status_code == 303;
            if failed || matches!(event.action, Action::Login | Action::Logout) {
                assert!(event.diff.is_empty(), "{event:?}");
            }
            match (&event.resource_type, &event.action) {
                (ResourceType::WorkspaceBuild, _) => {
                    assert!(event.build_reason.is_some());
                    for key in [
                        "workspace_name",
                        "build_number",
                        "build_reason",
                        "workspace_owner",
                        "workspace_id",
                    ] {
                        assert!(
                            event.additional_fields.contains_key(key),
                            "{key} in {event:?}"
                        );
                    }
                    assert_eq!(
                        event.additional_fields["build_reason"],
                        Value::String(event.build_reason.as_ref().unwrap().to_string())
                    );
                }
                (ResourceType::Workspace, Action::Create) => assert!(event.build_reason.is_some()),
                _ => assert!(event.build_reason.is_none()),
            }
            if event.user.is_none() {
                assert!(
                    event.additional_fields.contains_key("automatic_actor"),
                    "{event:?}"
                );
                assert!(event.additional_fields.contains_key("automatic_subsystem"));
                assert!(event.ip.is_none());
            } else {
                assert!(event.ip.is_some() && !event.user_agent.is_empty());
            }
            for (_, entry) in &event.diff {
                if entry.secret {
                    assert!(entry.old.is_null() && entry.new.is_null());
                }
            }
        }
    }

    #[test]
    fn diffs_include_secrets_and_targets_include_mixed_case() {
        let events = sample(20_000);
        assert!(
            events
                .iter()
                .any(|event| event.diff.iter().any(|(_, entry)| entry.secret))
        );
        assert!(
            events
                .iter()
                .any(|event| event.diff.iter().any(|(_, entry)| !entry.secret))
        );
        assert!(
            events
                .iter()
                .any(|event| event.resource_target.chars().any(char::is_uppercase))
        );
        assert!(
            events.iter().any(|event| event.organization.is_none()
                && event.resource_type == ResourceType::License)
        );
    }

    #[test]
    fn world_has_organizations_and_thousands_of_users_some_mixed_case() {
        let generator = TrafficGenerator::new(5);
        assert_eq!(generator.organizations().len(), 5);
        for organization in generator.organizations() {
            assert_eq!(organization.name, organization.name.to_lowercase());
        }
        assert!(
            generator
                .organizations()
                .iter()
                .any(|o| o.display_name.chars().any(char::is_uppercase))
        );
        let users = generator.users();
        assert_eq!(users.len(), NUM_USERS);
        let usernames: HashSet<_> = users
            .iter()
            .map(|user| user.username.to_lowercase())
            .collect();
        assert_eq!(
            usernames.len(),
            users.len(),
            "usernames are unique ignoring case"
        );
        assert!(
            users
                .iter()
                .any(|user| user.username.chars().any(char::is_uppercase))
        );
        assert!(
            users
                .iter()
                .any(|user| user.email.chars().any(char::is_uppercase))
        );
        assert!(
            users
                .iter()
                .all(|user| user.email.contains('@') && !user.email.contains(".."))
        );
        // Every generated actor is one of the listed users.
        let ids: HashSet<_> = users.iter().map(|user| user.id).collect();
        for event in generator.take(5_000) {
            if let Some(user) = &event.user {
                assert!(ids.contains(&user.id));
            }
        }
    }

    #[test]
    fn iterator_reports_its_exact_length() {
        let mut generator = TrafficGenerator::new(3).with_time_span(
            datetime!(2025-01-01 0:00 UTC),
            datetime!(2025-01-02 0:00 UTC),
            10,
        );
        assert_eq!(generator.len(), 10);
        generator.next();
        assert_eq!(generator.len(), 9);
        assert_eq!(generator.by_ref().count(), 9);
        assert!(generator.next().is_none());
    }
}
