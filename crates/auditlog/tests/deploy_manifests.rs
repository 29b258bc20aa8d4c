//! Consistency of the deployment files with the binary they deploy.
//!
//! Docker and Kubernetes are not available where the tests run, so instead of starting the
//! stacks this parses `deploy/compose/`, `deploy/kubernetes/`, the Helm chart as Helm renders
//! it (`deploy/helm/auditlog`, with its defaults) and `deploy/Dockerfile`, and cross-checks
//! them against the built `auditlog` binary itself: its `--help` output is the
//! source of truth for subcommands, flags and `AUDITLOG_*` variables, and its own `--config`
//! loading (which denies unknown keys) validates the TOML files. A renamed flag, a
//! misspelled variable, a port that differs between a listener and its probe, or an HPA
//! that scales past the partition count fails here instead of in a cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_norway::Value;

#[path = "support/helm.rs"]
mod helm;

const COMPOSE: &str = "deploy/compose/docker-compose.yml";
const COMPOSE_TOML: &str = "deploy/compose/auditlog.toml";
const PROMETHEUS: &str = "deploy/compose/prometheus.yml";
const DOCKERFILE: &str = "deploy/Dockerfile";
const KUBERNETES: &str = "deploy/kubernetes";
/// The files whose every `AUDITLOG_*` mention must be a variable the binary reads.
const ENV_SCANNED: &[&str] = &[
    COMPOSE,
    COMPOSE_TOML,
    PROMETHEUS,
    DOCKERFILE,
    "deploy/compose/README.md",
    "deploy/kubernetes/README.md",
];
/// The ingester's shutdown timeout when the config does not set one (config.rs).
const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 30;
/// The partitioned topic, as the default configuration names it.
const TOPIC: &str = "audit-events";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{relative}: cannot read: {error}"))
}

/// Every document of a YAML file, with `<<` merge keys applied (compose uses them).
fn yaml_documents(relative: &str) -> Vec<Value> {
    let text = read(relative);
    serde_norway::Deserializer::from_str(&text)
        .map(|document| {
            let mut value = Value::deserialize(document)
                .unwrap_or_else(|error| panic!("{relative}: not valid YAML: {error}"));
            // Merges nest (a service merges x-ingester, which merges x-auditlog): repeat
            // until no merge key is left.
            for _ in 0..8 {
                value
                    .apply_merge()
                    .unwrap_or_else(|error| panic!("{relative}: bad merge key: {error}"));
            }
            value
        })
        .filter(|value| !value.is_null())
        .collect()
}

fn kubernetes_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join(KUBERNETES))
        .unwrap_or_else(|error| panic!("{KUBERNETES}: cannot list: {error}"))
        .map(|entry| entry.expect("directory entry").file_name())
        .filter_map(|name| name.to_str().map(str::to_owned))
        .filter(|name| name.ends_with(".yaml") || name.ends_with(".yml"))
        .map(|name| format!("{KUBERNETES}/{name}"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{KUBERNETES}: no manifests found");
    files
}

/// One way of deploying to Kubernetes, checked alike: the plain manifests, or the chart.
struct Manifests {
    /// `deploy/kubernetes` or the chart's directory, for messages.
    name: &'static str,
    /// Every object, with the file it came from.
    objects: Vec<(String, Value)>,
    /// Text whose every `AUDITLOG_*` mention must be a variable the binary reads.
    texts: Vec<(String, String)>,
}

/// The plain manifests, then the chart as `helm template` renders it with its default values.
fn kubernetes_manifests() -> Vec<Manifests> {
    let files = kubernetes_files();
    let plain = Manifests {
        name: KUBERNETES,
        objects: files
            .iter()
            .flat_map(|file| {
                yaml_documents(file)
                    .into_iter()
                    .map(move |object| (file.clone(), object))
            })
            .filter(|(_, object)| object.get("kind").is_some())
            .collect(),
        texts: files
            .iter()
            .map(|file| (file.clone(), read(file)))
            .collect(),
    };
    let rendered = helm::template(&[]);
    let chart = Manifests {
        name: helm::CHART,
        objects: helm::objects(&rendered),
        texts: vec![
            (format!("{} (rendered)", helm::CHART), rendered),
            (
                format!("{}/values.yaml", helm::CHART),
                read(&format!("{}/values.yaml", helm::CHART)),
            ),
        ],
    };
    vec![plain, chart]
}

fn object<'a>(objects: &'a [(String, Value)], kind: &str, name: &str) -> &'a (String, Value) {
    objects
        .iter()
        .find(|(_, object)| {
            str_at(object, &["kind"]) == Some(kind)
                && str_at(object, &["metadata", "name"]) == Some(name)
        })
        .unwrap_or_else(|| {
            let files: BTreeSet<&str> = objects.iter().map(|(file, _)| file.as_str()).collect();
            panic!("no {kind} named {name} in {files:?}")
        })
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, key| value.get(*key))
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

