//! The organizations, users, templates and workspaces that generated events refer to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use auditlog_event::{Actor, BuildReason, Organization};
use uuid::Uuid;

use super::diffs::DiffPool;
use super::rng::{Rng, Weighted, splitmix64};
use super::{Kind, NUM_USERS, build_reasons, create_reasons, kinds};

/// Everything events refer to, built once per seed and shared between clones.
#[derive(Debug)]
pub(super) struct World {
    pub(super) seed: u64,
    pub(super) organizations: Vec<Organization>,
    /// Relative activity of each organization, for picking one.
    pub(super) organization_weights: Weighted<usize>,
    pub(super) users: Vec<Actor>,
    /// The home organization of each user.
    pub(super) user_organization: Vec<usize>,
    /// Indexes of each organization's administrators.
    pub(super) admins: Vec<Vec<usize>>,
    /// Where each user usually connects from.
    pub(super) user_networks: Vec<Network>,
    pub(super) templates: Vec<TemplateRecord>,
    pub(super) workspaces: Vec<WorkspaceRecord>,
    pub(super) org_group_ids: Vec<Vec<Uuid>>,
    pub(super) tokens: &'static [&'static str],
    pub(super) kinds: Weighted<Kind>,
    pub(super) build_reasons: Weighted<BuildReason>,
    pub(super) create_reasons: Weighted<BuildReason>,
    pub(super) diffs: DiffPool,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum Network {
    V4([u8; 3]),
    V6([u16; 4]),
}

#[derive(Debug)]
pub(super) struct TemplateRecord {
    pub(super) id: Uuid,
    pub(super) name: String,
    pub(super) icon: &'static str,
    pub(super) organization: usize,
    pub(super) version_ids: Vec<Uuid>,
}

#[derive(Debug)]
pub(super) struct WorkspaceRecord {
    pub(super) id: Uuid,
    pub(super) id_text: String,
    pub(super) name: String,
    pub(super) owner: usize,
    pub(super) organization: usize,
    pub(super) template: usize,
    pub(super) agent_id: Uuid,
    pub(super) app_ids: [Uuid; APPS.len()],
    pub(super) first_build_number: u32,
}

pub(super) const ORGANIZATIONS: [(&str, &str, &str, u32); 5] = [
    ("coder", "Coder", "/emojis/1f3e2.png", 40),
    ("acme-corp", "Acme Corp", "/emojis/1f680.png", 25),
    ("globex", "Globex Engineering", "", 15),
    ("initech", "Initech R&D", "/emojis/1f4bb.png", 12),
    ("umbrella-labs", "Umbrella Labs", "", 8),
];

pub(super) const EMAIL_DOMAINS: [&str; 5] = [
    "coder.com",
    "acme.example",
    "globex.example",
    "initech.example",
    "umbrella.example",
];

pub(super) const FIRST_NAMES: [&str; 48] = [
    "Jane", "John", "Alice", "Bob", "Carol", "David", "Eve", "Frank", "Grace", "Heidi", "Ivan",
    "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Quentin", "Rupert", "Sybil", "Trent", "Uma",
    "Victor", "Walter", "Xena", "Yusuf", "Zoe", "Aiko", "Björn", "Chen", "Dmitri", "Elena",
    "Fatima", "Gustavo", "Hana", "Ines", "Jorge", "Kwame", "Lena", "Mateo", "Nadia", "Omar",
    "Priya", "Ravi", "Sofia", "Tomás", "Yara", "Wei", "Amara",
];

pub(super) const LAST_NAMES: [&str; 48] = [
    "Doe",
    "Smith",
    "Liddell",
    "Johnson",
    "Nguyen",
    "Garcia",
    "Müller",
    "Kowalski",
    "Rossi",
    "Tanaka",
    "Okafor",
    "Silva",
    "Kim",
    "Patel",
    "Hernandez",
    "Novak",
    "Larsen",
    "Dubois",
    "Ivanova",
    "Cohen",
    "Schmidt",
    "Haddad",
    "Yilmaz",
    "Andersson",
    "OBrien",
    "Fischer",
    "Moreau",
    "Costa",
    "Sato",
    "Park",
    "Singh",
    "Lopez",
    "Brown",
    "Wilson",
    "Taylor",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "King",
    "Wright",
    "Hill",
    "Green",
    "Baker",
    "Adams",
    "Nelson",
    "Carter",
    "Mitchell",
];

pub(super) const TEMPLATES: [(&str, &str); 10] = [
    ("docker", "/icon/docker.png"),
    ("kubernetes", "/icon/k8s.png"),
    ("aws-linux", "/icon/aws.svg"),
    ("aws-windows", "/icon/windows.svg"),
    ("gcp-linux", "/icon/gcp.png"),
    ("azure-linux", "/icon/azure.png"),
    ("devcontainer", "/icon/code.svg"),
    ("jupyter", "/icon/jupyter.svg"),
    ("gpu-ml", "/icon/nvidia.svg"),
    ("Rust-Dev", "/icon/rust.svg"),
];

