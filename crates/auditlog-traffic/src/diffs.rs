//! Pre-built diffs of Coder's audited resources, classified with `auditable!`.

use auditlog_event::{Action, Auditable, Diff, auditable};

/// Diff variants pre-built per kind of change; cloning one is far cheaper than diffing
/// structs per event, and a few dozen variants are plenty for realism.
const DIFF_VARIANTS: usize = 24;

use crate::names::{
    CHATS, FIRST_NAMES, GROUPS, LAST_NAMES, OAUTH, ORGANIZATIONS, PROXIES, TASKS, TEMPLATES,
    TOKENS, WORKSPACE_NAMES, ascii_lower, capitalize,
};
use crate::rng::Rng;

auditable! {
    #[derive(Debug, Clone, Default)]
    struct WorkspaceResource {
        track name: String,
        track template_id: String,
        track autostart_schedule: Option<String>,
        track ttl_ms: Option<i64>,
        track automatic_updates: String,
        track dormant_at: Option<String>,
        ignore last_used_at: i64,
        ignore updated_at: i64,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct WorkspaceBuildResource {
        track transition: String,
        track template_version_id: String,
        track build_number: u32,
        track job_status: String,
        ignore updated_at: i64,
        secret provisioner_state: Vec<u8>,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct TemplateResource {
        track name: String,
        track display_name: String,
        track description: String,
        track default_ttl_ms: i64,
        track allow_user_cancel_workspace_jobs: bool,
        track active_version_id: String,
        ignore updated_at: i64,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct TemplateVersionResource {
        track name: String,
        track message: String,
        track readme: String,
        ignore job_id: String,
        secret user_variable_values: Vec<String>,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct UserResource {
        track username: String,
        track email: String,
        track name: String,
        track status: String,
        track rbac_roles: Vec<String>,
        track login_type: String,
        ignore last_seen_at: i64,
        secret hashed_password: String,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct ApiKeyResource {
        track token_name: String,
        track scope: String,
        track lifetime_seconds: i64,
        ignore last_used: i64,
        secret hashed_secret: String,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct OrganizationResource {
        track name: String,
        track display_name: String,
        track description: String,
        track icon: String,
        ignore updated_at: i64,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct MemberResource {
        track user_id: String,
        track roles: Vec<String>,
        ignore updated_at: i64,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct GroupResource {
        track name: String,
        track display_name: String,
        track members: Vec<String>,
        track quota_allowance: i32,
        ignore avatar_url: String,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct SettingsResource {
        track enabled: bool,
        track field: String,
        track mapping: Vec<String>,
        ignore updated_at: i64,
        secret client_secret: String,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct GitSshKeyResource {
        track public_key: String,
        ignore updated_at: i64,
        secret private_key: String,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct LicenseResource {
        track uuid: String,
        track exp: i64,
        track features: Vec<String>,
        secret jwt: String,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct ProxyResource {
        track name: String,
        track url: String,
        track wildcard_hostname: String,
        ignore updated_at: i64,
        secret token_hashed_secret: String,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct OAuthAppResource {
        track name: String,
        track callback_url: String,
        track icon: String,
        ignore updated_at: i64,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct OAuthSecretResource {
        track display_secret: String,
        ignore last_used_at: i64,
        secret hashed_secret: String,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct TaskResource {
        track name: String,
        track prompt: String,
        track status: String,
        ignore updated_at: i64,
    }
}

auditable! {
    #[derive(Debug, Clone, Default)]
    struct ChatResource {
        track title: String,
        track model: String,
        ignore updated_at: i64,
    }
}

/// Which family of pre-built diffs a kind of event draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiffTable {
    None,
    Workspace,
    WorkspaceBuild,
    Template,
    TemplateVersion,
    User,
    ApiKey,
    Organization,
    Member,
    Group,
    Settings,
    GitSshKey,
    License,
    Proxy,
    OAuthApp,
    OAuthSecret,
    Task,
    Chat,
}

/// Pre-built diffs per table and action (create, write, delete, start, stop).
#[derive(Debug)]
pub(crate) struct DiffPool {
    pub(crate) tables: Vec<(DiffTable, [Vec<Diff>; 5])>,
}

impl DiffPool {
    pub(crate) fn get(&self, table: DiffTable, action: &Action) -> &[Diff] {
        let slot = match action {
            Action::Create => 0,
            Action::Write => 1,
            Action::Delete => 2,
            Action::Start => 3,
            Action::Stop => 4,
            _ => return &[],
        };
        self.tables
            .iter()
            .find(|(candidate, _)| *candidate == table)
            .map_or(&[], |(_, slots)| slots[slot].as_slice())
    }

    pub(crate) fn build(rng: &mut Rng) -> Self {
        // Built in a fixed order: each table draws from the same random stream.
        let tables = vec![
            (
                DiffTable::Workspace,
                lifecycle(rng, workspace_resource, workspace_change),
            ),
            (DiffTable::WorkspaceBuild, build_diffs(rng)),
            (
                DiffTable::Template,
                lifecycle(rng, template_resource, template_change),
            ),
            (
                DiffTable::TemplateVersion,
                lifecycle(rng, template_version_resource, template_version_change),
            ),
            (DiffTable::User, lifecycle(rng, user_resource, user_change)),
            (
                DiffTable::ApiKey,
                lifecycle(rng, api_key_resource, api_key_change),
            ),
            (
                DiffTable::Organization,
                lifecycle(rng, organization_resource, organization_change),
            ),
            (
                DiffTable::Member,
                lifecycle(rng, member_resource, member_change),
            ),
            (
                DiffTable::Group,
                lifecycle(rng, group_resource, group_change),
            ),
            (
                DiffTable::Settings,
                lifecycle(rng, settings_resource, settings_change),
            ),
            (
                DiffTable::GitSshKey,
                lifecycle(rng, git_ssh_key_resource, git_ssh_key_change),
            ),
            (
                DiffTable::License,
                lifecycle(rng, license_resource, license_change),
            ),
            (
                DiffTable::Proxy,
                lifecycle(rng, proxy_resource, proxy_change),
            ),
            (
                DiffTable::OAuthApp,
                lifecycle(rng, oauth_app_resource, oauth_app_change),
            ),
            (
                DiffTable::OAuthSecret,
                lifecycle(rng, oauth_secret_resource, oauth_secret_change),
            ),
            (DiffTable::Task, lifecycle(rng, task_resource, task_change)),
            (DiffTable::Chat, lifecycle(rng, chat_resource, chat_change)),
        ];
        DiffPool { tables }
    }
}

/// Create (from nothing), write (a change) and delete (to nothing) diffs of a resource.
fn lifecycle<T: Auditable + Default + Clone>(
    rng: &mut Rng,
    make: fn(&mut Rng) -> T,
    change: fn(&mut Rng, &T) -> T,
) -> [Vec<Diff>; 5] {
    let mut create = Vec::with_capacity(DIFF_VARIANTS);
    let mut write = Vec::with_capacity(DIFF_VARIANTS);
    let mut delete = Vec::with_capacity(DIFF_VARIANTS);
    for _ in 0..DIFF_VARIANTS {
        let resource = make(rng);
        let changed = change(rng, &resource);
        create.push(T::diff(&T::default(), &resource));
        write.push(T::diff(&resource, &changed));
        delete.push(T::diff(&resource, &T::default()));
    }
    [create, write, delete, Vec::new(), Vec::new()]
}

fn build_diffs(rng: &mut Rng) -> [Vec<Diff>; 5] {
    let mut start = Vec::with_capacity(DIFF_VARIANTS);
    let mut stop = Vec::with_capacity(DIFF_VARIANTS);
    let mut delete = Vec::with_capacity(DIFF_VARIANTS);
    for _ in 0..DIFF_VARIANTS {
        let stopped = WorkspaceBuildResource {
            transition: "stop".into(),
            template_version_id: rng.uuid_v4().to_string(),
            build_number: 1 + rng.below(200),
            job_status: "succeeded".into(),
            updated_at: 1,
            provisioner_state: vec![1, 2, 3],
        };
        let started = WorkspaceBuildResource {
            transition: "start".into(),
            template_version_id: if rng.below(3) == 0 {
                rng.uuid_v4().to_string()
            } else {
                stopped.template_version_id.clone()
            },
            build_number: stopped.build_number + 1,
            updated_at: 2,
            provisioner_state: vec![4, 5, 6],
            ..stopped.clone()
        };
        let deleted = WorkspaceBuildResource {
            transition: "delete".into(),
            build_number: started.build_number + 1,
            provisioner_state: Vec::new(),
            ..started.clone()
        };
        start.push(WorkspaceBuildResource::diff(&stopped, &started));
        stop.push(WorkspaceBuildResource::diff(&started, &stopped));
        delete.push(WorkspaceBuildResource::diff(&started, &deleted));
    }
    [Vec::new(), Vec::new(), delete, start, stop]
}

fn pick<'a>(rng: &mut Rng, options: &[&'a str]) -> &'a str {
    options[rng.below(options.len() as u32) as usize]
}

fn secret(rng: &mut Rng) -> String {
    format!("{:032x}", rng.next_u64())
}

fn workspace_resource(rng: &mut Rng) -> WorkspaceResource {
    WorkspaceResource {
        name: pick(rng, &WORKSPACE_NAMES).to_owned(),
        template_id: rng.uuid_v4().to_string(),
        autostart_schedule: (rng.below(2) == 0).then(|| "CRON_TZ=UTC 0 9 * * 1-5".to_owned()),
        ttl_ms: Some(3_600_000 * i64::from(1 + rng.below(12))),
        automatic_updates: "never".into(),
        dormant_at: None,
        last_used_at: 1,
        updated_at: 1,
    }
}

fn workspace_change(rng: &mut Rng, old: &WorkspaceResource) -> WorkspaceResource {
    let mut new = WorkspaceResource {
        updated_at: 2,
        last_used_at: 2,
        ..old.clone()
    };
    match rng.below(4) {
        0 => new.ttl_ms = Some(3_600_000 * i64::from(1 + rng.below(24))),
        1 => new.autostart_schedule = Some("CRON_TZ=Europe/Berlin 30 8 * * 1-5".into()),
        2 => new.automatic_updates = "always".into(),
        _ => new.dormant_at = Some("2025-05-01T00:00:00Z".into()),
    }
    new
}

fn template_resource(rng: &mut Rng) -> TemplateResource {
    let (name, _) = TEMPLATES[rng.below(TEMPLATES.len() as u32) as usize];
    TemplateResource {
        name: name.to_owned(),
        display_name: capitalize(name),
        description: format!("Develop in {name}"),
        default_ttl_ms: 8 * 3_600_000,
        allow_user_cancel_workspace_jobs: true,
        active_version_id: rng.uuid_v4().to_string(),
        updated_at: 1,
    }
}

fn template_change(rng: &mut Rng, old: &TemplateResource) -> TemplateResource {
    let mut new = TemplateResource {
        updated_at: 2,
        ..old.clone()
    };
    match rng.below(3) {
        0 => new.active_version_id = rng.uuid_v4().to_string(),
        1 => new.default_ttl_ms = 3_600_000 * i64::from(1 + rng.below(24)),
        _ => {
            new.description = format!("{} (maintained by platform team)", old.description);
            new.allow_user_cancel_workspace_jobs = false;
        }
    }
    new
}

fn template_version_resource(rng: &mut Rng) -> TemplateVersionResource {
    TemplateVersionResource {
        name: format!(
            "{}-{}",
            pick(rng, &["brave", "calm", "eager", "Quiet"]),
            rng.below(1000)
        ),
        message: pick(
            rng,
            &["bump image", "add jetbrains", "Fix DNS", "pin provider"],
        )
        .into(),
        readme: "# Workspace template".into(),
        job_id: rng.uuid_v4().to_string(),
        user_variable_values: vec![secret(rng)],
    }
}

fn template_version_change(
    rng: &mut Rng,
    old: &TemplateVersionResource,
) -> TemplateVersionResource {
    TemplateVersionResource {
        message: format!("{} (edited)", old.message),
        user_variable_values: vec![secret(rng)],
        ..old.clone()
    }
}

fn user_resource(rng: &mut Rng) -> UserResource {
    let first = pick(rng, &FIRST_NAMES);
    let last = pick(rng, &LAST_NAMES);
    UserResource {
        username: format!("{}.{}", ascii_lower(first), ascii_lower(last)),
        email: format!("{}.{}@coder.com", ascii_lower(first), ascii_lower(last)),
        name: format!("{first} {last}"),
        status: "active".into(),
        rbac_roles: vec!["member".into()],
        login_type: pick(rng, &["password", "oidc", "github"]).into(),
        last_seen_at: 1,
        hashed_password: secret(rng),
    }
}

fn user_change(rng: &mut Rng, old: &UserResource) -> UserResource {
    let mut new = UserResource {
        last_seen_at: 2,
        ..old.clone()
    };
    match rng.below(4) {
        0 => new.status = "suspended".into(),
        1 => new.rbac_roles = vec!["member".into(), "template-admin".into()],
        2 => new.hashed_password = secret(rng),
        _ => new.name = format!("{} ({})", old.name, pick(rng, &["Platform", "SRE", "Data"])),
    }
    new
}

fn api_key_resource(rng: &mut Rng) -> ApiKeyResource {
    ApiKeyResource {
        token_name: pick(rng, &TOKENS).into(),
        scope: pick(rng, &["all", "application_connect"]).into(),
        lifetime_seconds: 86_400 * i64::from(1 + rng.below(90)),
        last_used: 1,
        hashed_secret: secret(rng),
    }
}

fn api_key_change(rng: &mut Rng, old: &ApiKeyResource) -> ApiKeyResource {
    ApiKeyResource {
        lifetime_seconds: 86_400 * i64::from(1 + rng.below(30)),
        last_used: 2,
        ..old.clone()
    }
}

fn organization_resource(rng: &mut Rng) -> OrganizationResource {
    let (name, display_name, icon, _) =
        ORGANIZATIONS[rng.below(ORGANIZATIONS.len() as u32) as usize];
    OrganizationResource {
        name: name.into(),
        display_name: display_name.into(),
        description: format!("{display_name} engineering"),
        icon: icon.into(),
        updated_at: 1,
    }
}

fn organization_change(rng: &mut Rng, old: &OrganizationResource) -> OrganizationResource {
    let mut new = OrganizationResource {
        updated_at: 2,
        ..old.clone()
    };
    if rng.below(2) == 0 {
        new.display_name = format!("{} Inc.", old.display_name);
    } else {
        new.icon = "/emojis/1f30d.png".into();
    }
    new
}

fn member_resource(rng: &mut Rng) -> MemberResource {
    MemberResource {
        user_id: rng.uuid_v4().to_string(),
        roles: Vec::new(),
        updated_at: 1,
    }
}

fn member_change(rng: &mut Rng, old: &MemberResource) -> MemberResource {
    MemberResource {
        roles: vec![
            pick(
                rng,
                &[
                    "organization-admin",
                    "organization-auditor",
                    "template-maintainer",
                ],
            )
            .into(),
        ],
        updated_at: 2,
        ..old.clone()
    }
}

fn group_resource(rng: &mut Rng) -> GroupResource {
    let name = pick(rng, &GROUPS);
    GroupResource {
        name: name.into(),
        display_name: capitalize(name),
        members: (0..1 + rng.below(4))
            .map(|_| rng.uuid_v4().to_string())
            .collect(),
        quota_allowance: 10,
        avatar_url: String::new(),
    }
}

fn group_change(rng: &mut Rng, old: &GroupResource) -> GroupResource {
    let mut new = old.clone();
    if rng.below(2) == 0 {
        new.members.push(rng.uuid_v4().to_string());
    } else {
        new.quota_allowance = 5 * (1 + rng.below(10) as i32);
    }
    new
}

fn settings_resource(rng: &mut Rng) -> SettingsResource {
    SettingsResource {
        enabled: true,
        field: pick(rng, &["groups", "roles", "organizations", "email"]).into(),
        mapping: vec!["engineering".into()],
        updated_at: 1,
        client_secret: secret(rng),
    }
}

fn settings_change(rng: &mut Rng, old: &SettingsResource) -> SettingsResource {
    let mut new = SettingsResource {
        updated_at: 2,
        ..old.clone()
    };
    match rng.below(3) {
        0 => new.enabled = false,
        1 => new.mapping.push("Data-Science".into()),
        _ => new.client_secret = secret(rng),
    }
    new
}

fn git_ssh_key_resource(rng: &mut Rng) -> GitSshKeyResource {
    GitSshKeyResource {
        public_key: format!(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{:016x}",
            rng.next_u64()
        ),
        updated_at: 1,
        private_key: secret(rng),
    }
}

fn git_ssh_key_change(rng: &mut Rng, _old: &GitSshKeyResource) -> GitSshKeyResource {
    // Regenerating the key changes both halves.
    GitSshKeyResource {
        updated_at: 2,
        ..git_ssh_key_resource(rng)
    }
}

fn license_resource(rng: &mut Rng) -> LicenseResource {
    LicenseResource {
        uuid: rng.uuid_v4().to_string(),
        exp: 1_767_225_600 + i64::from(rng.below(1_000)) * 86_400,
        features: vec!["audit_log".into(), "multiple_organizations".into()],
        jwt: secret(rng),
    }
}

fn license_change(rng: &mut Rng, old: &LicenseResource) -> LicenseResource {
    LicenseResource {
        exp: old.exp + 365 * 86_400,
        jwt: secret(rng),
        ..old.clone()
    }
}

fn proxy_resource(rng: &mut Rng) -> ProxyResource {
    let region = pick(rng, PROXIES);
    ProxyResource {
        name: region.into(),
        url: format!("https://{}.proxy.coder.com", region.to_lowercase()),
        wildcard_hostname: format!("*.{}.proxy.coder.com", region.to_lowercase()),
        updated_at: 1,
        token_hashed_secret: secret(rng),
    }
}

fn proxy_change(rng: &mut Rng, old: &ProxyResource) -> ProxyResource {
    ProxyResource {
        token_hashed_secret: secret(rng),
        updated_at: 2,
        ..old.clone()
    }
}

fn oauth_app_resource(rng: &mut Rng) -> OAuthAppResource {
    let name = pick(rng, OAUTH);
    OAuthAppResource {
        name: name.into(),
        callback_url: format!(
            "https://{}.example.com/oauth/callback",
            name.to_lowercase().replace(' ', "-")
        ),
        icon: String::new(),
        updated_at: 1,
    }
}

fn oauth_app_change(_rng: &mut Rng, old: &OAuthAppResource) -> OAuthAppResource {
    OAuthAppResource {
        icon: "/icon/widgets.svg".into(),
        updated_at: 2,
        ..old.clone()
    }
}

fn oauth_secret_resource(rng: &mut Rng) -> OAuthSecretResource {
    OAuthSecretResource {
        display_secret: format!("{:06x}", rng.below(0x100_0000)),
        last_used_at: 1,
        hashed_secret: secret(rng),
    }
}

fn oauth_secret_change(rng: &mut Rng, old: &OAuthSecretResource) -> OAuthSecretResource {
    OAuthSecretResource {
        hashed_secret: secret(rng),
        last_used_at: 2,
        ..old.clone()
    }
}

fn task_resource(rng: &mut Rng) -> TaskResource {
    TaskResource {
        name: pick(rng, TASKS).into(),
        prompt: pick(
            rng,
            &[
                "Fix the flaky login test",
                "Upgrade all dependencies",
                "Write API docs",
            ],
        )
        .into(),
        status: "pending".into(),
        updated_at: 1,
    }
}

fn task_change(rng: &mut Rng, old: &TaskResource) -> TaskResource {
    TaskResource {
        status: pick(rng, &["running", "paused", "completed", "failed"]).into(),
        updated_at: 2,
        ..old.clone()
    }
}

fn chat_resource(rng: &mut Rng) -> ChatResource {
    ChatResource {
        title: pick(rng, CHATS).into(),
        model: pick(rng, &["claude-sonnet-4", "gpt-4.1", "gemini-2.5-pro"]).into(),
        updated_at: 1,
    }
}

fn chat_change(rng: &mut Rng, old: &ChatResource) -> ChatResource {
    ChatResource {
        title: format!("{} ({})", old.title, rng.below(100)),
        updated_at: 2,
        ..old.clone()
    }
}
