//! The Helm chart as Helm itself renders it, for the tests that check it.
//!
//! The binary is the one `deploy/local/helm.sh install` builds into the tools cache (`make
//! test` runs it), or `AUDITLOG_HELM`. Helm's own config and cache go under the test's
//! temporary directory, so the tests never touch the user's Helm setup.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_norway::Value;

/// The chart, relative to the repository.
pub const CHART: &str = "deploy/helm/auditlog";
/// The release and namespace the tests render: with the release named like the chart, the
/// objects get the plain manifests' names (auditlog-ingester, auditlog-api, ...).
pub const RELEASE: &str = "auditlog";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("AUDITLOG_HELM") {
        return PathBuf::from(path);
    }
    let script = repo().join("deploy/local/helm.sh");
    let output = Command::new(&script)
        .arg("path")
        .output()
        .unwrap_or_else(|error| panic!("running {}: {error}", script.display()));
    let path = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    assert!(
        path.is_file(),
        "no Helm at {}: run deploy/local/helm.sh install (make test does)",
        path.display()
    );
    path
}

/// Runs Helm in the repository with `args`.
pub fn helm(args: &[&str]) -> Output {
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helm-home");
    Command::new(binary())
        .args(args)
        .current_dir(repo())
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .unwrap_or_else(|error| panic!("running helm {args:?}: {error}"))
}

/// `helm template` of the chart with `extra` arguments (e.g. `--set`), or its error text.
pub fn try_template(extra: &[&str]) -> Result<String, String> {
    let mut args = vec!["template", RELEASE, CHART, "--namespace", RELEASE];
    args.extend_from_slice(extra);
    let output = helm(&args);
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).expect("helm template prints UTF-8"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// `helm template` of the chart with `extra` arguments; fails the test if Helm refuses.
pub fn template(extra: &[&str]) -> String {
    try_template(extra)
        .unwrap_or_else(|error| panic!("helm template {CHART} {extra:?} failed:\n{error}"))
}

/// Every object Helm rendered, with the chart file it came from (Helm's `# Source:` line).
pub fn objects(rendered: &str) -> Vec<(String, Value)> {
    let mut objects = Vec::new();
    let mut chunks = vec![String::new()];
    for line in rendered.lines() {
        if line == "---" {
            chunks.push(String::new());
        } else if let Some(chunk) = chunks.last_mut() {
            chunk.push_str(line);
            chunk.push('\n');
        }
    }
    for chunk in chunks {
        let source = chunk
            .lines()
            .find_map(|line| line.strip_prefix("# Source: "))
            .map(|source| {
                let within = source.split_once('/').map_or(source, |(_, rest)| rest);
                format!("{CHART}/{within}")
            })
            .unwrap_or_else(|| CHART.to_owned());
        let value: Value = serde_norway::from_str(&chunk)
            .unwrap_or_else(|error| panic!("{source}: Helm rendered invalid YAML: {error}"));
        if value.get("kind").is_some() {
            objects.push((source, value));
        }
    }
    objects
}