pub(super) const WORKSPACE_NAMES: [&str; 24] = [
    "dev",
    "main",
    "sandbox",
    "scratch",
    "api",
    "frontend",
    "backend",
    "ml",
    "docs",
    "infra",
    "Dev-Box",
    "Project-X",
    "MyWorkspace",
    "playground",
    "review",
    "hotfix",
    "perf",
    "data",
    "notebook",
    "Release-Prep",
    "test",
    "ci-debug",
    "mobile",
    "legacy",
];

pub(super) const APPS: [(&str, &str); 5] = [
    ("code-server", "/icon/code.svg"),
    ("jupyter", "/icon/jupyter.svg"),
    ("terminal", "/icon/terminal.svg"),
    ("filebrowser", "/icon/database.svg"),
    ("Web-Preview", "/icon/globe.svg"),
];

pub(super) const GROUPS: [&str; 8] = [
    "Everyone",
    "admins",
    "developers",
    "data-science",
    "SRE",
    "contractors",
    "qa",
    "security",
];

pub(super) const TOKENS: [&str; 10] = [
    "cli",
    "ci-deploy",
    "terraform",
    "GitHub-Actions",
    "vscode",
    "jetbrains",
    "backup-job",
    "metrics-scraper",
    "personal",
    "api-explorer",
];

pub(super) const BROWSER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 Edg/125.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
];

pub(super) const CLI_AGENTS: &[&str] = &[
    "coder/v2.24.1 (linux/amd64)",
    "coder/v2.24.1 (darwin/arm64)",
    "coder/v2.23.3 (windows/amd64)",
    "Go-http-client/1.1",
    "terraform-provider-coderd/0.0.9",
    "curl/8.7.1",
];

pub(super) const VSCODE_AGENTS: &[&str] = &[
    "Coder.coder-remote/1.9.1 vscode/1.101.0",
    "Coder.coder-remote/1.8.0 vscode/1.99.3",
];

pub(super) const JETBRAINS_AGENTS: &[&str] = &["JetBrains-Gateway/2024.1.4 coder-gateway/2.14.0"];

