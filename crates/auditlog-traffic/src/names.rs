//! Names generated events use: organizations, people, templates, clients and resources.

pub(crate) const ORGANIZATIONS: [(&str, &str, &str, u32); 5] = [
    ("coder", "Coder", "/emojis/1f3e2.png", 40),
    ("acme-corp", "Acme Corp", "/emojis/1f680.png", 25),
    ("globex", "Globex Engineering", "", 15),
    ("initech", "Initech R&D", "/emojis/1f4bb.png", 12),
    ("umbrella-labs", "Umbrella Labs", "", 8),
];

pub(crate) const EMAIL_DOMAINS: [&str; 5] = [
    "coder.com",
    "acme.example",
    "globex.example",
    "initech.example",
    "umbrella.example",
];

pub(crate) const FIRST_NAMES: [&str; 48] = [
    "Jane", "John", "Alice", "Bob", "Carol", "David", "Eve", "Frank", "Grace", "Heidi", "Ivan",
    "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Quentin", "Rupert", "Sybil", "Trent", "Uma",
    "Victor", "Walter", "Xena", "Yusuf", "Zoe", "Aiko", "Björn", "Chen", "Dmitri", "Elena",
    "Fatima", "Gustavo", "Hana", "Ines", "Jorge", "Kwame", "Lena", "Mateo", "Nadia", "Omar",
    "Priya", "Ravi", "Sofia", "Tomás", "Yara", "Wei", "Amara",
];

pub(crate) const LAST_NAMES: [&str; 48] = [
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

pub(crate) const TEMPLATES: [(&str, &str); 10] = [
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

pub(crate) const WORKSPACE_NAMES: [&str; 24] = [
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

pub(crate) const APPS: [(&str, &str); 5] = [
    ("code-server", "/icon/code.svg"),
    ("jupyter", "/icon/jupyter.svg"),
    ("terminal", "/icon/terminal.svg"),
    ("filebrowser", "/icon/database.svg"),
    ("Web-Preview", "/icon/globe.svg"),
];

pub(crate) const GROUPS: [&str; 8] = [
    "Everyone",
    "admins",
    "developers",
    "data-science",
    "SRE",
    "contractors",
    "qa",
    "security",
];

pub(crate) const TOKENS: [&str; 10] = [
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

pub(crate) const BROWSER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 Edg/125.0.0.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
];

pub(crate) const CLI_AGENTS: &[&str] = &[
    "coder/v2.24.1 (linux/amd64)",
    "coder/v2.24.1 (darwin/arm64)",
    "coder/v2.23.3 (windows/amd64)",
    "Go-http-client/1.1",
    "terraform-provider-coderd/0.0.9",
    "curl/8.7.1",
];

pub(crate) const VSCODE_AGENTS: &[&str] = &[
    "Coder.coder-remote/1.9.1 vscode/1.101.0",
    "Coder.coder-remote/1.8.0 vscode/1.99.3",
];

pub(crate) const JETBRAINS_AGENTS: &[&str] = &["JetBrains-Gateway/2024.1.4 coder-gateway/2.14.0"];

pub(crate) const ROLES: &[&str] = &[
    "template-maintainer",
    "Auditor-Lite",
    "workspace-helper",
    "billing",
];
pub(crate) const IDP: &[&str] = &["oidc"];
pub(crate) const PREBUILDS: &[&str] = &["prebuilds"];
pub(crate) const TASKS: &[&str] = &[
    "fix-flaky-test",
    "Upgrade-Deps",
    "write-docs",
    "triage-issue",
    "refactor",
];
pub(crate) const CHATS: &[&str] = &["debug session", "Code Review", "onboarding", "design notes"];
pub(crate) const LICENSES: &[&str] = &["enterprise", "premium", "trial"];
pub(crate) const PROXIES: &[&str] = &["eu-west", "us-east", "Sydney", "sao-paulo"];
pub(crate) const HEALTH: &[&str] = &["health"];
pub(crate) const NOTIFY: &[&str] = &["notifications"];
pub(crate) const NOTIFY_TEMPLATES: &[&str] = &[
    "Workspace Deleted",
    "workspace-autobuild-failed",
    "User Account Suspended",
    "template-deprecated",
];
pub(crate) const OAUTH: &[&str] = &["Grafana", "jenkins", "Internal Portal", "backstage"];
pub(crate) const AI_SEATS: &[&str] = &["claude-code", "copilot", "Cursor"];

pub(crate) fn ascii_lower(name: &str) -> String {
    ascii_only(name).to_ascii_lowercase()
}

/// Coder usernames are ASCII: letters outside it are folded to their base letter.
pub(crate) fn ascii_only(name: &str) -> String {
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

pub(crate) fn capitalize(text: &str) -> String {
    let mut characters = text.chars();
    match characters.next() {
        Some(first) => first.to_uppercase().chain(characters).collect(),
        None => String::new(),
    }
}