fn u64_at(value: &Value, path: &[&str]) -> Option<u64> {
    at(value, path).and_then(|value| {
        value
            .as_u64()
            .or_else(|| value.as_str().and_then(|text| text.parse().ok()))
    })
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_sequence)
        .map(|items| {
            items
                .iter()
                .map(|item| match item {
                    Value::String(text) => text.clone(),
                    Value::Number(number) => number.to_string(),
                    other => panic!("expected a string, found {other:?}"),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn port_of(address: &str) -> u16 {
    address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("{address:?} has no port"))
}

// ---------------------------------------------------------------------------------------
// What the binary accepts, from its own --help.

/// One (sub)command's help: its flags (with whether they take a value), subcommands and
/// environment variables.
#[derive(Debug, Default)]
struct CommandHelp {
    flags: BTreeMap<String, bool>,
    subcommands: BTreeSet<String>,
    env: BTreeSet<String>,
}

fn auditlog(args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_auditlog"));
    command.args(args);
    // A variable set in the test's environment would show up as `[env: NAME=value]` and
    // could make the binary read a config file: run it clean.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("AUDITLOG_") {
            command.env_remove(name);
        }
    }
    command
        .output()
        .unwrap_or_else(|error| panic!("running auditlog {args:?}: {error}"))
}

fn help_of(path: &[String]) -> CommandHelp {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let output = auditlog(&args);
    assert!(
        output.status.success(),
        "auditlog {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("help is UTF-8");
    let mut help = CommandHelp::default();
    let mut in_commands = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            match trimmed.split_whitespace().next() {
                Some(name) if line.starts_with("  ") => {
                    if name != "help" {
                        help.subcommands.insert(name.to_owned());
                    }
                }
                _ => in_commands = false,
            }
            continue;
        }
        if trimmed.starts_with('-') {
            let words: Vec<&str> = trimmed.split_whitespace().collect();
            for (index, word) in words.iter().enumerate() {
                let word = word.trim_end_matches(',');
                if let Some(flag) = word.strip_prefix("--") {
                    let takes_value = words
                        .get(index + 1)
                        .is_some_and(|next| next.starts_with('<'));
                    help.flags.insert(flag.to_owned(), takes_value);
                }
            }
        }
        let mut rest = line;
        while let Some(start) = rest.find("[env: ") {
            let after = &rest[start + "[env: ".len()..];
            let end = after.find(['=', ']']).unwrap_or(after.len());
            help.env.insert(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    help
}

/// The whole command tree, walked from the top-level help so new subcommands are covered.
fn command_tree() -> BTreeMap<Vec<String>, CommandHelp> {
    let mut tree = BTreeMap::new();
    let mut pending = vec![Vec::new()];
    while let Some(path) = pending.pop() {
        let help = help_of(&path);
        for sub in &help.subcommands {
            let mut child = path.clone();
            child.push(sub.clone());
            pending.push(child);
        }
        tree.insert(path, help);
    }
    for expected in [
        &["ingest"][..],
        &["serve"],
        &["migrate"],
        &["generate"],
        &["query"],
        &["dlq", "inspect"],
    ] {
        let path: Vec<String> = expected.iter().map(|word| (*word).to_owned()).collect();
        assert!(
            tree.contains_key(&path),
            "auditlog --help: subcommand {expected:?} not found (help parsing broke?)"
        );
    }
    tree
}

fn known_env(tree: &BTreeMap<Vec<String>, CommandHelp>) -> BTreeSet<String> {
    let env: BTreeSet<String> = tree.values().flat_map(|help| help.env.clone()).collect();
    for expected in [
        "AUDITLOG_CONFIG",
        "AUDITLOG_API_LISTEN",
        "AUDITLOG_INGEST_METRICS_LISTEN",
    ] {
        assert!(
            env.contains(expected),
            "auditlog --help lists no {expected} (help parsing broke?): {env:?}"
        );
    }
    env
}

/// Checks one container's arguments (after `auditlog`) against the command tree; returns
/// the subcommand path and the flags given, with their values.
fn check_invocation(
    tree: &BTreeMap<Vec<String>, CommandHelp>,
    origin: &str,
    args: &[String],
    problems: &mut Vec<String>,
) -> (Vec<String>, BTreeMap<String, String>) {
    let mut path = Vec::new();
    let mut given = BTreeMap::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let help = &tree[&path];
        if let Some(flag) = word.strip_prefix("--") {
            let (name, inline) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (flag, None),
            };
            match help.flags.get(name) {
                None => problems.push(format!(
                    "{origin}: `auditlog {}` has no flag --{name} (args {args:?})",
                    path.join(" ")
                )),
                Some(true) => {
                    let value = inline.or_else(|| words.next().cloned());
                    match value {
                        Some(value) => {
                            given.insert(name.to_owned(), value);
                        }
                        None => problems.push(format!("{origin}: --{name} needs a value")),
                    }
                }
                Some(false) => {
                    given.insert(name.to_owned(), String::new());
                }
            }
        } else if help.subcommands.contains(word) {
            path.push(word.clone());
        } else if !help.subcommands.is_empty() {
            problems.push(format!(
                "{origin}: `auditlog {}` has no subcommand {word:?} (it has {:?})",
                path.join(" "),
                help.subcommands
            ));
            return (path, given);
        }
        // Otherwise a positional argument, e.g. query's filter.
    }
    if !tree[&path].subcommands.is_empty() {
        problems.push(format!(
            "{origin}: `auditlog {}` needs a subcommand (args {args:?})",
            path.join(" ")
        ));
    }
    (path, given)
}

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}:\n  - {}",
        problems.join("\n  - ")
    );
}

// ---------------------------------------------------------------------------------------
// The deployments' containers, in one shape for both.

/// One container running the auditlog image.
#[derive(Debug)]
struct Container {
    /// `file: service or object/container`, for messages.
    origin: String,
    /// Arguments after `auditlog` (empty when the container runs another command).
    args: Vec<String>,
    /// Whether it runs auditlog at all (an init container may run a shell).
    runs_auditlog: bool,
    env: BTreeMap<String, String>,
}

fn compose() -> Value {
    yaml_documents(COMPOSE)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{COMPOSE}: empty"))
}

fn compose_services(compose: &Value) -> Vec<(String, &Value)> {
    compose
        .get("services")
        .and_then(Value::as_mapping)
        .unwrap_or_else(|| panic!("{COMPOSE}: no services"))
        .iter()
        .map(|(name, service)| (name.as_str().expect("service name").to_owned(), service))
        .collect()
}