impl World {
    pub(super) fn build(seed: u64) -> Self {
        let mut rng = Rng::new(splitmix64(seed ^ 0x0077_6f72_6c64));
        let organizations: Vec<Organization> = ORGANIZATIONS
            .iter()
            .map(|(name, display_name, icon, _)| Organization {
                id: rng.uuid_v4(),
                name: (*name).to_owned(),
                display_name: (*display_name).to_owned(),
                icon: (*icon).to_owned(),
            })
            .collect();
        let organization_weights = Weighted::new(
            ORGANIZATIONS
                .iter()
                .enumerate()
                .map(|(index, (_, _, _, weight))| (*weight, index))
                .collect(),
        );

        let mut users = Vec::with_capacity(NUM_USERS);
        let mut user_organization = Vec::with_capacity(NUM_USERS);
        let mut user_networks = Vec::with_capacity(NUM_USERS);
        let mut taken = std::collections::HashSet::with_capacity(NUM_USERS);
        while users.len() < NUM_USERS {
            let organization = *organization_weights.pick(&mut rng);
            let first = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u32) as usize];
            let last = LAST_NAMES[rng.below(LAST_NAMES.len() as u32) as usize];
            let base = match rng.below(10) {
                0..=4 => format!("{}.{}", ascii_lower(first), ascii_lower(last)),
                5 | 6 => format!("{}{}", ascii_lower(first), ascii_lower(&last[..1])),
                // Some deployments kept mixed-case usernames from their IdP.
                7 => format!("{}{}", ascii_only(first), ascii_only(last)),
                _ => format!("{}_{}", ascii_lower(first), ascii_lower(last)),
            };
            let mut username = base.clone();
            let mut suffix = 2;
            while !taken.insert(username.to_lowercase()) {
                username = format!("{base}{suffix}");
                suffix += 1;
            }
            let domain = EMAIL_DOMAINS[organization];
            let local = username.replace('_', ".");
            let email = if rng.below(7) == 0 {
                // As typed into an IdP: "Jane.Doe@Example.com".
                format!(
                    "{}.{}@{}",
                    ascii_only(first),
                    ascii_only(last),
                    capitalize(domain)
                )
                .replace("..", ".")
            } else {
                format!("{}@{}", local.to_lowercase(), domain)
            };
            let email = if taken.insert(email.to_lowercase()) {
                email
            } else {
                format!("{}@{}", local.to_lowercase(), domain)
            };
            users.push(Actor {
                id: rng.uuid_v4(),
                username,
                email,
                name: format!("{first} {last}"),
            });
            user_organization.push(organization);
            let network = if rng.below(100) < 15 {
                Network::V6([
                    0x2001,
                    0x0db8,
                    rng.below(0x10000) as u16,
                    rng.below(0x10000) as u16,
                ])
            } else {
                const PREFIXES: [[u8; 2]; 4] = [[10, 20], [172, 16], [192, 168], [203, 0]];
                let prefix = PREFIXES[rng.below(PREFIXES.len() as u32) as usize];
                Network::V4([prefix[0], prefix[1], rng.below(256) as u8])
            };
            user_networks.push(network);
        }

        let mut admins = vec![Vec::new(); organizations.len()];
        for (index, organization) in user_organization.iter().enumerate() {
            if admins[*organization].len() < 4 && rng.below(20) == 0 {
                admins[*organization].push(index);
            }
        }
        for (organization, list) in admins.iter_mut().enumerate() {
            if list.is_empty() {
                let first_member = user_organization
                    .iter()
                    .position(|member_of| *member_of == organization)
                    .unwrap_or(0);
                list.push(first_member);
            }
        }

        let mut templates = Vec::new();
        for organization in 0..organizations.len() {
            let num_templates = 4 + rng.below(5) as usize;
            for template in 0..num_templates {
                let (name, icon) = TEMPLATES[(template + organization) % TEMPLATES.len()];
                let num_versions = 2 + rng.below(10) as usize;
                templates.push(TemplateRecord {
                    id: rng.uuid_v4(),
                    name: name.to_owned(),
                    icon,
                    organization,
                    version_ids: (0..num_versions).map(|_| rng.uuid_v4()).collect(),
                });
            }
        }

        let mut workspaces = Vec::new();
        for (owner, organization) in user_organization.iter().enumerate() {
            let org_templates: Vec<usize> = templates
                .iter()
                .enumerate()
                .filter(|(_, template)| template.organization == *organization)
                .map(|(index, _)| index)
                .collect();
            let num_workspaces = 1 + rng.below(3) as usize;
            for ordinal in 0..num_workspaces {
                let name = WORKSPACE_NAMES[rng.below(WORKSPACE_NAMES.len() as u32) as usize];
                let name = if ordinal == 0 {
                    name.to_owned()
                } else {
                    format!("{name}-{ordinal}")
                };
                let id = rng.uuid_v4();
                workspaces.push(WorkspaceRecord {
                    id,
                    id_text: id.to_string(),
                    name,
                    owner,
                    organization: *organization,
                    template: org_templates[rng.below(org_templates.len() as u32) as usize],
                    agent_id: rng.uuid_v4(),
                    app_ids: std::array::from_fn(|_| rng.uuid_v4()),
                    first_build_number: 1 + rng.below(40),
                });
            }
        }

        let org_group_ids = (0..organizations.len())
            .map(|_| GROUPS.iter().map(|_| rng.uuid_v4()).collect())
            .collect();
        let diffs = DiffPool::build(&mut rng);

        World {
            seed,
            organizations,
            organization_weights,
            users,
            user_organization,
            admins,
            user_networks,
            templates,
            workspaces,
            org_group_ids,
            tokens: &TOKENS,
            kinds: kinds(),
            build_reasons: build_reasons(),
            create_reasons: create_reasons(),
            diffs,
        }
    }

    pub(super) fn random_organization(&self, rng: &mut Rng) -> usize {
        *self.organization_weights.pick(rng)
    }

    /// A few users are far more active than the rest (roughly a power law).
    pub(super) fn user_by_activity(&self, rng: &mut Rng) -> usize {
        let uniform = rng.below(self.users.len() as u32) as usize;
        if rng.below(4) == 0 {
            uniform / 16
        } else {
            uniform
        }
    }

    pub(super) fn random_workspace(&self, rng: &mut Rng) -> usize {
        let uniform = rng.below(self.workspaces.len() as u32) as usize;
        if rng.below(4) == 0 {
            uniform / 16
        } else {
            uniform
        }
    }

    pub(super) fn admin_of(&self, organization: usize, rng: &mut Rng) -> usize {
        let admins = &self.admins[organization];
        admins[rng.below(admins.len() as u32) as usize]
    }

    pub(super) fn user_ip(&self, user: usize, rng: &mut Rng) -> IpAddr {
        // Mostly from home; now and then from somewhere else (travel, VPN).
        let network = if rng.below(10) == 0 {
            self.user_networks[rng.below(self.user_networks.len() as u32) as usize]
        } else {
            self.user_networks[user]
        };
        match network {
            Network::V4([a, b, c]) => IpAddr::V4(Ipv4Addr::new(a, b, c, 1 + rng.below(254) as u8)),
            Network::V6([a, b, c, d]) => IpAddr::V6(Ipv6Addr::new(
                a,
                b,
                c,
                d,
                0,
                0,
                rng.below(0x10000) as u16,
                1 + rng.below(0xfffe) as u16,
            )),
        }
    }
}

pub(super) fn ascii_lower(name: &str) -> String {
    ascii_only(name).to_ascii_lowercase()
}

/// Coder usernames are ASCII: letters outside it are folded to their base letter.
pub(super) fn ascii_only(name: &str) -> String {
    name.chars()
        .map(|character| match character {
            'ö' => 'o',
            'ü' => 'u',
            'á' => 'a',
            'é' => 'e',
            other => other,
        })
        .filter(char::is_ascii_alphanumeric)
        .collect()
}

pub(super) fn capitalize(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}
