//! The organizations, users, templates and workspaces that generated events refer to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use auditlog_event::{Actor, BuildReason, Organization};
use uuid::Uuid;

use crate::diffs::DiffPool;
use crate::kinds::{Kind, build_reasons, create_reasons, kinds};
use crate::names::{
    APPS, EMAIL_DOMAINS, FIRST_NAMES, GROUPS, LAST_NAMES, ORGANIZATIONS, TEMPLATES, TOKENS,
    WORKSPACE_NAMES, ascii_lower, ascii_only, capitalize,
};
use crate::rng::{Rng, Weighted, splitmix64};

/// Users in the generated world.
pub const NUM_USERS: usize = 3_000;

/// Everything events refer to, built once per seed and shared between clones.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) seed: u64,
    pub(crate) organizations: Vec<Organization>,
    /// Relative activity of each organization, for picking one.
    pub(crate) organization_weights: Weighted<usize>,
    pub(crate) users: Vec<Actor>,
    /// The home organization of each user.
    pub(crate) user_organization: Vec<usize>,
    /// Indexes of each organization's administrators.
    pub(crate) admins: Vec<Vec<usize>>,
    /// Where each user usually connects from.
    pub(crate) user_networks: Vec<Network>,
    pub(crate) templates: Vec<TemplateRecord>,
    pub(crate) workspaces: Vec<WorkspaceRecord>,
    pub(crate) org_group_ids: Vec<Vec<Uuid>>,
    pub(crate) tokens: &'static [&'static str],
    pub(crate) kinds: Weighted<Kind>,
    pub(crate) build_reasons: Weighted<BuildReason>,
    pub(crate) create_reasons: Weighted<BuildReason>,
    pub(crate) diffs: DiffPool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Network {
    V4([u8; 3]),
    V6([u16; 4]),
}

#[derive(Debug)]
pub(crate) struct TemplateRecord {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) icon: &'static str,
    pub(crate) organization: usize,
    pub(crate) version_ids: Vec<Uuid>,
}

#[derive(Debug)]
pub(crate) struct WorkspaceRecord {
    pub(crate) id: Uuid,
    pub(crate) id_text: String,
    pub(crate) name: String,
    pub(crate) owner: usize,
    pub(crate) organization: usize,
    pub(crate) template: usize,
    pub(crate) agent_id: Uuid,
    pub(crate) app_ids: [Uuid; APPS.len()],
    pub(crate) first_build_number: u32,
}

impl World {
    pub(crate) fn build(seed: u64) -> Self {
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

    pub(crate) fn random_organization(&self, rng: &mut Rng) -> usize {
        *self.organization_weights.pick(rng)
    }

    /// A few users are far more active than the rest (roughly a power law).
    pub(crate) fn user_by_activity(&self, rng: &mut Rng) -> usize {
        busy_first(self.users.len(), rng)
    }

    /// A workspace, with a few busy ones drawing far more traffic than the rest.
    pub(crate) fn random_workspace(&self, rng: &mut Rng) -> usize {
        busy_first(self.workspaces.len(), rng)
    }

    pub(crate) fn admin_of(&self, organization: usize, rng: &mut Rng) -> usize {
        let admins = &self.admins[organization];
        admins[rng.below(admins.len() as u32) as usize]
    }

    pub(crate) fn user_ip(&self, user: usize, rng: &mut Rng) -> IpAddr {
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

/// An index below `len` where the lowest sixteenth gets a quarter of the picks on top of
/// its uniform share.
fn busy_first(len: usize, rng: &mut Rng) -> usize {
    let uniform = rng.below(len as u32) as usize;
    if rng.below(4) == 0 {
        uniform / 16
    } else {
        uniform
    }
}