fn compose_env(service: &Value) -> BTreeMap<String, String> {
    match service.get("environment") {
        Some(Value::Mapping(map)) => map
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    Value::String(text) => text.clone(),
                    Value::Null => String::new(),
                    other => serde_norway::to_string(other)
                        .expect("scalar")
                        .trim()
                        .to_owned(),
                };
                (key.as_str().expect("env name").to_owned(), value)
            })
            .collect(),
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|item| {
                let (name, value) = item.split_once('=').unwrap_or((item, ""));
                (name.to_owned(), value.to_owned())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn is_auditlog_image(image: &str) -> bool {
    let name = image.split(':').next().unwrap_or(image);
    name.rsplit('/').next() == Some("auditlog")
}

fn compose_containers(compose: &Value) -> Vec<Container> {
    compose_services(compose)
        .into_iter()
        .filter_map(|(name, service)| {
            let image = str_at(service, &["image"])?;
            is_auditlog_image(image).then(|| Container {
                origin: format!("{COMPOSE}: service {name}"),
                args: strings(service.get("command")),
                runs_auditlog: service.get("entrypoint").is_none(),
                env: compose_env(service),
            })
        })
        .collect()
}

/// Every pod template in the manifests, with its owner.
fn pod_templates(objects: &[(String, Value)]) -> Vec<(String, &Value)> {
    objects
        .iter()
        .filter_map(|(file, object)| {
            let pod = at(object, &["spec", "template", "spec"])?;
            Some((
                format!(
                    "{file}: {} {}",
                    str_at(object, &["kind"]).unwrap_or("?"),
                    str_at(object, &["metadata", "name"]).unwrap_or("?")
                ),
                pod,
            ))
        })
        .collect()
}

fn pod_containers(pod: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|key| pod.get(*key).and_then(Value::as_sequence))
        .flatten()
        .collect()
}

fn kubernetes_containers(objects: &[(String, Value)]) -> Vec<Container> {
    let mut containers = Vec::new();
    for (owner, pod) in pod_templates(objects) {
        for container in pod_containers(pod) {
            let image = str_at(container, &["image"]).unwrap_or_default();
            if !is_auditlog_image(image) {
                continue;
            }
            let command = strings(container.get("command"));
            let env = container
                .get("env")
                .and_then(Value::as_sequence)
                .map(|items| {
                    items
                        .iter()
                        .map(|item| {
                            (
                                str_at(item, &["name"]).unwrap_or_default().to_owned(),
                                str_at(item, &["value"]).unwrap_or_default().to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            containers.push(Container {
                origin: format!("{owner}/{}", str_at(container, &["name"]).unwrap_or("?")),
                runs_auditlog: command.is_empty() || command == ["auditlog"],
                args: strings(container.get("args")),
                env,
            });
        }
    }
    containers
}

// ---------------------------------------------------------------------------------------
// The tests.

#[test]
fn every_auditlog_variable_in_the_deploy_files_is_one_the_binary_reads() {
    let known = known_env(&command_tree());
    let manifests = kubernetes_manifests();
    let mut texts: Vec<(String, String)> = ENV_SCANNED
        .iter()
        .map(|file| ((*file).to_owned(), read(file)))
        .collect();
    texts.extend(manifests.iter().flat_map(|set| set.texts.clone()));
    let mut problems = Vec::new();
    for (file, text) in &texts {
        let mut rest = text.as_str();
        while let Some(start) = rest.find("AUDITLOG_") {
            let name: String = rest[start..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            // `AUDITLOG_*` in prose names the family, not a variable.
            if !name.ends_with('_') && !known.contains(&name) {
                problems.push(format!(
                    "{file}: {name} is not an environment variable auditlog reads"
                ));
            }
            rest = &rest[start + name.len()..];
        }
    }
    // The structured view too: a variable set through a container's env must be known
    // (this also catches a name built without the AUDITLOG_ prefix by mistake).
    let compose = compose();
    for container in compose_containers(&compose).into_iter().chain(
        manifests
            .iter()
            .flat_map(|set| kubernetes_containers(&set.objects)),
    ) {
        for name in container.env.keys() {
            if !known.contains(name) {
                problems.push(format!(
                    "{}: sets {name}, which auditlog does not read",
                    container.origin
                ));
            }
        }
    }
    assert_no_problems("unknown AUDITLOG_* variables", &problems);
}

#[test]
fn every_container_command_is_a_real_subcommand_with_real_flags() {
    let tree = command_tree();
    let compose = compose();
    let manifests = kubernetes_manifests();
    let mut problems = Vec::new();
    let mut sets: Vec<(&str, Vec<Container>)> = vec![(COMPOSE, compose_containers(&compose))];
    sets.extend(
        manifests
            .iter()
            .map(|set| (set.name, kubernetes_containers(&set.objects))),
    );
    for (name, containers) in sets {
        let mut seen = BTreeSet::new();
        for container in containers {
            if !container.runs_auditlog {
                continue;
            }
            if container.args.is_empty() {
                problems.push(format!(
                    "{}: runs auditlog without a subcommand (only prints help)",
                    container.origin
                ));
                continue;
            }
            let (path, _) =
                check_invocation(&tree, &container.origin, &container.args, &mut problems);
            seen.insert(path.join(" "));
        }
        for expected in ["migrate", "ingest", "serve"] {
            if !seen.contains(expected) {
                problems.push(format!("no container in {name} runs `auditlog {expected}`"));
            }
        }
    }
    assert_no_problems("container commands", &problems);
}

/// Where a container's HTTP server listens: `--metrics-listen` / `AUDITLOG_*_LISTEN`.
fn listen_address(
    tree: &BTreeMap<Vec<String>, CommandHelp>,
    container: &Container,
    problems: &mut Vec<String>,
) -> Option<(String, String)> {
    let (path, flags) = check_invocation(tree, &container.origin, &container.args, problems);
    let (flag, env) = match path.first().map(String::as_str) {
        Some("ingest") => ("metrics-listen", "AUDITLOG_INGEST_METRICS_LISTEN"),
        Some("serve") => ("api-listen", "AUDITLOG_API_LISTEN"),
        _ => return None,
    };
    let address = flags
        .get(flag)
        .cloned()
        .or_else(|| container.env.get(env).cloned());
    match address {
        Some(address) => {
            if address.starts_with("127.") || address.starts_with("localhost") {
                problems.push(format!(
                    "{}: listens on {address}, a loopback address nothing outside the container reaches",
                    container.origin
                ));
            }
            Some((path[0].clone(), address))
        }
        None => {
            problems.push(format!(
                "{}: sets neither --{flag} nor {env}, so it listens on loopback only",
                container.origin
            ));
            None
        }
    }
}

#[test]
fn compose_ports_healthchecks_and_scrape_targets_agree() {
    let tree = command_tree();
    let compose = compose();
    let services = compose_services(&compose);
    let prometheus = yaml_documents(PROMETHEUS)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{PROMETHEUS}: empty"));
    let targets: BTreeSet<String> = prometheus
        .get("scrape_configs")
        .and_then(Value::as_sequence)
        .unwrap_or_else(|| panic!("{PROMETHEUS}: no scrape_configs"))
        .iter()
        .flat_map(|job| {
            job.get("static_configs")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .flat_map(|config| strings(config.get("targets")))
        })
        .collect();
    let mut problems = Vec::new();
    let mut scraped = BTreeSet::new();
    let mut ingesters = 0;
    for container in compose_containers(&compose) {
        let Some((role, address)) = listen_address(&tree, &container, &mut problems) else {
            continue;
        };
        let port = port_of(&address);
        let name = container.origin.rsplit(' ').next().expect("service name");
        let service = services
            .iter()
            .find(|(service, _)| service == name)
            .expect("service")
            .1;
        ingesters += usize::from(role == "ingest");
        // Healthcheck: probes /healthz or /readyz on the port the server listens on.
        let check = strings(at(service, &["healthcheck", "test"])).join(" ");
        if !(check.contains(&format!(":{port}/healthz"))
            || check.contains(&format!(":{port}/readyz")))
        {
            problems.push(format!(
                "{}: healthcheck {check:?} does not probe /healthz or /readyz on port {port}",
                container.origin
            ));
        }
        // Prometheus scrapes it by container name (or service name) on that port.
        let hosts = [str_at(service, &["container_name"]).unwrap_or(name), name];
        match hosts
            .iter()
            .map(|host| format!("{host}:{port}"))
            .find(|target| targets.contains(target))
        {
            Some(target) => {
                scraped.insert(target);
            }
            None => problems.push(format!(
                "{PROMETHEUS}: does not scrape {} on its port {port} (targets {targets:?})",
                container.origin
            )),
        }
        // Published ports map to the port the server listens on.
        for published in strings(service.get("ports")) {
            let inside = port_of(&published);
            if inside != port {
                problems.push(format!(
                    "{}: publishes container port {inside}, but the server listens on {port}",
                    container.origin
                ));
            }
        }
    }
    if ingesters < 2 {
        problems.push(format!(
            "{COMPOSE}: expected two ingesters, found {ingesters}"
        ));
    }
    for target in targets.difference(&scraped) {
        problems.push(format!(
            "{PROMETHEUS}: target {target} is no auditlog server's listen address in {COMPOSE}"
        ));
    }
    // Distinct container names, or the second ingester cannot be created.
    let mut names = BTreeSet::new();
    for (service, definition) in &services {
        if let Some(name) = str_at(definition, &["container_name"])
            && !names.insert(name.to_owned())
        {
            problems.push(format!(
                "{COMPOSE}: service {service} reuses container_name {name}"
            ));
        }
    }
    assert_no_problems("compose ports", &problems);
}

/// Resolves a probe's or Service's port (a number or a container port name).
fn resolve_port(container: &Value, port: &Value) -> Option<u16> {
    if let Some(number) = port.as_u64() {
        return u16::try_from(number).ok();
    }
    let name = port.as_str()?;
    container
        .get("ports")
        .and_then(Value::as_sequence)?
        .iter()
        .find(|entry| str_at(entry, &["name"]) == Some(name))
        .and_then(|entry| u64_at(entry, &["containerPort"]))
        .and_then(|number| u16::try_from(number).ok())
}

/// The API's second listener for probes and scrapes (`serve --ops-listen`), when set.
fn ops_address(tree: &BTreeMap<Vec<String>, CommandHelp>, container: &Container) -> Option<String> {
    let (path, flags) = check_invocation(tree, &container.origin, &container.args, &mut Vec::new());
    if path.first().map(String::as_str) != Some("serve") {
        return None;
    }
    flags
        .get("ops-listen")
        .cloned()
        .or_else(|| container.env.get("AUDITLOG_API_OPS_LISTEN").cloned())
}

#[test]
fn kubernetes_ports_probes_and_service_agree() {
    let tree = command_tree();
    let mut problems = Vec::new();
    for set in kubernetes_manifests() {
        check_ports_probes_and_service(&tree, &set, &mut problems);
    }
    assert_no_problems("kubernetes ports", &problems);
}

fn check_ports_probes_and_service(
    tree: &BTreeMap<Vec<String>, CommandHelp>,
    set: &Manifests,
    problems: &mut Vec<String>,
) {
    let objects = &set.objects;
    let mut roles = BTreeSet::new();
    for (owner, pod) in pod_templates(objects) {
        for definition in pod_containers(pod) {
            let container = kubernetes_containers(objects)
                .into_iter()
                .find(|container| {
                    container.origin
                        == format!("{owner}/{}", str_at(definition, &["name"]).unwrap_or("?"))
                });
            let Some(container) = container.filter(|container| container.runs_auditlog) else {
                continue;
            };
            let Some((role, address)) = listen_address(tree, &container, problems) else {
                continue;
            };
            roles.insert(role.clone());
            let port = port_of(&address);
            let ops = ops_address(tree, &container).map(|ops| port_of(&ops));
            // Probes and scrapes go to the ops listener when there is one.
            let probe_port = ops.unwrap_or(port);
            let declared: Vec<u16> = definition
                .get("ports")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
                .filter_map(|entry| u64_at(entry, &["containerPort"]))
                .filter_map(|number| u16::try_from(number).ok())
                .collect();
            for listened in [Some(port), ops].into_iter().flatten() {
                if !declared.contains(&listened) {
                    problems.push(format!(
                        "{}: listens on {listened} but declares containerPorts {declared:?}",
                        container.origin
                    ));
                }
            }
            for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
                let Some(get) = at(definition, &[probe, "httpGet"]) else {
                    problems.push(format!("{}: no {probe} httpGet", container.origin));
                    continue;
                };
                if str_at(get, &["path"]) != Some(path) {
                    problems.push(format!(
                        "{}: {probe} should GET {path}, not {:?}",
                        container.origin,
                        str_at(get, &["path"])
                    ));
                }
                let probed = get
                    .get("port")
                    .and_then(|value| resolve_port(definition, value));
                if probed != Some(probe_port) {
                    problems.push(format!(
                        "{}: {probe} probes port {probed:?}, but /healthz and /readyz are on {probe_port}",
                        container.origin
                    ));
                }
            }
            let annotated = objects
                .iter()
                .find(|(file, object)| {
                    owner.starts_with(file.as_str())
                        && at(object, &["spec", "template", "spec"]) == Some(pod)
                })
                .and_then(|(_, object)| {
                    str_at(
                        object,
                        &[
                            "spec",
                            "template",
                            "metadata",
                            "annotations",
                            "prometheus.io/port",
                        ],
                    )
                });
            if let Some(annotated) = annotated
                && annotated != probe_port.to_string()
            {
                problems.push(format!(
                    "{}: prometheus.io/port is {annotated}, but /metrics is scraped on {probe_port}",
                    container.origin
                ));
            }
            if role == "serve" {
                let (file, service) = object(objects, "Service", "auditlog-api");
                for entry in at(service, &["spec", "ports"])
                    .and_then(Value::as_sequence)
                    .into_iter()
                    .flatten()
                {
                    let target = entry
                        .get("targetPort")
                        .or_else(|| entry.get("port"))
                        .and_then(|value| resolve_port(definition, value));
                    if target != Some(port) {
                        problems.push(format!(
                            "{file}: Service auditlog-api targets port {target:?}, but the API listens on {port}"
                        ));
                    }
                }
                let labels = at(
                    pod_template_of(objects, "auditlog-api"),
                    &["metadata", "labels"],
                );
                if let Some(selector) =
                    at(service, &["spec", "selector"]).and_then(Value::as_mapping)
                {
                    for (key, value) in selector {
                        if labels.and_then(|labels| labels.get(key)) != Some(value) {
                            problems.push(format!(
                                "{file}: Service auditlog-api selects {key:?}={value:?}, which the API pods do not carry"
                            ));
                        }
                    }
                }
            }
        }
    }
    for expected in ["ingest", "serve"] {
        if !roles.contains(expected) {
            problems.push(format!(
                "{}: no container runs `auditlog {expected}`",
                set.name
            ));
        }
    }
}

fn pod_template_of<'a>(objects: &'a [(String, Value)], deployment: &str) -> &'a Value {
    let (file, object) = object(objects, "Deployment", deployment);
    at(object, &["spec", "template"])
        .unwrap_or_else(|| panic!("{file}: Deployment {deployment} has no pod template"))
}

#[test]
fn images_are_pinned_and_auditlog_is_one_image_everywhere() {
    let compose = compose();
    let manifests = kubernetes_manifests();
    let mut problems = Vec::new();
    let mut images: Vec<(String, String)> = compose_services(&compose)
        .into_iter()
        .filter_map(|(name, service)| {
            Some((
                format!("{COMPOSE}: service {name}"),
                str_at(service, &["image"])?.to_owned(),
            ))
        })
        .collect();
    for (owner, pod) in manifests.iter().flat_map(|set| pod_templates(&set.objects)) {
        for container in pod_containers(pod) {
            images.push((
                format!("{owner}/{}", str_at(container, &["name"]).unwrap_or("?")),
                str_at(container, &["image"]).unwrap_or_default().to_owned(),
            ));
        }
    }
    for (origin, image) in &images {
        let tag = image
            .rsplit('/')
            .next()
            .and_then(|last| last.split_once(':'))
            .map(|(_, tag)| tag);
        match tag {
            None => problems.push(format!(
                "{origin}: image {image:?} has no tag (means :latest)"
            )),
            Some("latest") => problems.push(format!("{origin}: image {image:?} is not pinned")),
            Some(_) => {}
        }
    }
    let auditlog: BTreeSet<&str> = images
        .iter()
        .filter(|(_, image)| is_auditlog_image(image))
        .map(|(_, image)| image.as_str())
        .collect();
    let version = workspace_version();
    match auditlog.iter().next() {
        None => problems.push("no container uses the auditlog image".to_owned()),
        Some(_) if auditlog.len() > 1 => problems.push(format!(
            "the auditlog image is named differently across files: {auditlog:?}"
        )),
        Some(image) if !image.ends_with(&format!(":{version}")) => problems.push(format!(
            "the auditlog image {image} is not tagged with the workspace version {version}"
        )),
        Some(_) => {}
    }
    // Kafka everywhere is the version the local stack and the tests run (its Maven pin).
    let pom = read("deploy/local/kafka/pom.xml");
    let kafka_version = pom
        .split_once("<kafka.version>")
        .and_then(|(_, rest)| rest.split_once("</kafka.version>"))
        .map(|(version, _)| version.trim().to_owned())
        .expect("deploy/local/kafka/pom.xml pins <kafka.version>");
    for (origin, image) in &images {
        if let Some(tag) = image.strip_prefix("apache/kafka:")
            && tag != kafka_version
        {
            problems.push(format!(
                "{origin}: Kafka image {image} is not the local stack's Kafka {kafka_version}"
            ));
        }
    }
    if !images
        .iter()
        .any(|(_, image)| image.starts_with("apache/kafka:"))
    {
        problems.push("no deploy file runs apache/kafka".to_owned());
    }
    // The Dockerfile: every base image pinned, the builder on rust-toolchain.toml's version.
    let dockerfile = read(DOCKERFILE);
    let toolchain: toml::Table =
        toml::from_str(&read("rust-toolchain.toml")).expect("rust-toolchain.toml");
    let channel = toolchain["toolchain"]["channel"]
        .as_str()
        .expect("toolchain.channel");
    if !dockerfile
        .lines()
        .any(|line| line.trim() == format!("ARG RUST_VERSION={channel}"))
    {
        problems.push(format!(
            "{DOCKERFILE}: ARG RUST_VERSION is not rust-toolchain.toml's channel {channel}"
        ));
    }
    for line in dockerfile.lines().filter(|line| line.starts_with("FROM ")) {
        let image = line.split_whitespace().nth(1).unwrap_or_default();
        if !image.contains(':') || image.ends_with(":latest") {
            problems.push(format!("{DOCKERFILE}: base image {image:?} is not pinned"));
        }
    }
    if !dockerfile.contains(r#"ENTRYPOINT ["auditlog"]"#) {
        problems.push(format!("{DOCKERFILE}: ENTRYPOINT should be [\"auditlog\"]"));
    }
    if !dockerfile
        .lines()
        .any(|line| line.starts_with("USER ") && !line.contains("root") && !line.contains(" 0"))
    {
        problems.push(format!(
            "{DOCKERFILE}: the runtime does not switch to a non-root USER"
        ));
    }
    // compose builds the image from this Dockerfile.
    for (name, service) in compose_services(&compose) {
        if let (Some(context), Some(file)) = (
            str_at(service, &["build", "context"]),
            str_at(service, &["build", "dockerfile"]),
        ) {
            let path = repo().join("deploy/compose").join(context).join(file);
            if !path.is_file() {
                problems.push(format!(
                    "{COMPOSE}: service {name} builds from {}, which does not exist",
                    path.display()
                ));
            }
        }
    }
    let ignore = read(".dockerignore");
    for excluded in ["target", ".stack"] {
        if !ignore
            .lines()
            .any(|line| line.trim().trim_matches('/') == excluded)
        {
            problems.push(format!(".dockerignore: does not exclude {excluded}/"));
        }
    }
    assert_no_problems("images", &problems);
}

fn workspace_version() -> String {
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml");
    manifest["workspace"]["package"]["version"]
        .as_str()
        .expect("workspace.package.version")
        .to_owned()
}

/// Loads a config file with the binary itself: `--config` is read before any subcommand
/// runs and its structs deny unknown keys, and `query --parse` touches no service.
fn check_config_with_binary(origin: &str, text: &str, problems: &mut Vec<String>) {
    let file = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "deploy-manifests-{}.toml",
        origin.replace(['/', ' ', ':'], "_")
    ));
    std::fs::write(&file, text).expect("writing the config copy");
    let output = auditlog(&[
        "--config",
        file.to_str().expect("utf-8 path"),
        "query",
        "--parse",
        "",
    ]);
    if !output.status.success() {
        problems.push(format!(
            "{origin}: auditlog rejects it as a config file: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
}

fn configmap_toml(objects: &[(String, Value)]) -> (String, String) {
    let (file, configmap) = object(objects, "ConfigMap", "auditlog-config");
    let text = str_at(configmap, &["data", "auditlog.toml"])
        .unwrap_or_else(|| panic!("{file}: ConfigMap auditlog-config has no auditlog.toml"));
    (file.clone(), text.to_owned())
}

fn tokens_of(text: &str) -> Vec<toml::Value> {
    let table: toml::Table = toml::from_str(text).unwrap_or_default();
    table
        .get("api")
        .and_then(|api| api.get("tokens"))
        .and_then(toml::Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn check_tokens(origin: &str, text: &str, problems: &mut Vec<String>) {
    let tokens = tokens_of(text);
    if tokens.is_empty() {
        problems.push(format!(
            "{origin}: no [[api.tokens]]: the API refuses to listen off loopback without one"
        ));
    }
    for token in tokens {
        let hash = token
            .get("sha256")
            .and_then(toml::Value::as_str)
            .unwrap_or_default();
        if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            problems.push(format!(
                "{origin}: token sha256 {hash:?} is not 64 hex digits"
            ));
        }
    }
}

#[test]
fn config_files_are_accepted_by_the_binary() {
    let mut problems = Vec::new();
    let compose_toml = read(COMPOSE_TOML);
    check_config_with_binary(COMPOSE_TOML, &compose_toml, &mut problems);
    check_tokens(COMPOSE_TOML, &compose_toml, &mut problems);
    for set in kubernetes_manifests() {
        check_kubernetes_config(&set, &mut problems);
    }
    assert_no_problems("config files", &problems);
}

/// The ConfigMap's file and the API's joined config load in the binary; secrets stay in the
/// Secret, and every Secret key a container reads exists.
fn check_kubernetes_config(set: &Manifests, problems: &mut Vec<String>) {
    let objects = &set.objects;
    let (file, base) = configmap_toml(objects);
    check_config_with_binary(&file, &base, problems);
    if !tokens_of(&base).is_empty() {
        problems.push(format!(
            "{file}: the ConfigMap holds API tokens; they belong in the Secret"
        ));
    }
    if base.contains("password") {
        problems.push(format!(
            "{file}: the ConfigMap mentions a password; it belongs in the Secret"
        ));
    }
    // The API pod joins the ConfigMap's file and the Secret's tokens into one config.
    let (secret_file, secret) = object(objects, "Secret", "auditlog-secrets");
    let tokens = str_at(secret, &["stringData", "api-tokens.toml"])
        .unwrap_or_else(|| panic!("{secret_file}: Secret auditlog-secrets has no api-tokens.toml"));
    let joined = format!("{base}{tokens}");
    let origin = format!("{file} + {secret_file} (the API's joined config)");
    check_config_with_binary(&origin, &joined, problems);
    check_tokens(&origin, &joined, problems);
    let api = pod_template_of(objects, "auditlog-api");
    let init = strings(
        at(api, &["spec", "initContainers"])
            .and_then(|list| list.get(0))
            .and_then(|c| c.get("args")),
    )
    .join(" ");
    for part in ["auditlog.toml", "api-tokens.toml"] {
        if !init.contains(part) {
            problems.push(format!(
                "{}: the API's init container does not join {part} into the API's config",
                set.name
            ));
        }
    }
    // Every secret key a container references exists, in the Secret it names.
    let keys_of = |name: &str| -> Option<BTreeSet<String>> {
        let (_, secret) = objects.iter().find(|(_, object)| {
            str_at(object, &["kind"]) == Some("Secret")
                && str_at(object, &["metadata", "name"]) == Some(name)
        })?;
        Some(
            at(secret, &["stringData"])
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
                .filter_map(|(key, _)| key.as_str().map(str::to_owned))
                .collect(),
        )
    };
    for (owner, pod) in pod_templates(objects) {
        for container in pod_containers(pod) {
            for item in container
                .get("env")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let Some(key) = str_at(item, &["valueFrom", "secretKeyRef", "key"]) else {
                    continue;
                };
                let name = str_at(item, &["valueFrom", "secretKeyRef", "name"]).unwrap_or("?");
                match keys_of(name) {
                    None => problems.push(format!(
                        "{owner}: references Secret {name}, which {} does not make",
                        set.name
                    )),
                    Some(keys) if !keys.contains(key) => problems.push(format!(
                        "{owner}: references key {key} of Secret {name}, which lacks it"
                    )),
                    Some(_) => {}
                }
            }
        }
    }
}

fn shutdown_timeout(text: &str) -> u64 {
    let table: toml::Table = toml::from_str(text).unwrap_or_default();
    table
        .get("ingest")
        .and_then(|ingest| ingest.get("shutdown_timeout_secs"))
        .and_then(toml::Value::as_integer)
        .and_then(|secs| u64::try_from(secs).ok())
        .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT_SECS)
}

/// The partition count kafka-init creates the topic with.
fn compose_partitions() -> u64 {
    let compose = compose();
    let services = compose_services(&compose);
    let script = services
        .iter()
        .map(|(_, service)| strings(service.get("command")).join(" "))
        .find(|command| command.contains("kafka-topics.sh") || command.contains("$$topics"))
        .unwrap_or_else(|| panic!("{COMPOSE}: no service creates the topics"));
    let words: Vec<&str> = script.split_whitespace().collect();
    let topic = words
        .windows(2)
        .position(|pair| pair == ["--topic", TOPIC])
        .unwrap_or_else(|| panic!("{COMPOSE}: the topic creation does not create {TOPIC}"));
    words[topic..]
        .windows(2)
        .find(|pair| pair[0] == "--partitions")
        .and_then(|pair| pair[1].parse().ok())
        .unwrap_or_else(|| panic!("{COMPOSE}: {TOPIC} is created without --partitions N"))
}

#[test]
fn scaling_and_shutdown_fit_the_topic_and_the_ingester() {
    let mut problems = Vec::new();
    let partitions = compose_partitions();
    for set in kubernetes_manifests() {
        check_kubernetes_scaling(&set, partitions, &mut problems);
    }
    // compose: stop_grace_period over the shutdown timeout of its config.
    let compose = compose();
    let compose_timeout = shutdown_timeout(&read(COMPOSE_TOML));
    for container in compose_containers(&compose) {
        if container.args.first().map(String::as_str) != Some("ingest") {
            continue;
        }
        let name = container.origin.rsplit(' ').next().expect("service name");
        let service = compose_services(&compose)
            .into_iter()
            .find(|(service, _)| service == name)
            .expect("service")
            .1;
        let period = str_at(service, &["stop_grace_period"]).unwrap_or("10s");
        let secs: u64 = period
            .strip_suffix('s')
            .and_then(|secs| secs.parse().ok())
            .unwrap_or_else(|| {
                panic!("{COMPOSE}: {name}: stop_grace_period {period:?} is not N s")
            });
        if secs <= compose_timeout {
            problems.push(format!(
                "{COMPOSE}: {name}: stop_grace_period {period} must exceed shutdown_timeout_secs {compose_timeout}"
            ));
        }
    }
    assert_no_problems("scaling and shutdown", &problems);
}

/// The ingesters' autoscaler, replica count, shutdown grace and disruption budgets.
fn check_kubernetes_scaling(set: &Manifests, partitions: u64, problems: &mut Vec<String>) {
    let objects = &set.objects;
    let (file, hpa) = object(objects, "HorizontalPodAutoscaler", "auditlog-ingester");
    let min = u64_at(hpa, &["spec", "minReplicas"]).unwrap_or(1);
    let max = u64_at(hpa, &["spec", "maxReplicas"])
        .unwrap_or_else(|| panic!("{file}: HPA without maxReplicas"));
    if max > partitions {
        problems.push(format!(
            "{file}: maxReplicas {max} exceeds the {partitions} partitions of {TOPIC} ({COMPOSE}); the extra ingesters would sit idle"
        ));
    }
    if min > max {
        problems.push(format!("{file}: minReplicas {min} > maxReplicas {max}"));
    }
    if str_at(hpa, &["spec", "scaleTargetRef", "kind"]) != Some("StatefulSet")
        || str_at(hpa, &["spec", "scaleTargetRef", "name"]) != Some("auditlog-ingester")
    {
        problems.push(format!(
            "{file}: the HPA does not target StatefulSet auditlog-ingester"
        ));
    }
    let metric = at(hpa, &["spec", "metrics"])
        .and_then(Value::as_sequence)
        .and_then(|metrics| metrics.first());
    let metric_name = metric.and_then(|metric| {
        str_at(metric, &["external", "metric", "name"])
            .or_else(|| str_at(metric, &["pods", "metric", "name"]))
    });
    match metric_name {
        Some(name) if name.contains("lag") => {
            for doc in ["deploy/kubernetes/README.md", "docs/operations.md"] {
                let text = read(doc);
                if !text.contains(name) {
                    problems.push(format!(
                        "{doc}: does not show how {name} (the HPA's metric) is produced"
                    ));
                }
                if !text.contains("auditlog_ingest_partition_lag") {
                    problems.push(format!(
                        "{doc}: does not name auditlog_ingest_partition_lag, the gauge lag comes from"
                    ));
                }
            }
        }
        other => problems.push(format!(
            "{file}: the HPA is not driven by consumer lag ({other:?})"
        )),
    }

    let (statefulset_file, statefulset) = object(objects, "StatefulSet", "auditlog-ingester");
    // Without replicas the autoscaler owns the count (so an upgrade does not reset it).
    if let Some(replicas) = u64_at(statefulset, &["spec", "replicas"])
        && (replicas < min || replicas > max)
    {
        problems.push(format!(
            "{statefulset_file}: replicas {replicas} outside the HPA's {min}..={max}"
        ));
    }
    check_static_membership(objects, statefulset_file, statefulset, problems);
    let (configmap_file, base) = configmap_toml(objects);
    let timeout = shutdown_timeout(&base);
    let grace = u64_at(
        statefulset,
        &["spec", "template", "spec", "terminationGracePeriodSeconds"],
    )
    .unwrap_or(30);
    if grace <= timeout {
        problems.push(format!(
            "{statefulset_file}: terminationGracePeriodSeconds {grace} must exceed the ingester's shutdown timeout {timeout}s ({configmap_file})"
        ));
    }
    // PodDisruptionBudgets select pods that exist.
    for (file, pdb) in objects
        .iter()
        .filter(|(_, object)| str_at(object, &["kind"]) == Some("PodDisruptionBudget"))
    {
        let selector = at(pdb, &["spec", "selector", "matchLabels"]).and_then(Value::as_mapping);
        let matches = objects.iter().any(|(_, object)| {
            let labels = at(object, &["spec", "template", "metadata", "labels"]);
            selector.is_some_and(|selector| {
                selector
                    .iter()
                    .all(|(key, value)| labels.and_then(|labels| labels.get(key)) == Some(value))
            })
        });
        if !matches {
            problems.push(format!(
                "{file}: PodDisruptionBudget {} selects no pod template",
                str_at(pdb, &["metadata", "name"]).unwrap_or("?")
            ));
        }
    }
}

/// The ingester StatefulSet gives each pod its name as group.instance.id, and its governing
/// Service is headless and exists.
fn check_static_membership(
    objects: &[(String, Value)],
    file: &str,
    statefulset: &Value,
    problems: &mut Vec<String>,
) {
    let pod = at(statefulset, &["spec", "template", "spec"]);
    let from_pod_name = pod.into_iter().flat_map(pod_containers).any(|container| {
        container
            .get("env")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .any(|item| {
                str_at(item, &["name"]) == Some("AUDITLOG_KAFKA_INSTANCE_ID")
                    && str_at(item, &["valueFrom", "fieldRef", "fieldPath"])
                        == Some("metadata.name")
            })
    });
    if !from_pod_name {
        problems.push(format!(
            "{file}: the ingesters do not set AUDITLOG_KAFKA_INSTANCE_ID from metadata.name (static membership)"
        ));
    }
    let service_name = str_at(statefulset, &["spec", "serviceName"]).unwrap_or_default();
    let headless = objects.iter().any(|(_, object)| {
        str_at(object, &["kind"]) == Some("Service")
            && str_at(object, &["metadata", "name"]) == Some(service_name)
            && str_at(object, &["spec", "clusterIP"]) == Some("None")
    });
    if !headless {
        problems.push(format!(
            "{file}: serviceName {service_name:?} is not a headless Service of the manifests"
        ));
    }
    let budget = objects.iter().any(|(_, object)| {
        str_at(object, &["kind"]) == Some("PodDisruptionBudget")
            && at(object, &["spec", "selector", "matchLabels"])
                == at(statefulset, &["spec", "selector", "matchLabels"])
    });
    if !budget {
        problems.push(format!(
            "{file}: no PodDisruptionBudget selects the ingesters"
        ));
    }
}

#[test]
fn the_topics_created_are_the_topics_configured() {
    let compose = compose();
    let script = compose_services(&compose)
        .iter()
        .map(|(_, service)| strings(service.get("command")).join(" "))
        .find(|command| command.contains("--create"))
        .unwrap_or_else(|| panic!("{COMPOSE}: no service creates the topics"));
    let words: Vec<&str> = script.split_whitespace().collect();
    let created: BTreeSet<&str> = words
        .windows(2)
        .filter(|pair| pair[0] == "--topic")
        .map(|pair| pair[1])
        .collect();
    let mut problems = Vec::new();
    let mut configs = vec![(COMPOSE_TOML.to_owned(), read(COMPOSE_TOML))];
    configs.extend(
        kubernetes_manifests()
            .iter()
            .map(|set| configmap_toml(&set.objects)),
    );
    for (origin, text) in configs {
        let table: toml::Table = toml::from_str(&text)
            .unwrap_or_else(|error| panic!("{origin}: not valid TOML: {error}"));
        for (key, default) in [("topic", TOPIC), ("dlq_topic", "audit-events-dlq")] {
            let topic = table
                .get("kafka")
                .and_then(|kafka| kafka.get(key))
                .and_then(toml::Value::as_str)
                .unwrap_or(default);
            if !created.contains(topic) {
                problems.push(format!(
                    "{origin}: kafka.{key} is {topic:?}, but {COMPOSE} creates only {created:?}"
                ));
            }
        }
    }
    assert_no_problems("topics", &problems);
}
