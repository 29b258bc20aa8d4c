//! The Helm chart (`deploy/helm/auditlog`), checked with the real Helm.
//!
//! `helm lint --strict` must pass, and the chart must render what operators rely on under
//! each supported way of configuring it: ingesters as a StatefulSet with static membership
//! and a disruption budget, `migrate` as a hook that runs before anything it migrates for,
//! lag-based scaling by an HPA or by KEDA, and secrets from values or from an existing
//! Secret. That the rendered objects agree with the binary (flags, variables, ports, config
//! keys) is checked in `deploy_manifests.rs`, which runs its Kubernetes checks on the
//! chart's default rendering as on the plain manifests.

use std::collections::BTreeSet;
use std::path::Path;

use serde_norway::Value;

#[path = "support/helm.rs"]
mod helm;

/// The variants rendered and linted besides the defaults.
const VARIANTS: &[&[&str]] = &[
    &["--set", "autoscaling.mode=keda"],
    &["--set", "autoscaling.enabled=false"],
    &["--set", "secrets.existingSecret=auditlog-prod"],
    &[
        "--set",
        "ingester.staticMembership=false",
        "--set",
        "api.opsPort=0",
    ],
    &[
        "--set",
        "clickhouse.cluster=audit_cluster",
        "--set",
        "migrate.enabled=false",
    ],
];

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{relative}: {error}"))
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, key| value.get(*key))
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

fn find<'a>(objects: &'a [(String, Value)], kind: &str, name: &str) -> Option<&'a Value> {
    objects
        .iter()
        .find(|(_, object)| {
            str_at(object, &["kind"]) == Some(kind)
                && str_at(object, &["metadata", "name"]) == Some(name)
        })
        .map(|(_, object)| object)
}

fn get<'a>(objects: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    find(objects, kind, name).unwrap_or_else(|| panic!("the chart renders no {kind} {name}"))
}

fn containers(object: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|key| at(object, &["spec", "template", "spec", key]))
        .filter_map(Value::as_sequence)
        .flatten()
        .collect()
}

fn env_of<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container
        .get("env")
        .and_then(Value::as_sequence)?
        .iter()
        .find(|item| str_at(item, &["name"]) == Some(name))
}

fn hooks(object: &Value) -> BTreeSet<&str> {
    str_at(object, &["metadata", "annotations", "helm.sh/hook"])
        .map(|hooks| hooks.split(',').map(str::trim).collect())
        .unwrap_or_default()
}

fn hook_weight(object: &Value) -> i64 {
    str_at(object, &["metadata", "annotations", "helm.sh/hook-weight"])
        .and_then(|weight| weight.parse().ok())
        .unwrap_or(0)
}

/// Every Secret some container reads, by name.
fn secrets_read(objects: &[(String, Value)]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (_, object) in objects {
        for container in containers(object) {
            for item in container
                .get("env")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                if let Some(name) = str_at(item, &["valueFrom", "secretKeyRef", "name"]) {
                    names.insert(name.to_owned());
                }
            }
        }
        for volume in at(object, &["spec", "template", "spec", "volumes"])
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            if let Some(name) = str_at(volume, &["secret", "secretName"]) {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

#[test]
fn helm_lint_strict_passes_with_every_variant() {
    let mut failures = Vec::new();
    for extra in std::iter::once(&[][..]).chain(VARIANTS.iter().copied()) {
        let mut args = vec!["lint", "--strict", helm::CHART];
        args.extend_from_slice(extra);
        let output = helm::helm(&args);
        if !output.status.success() {
            failures.push(format!(
                "helm {args:?}:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_ingesters_are_a_statefulset_with_static_membership_and_a_budget() {
    let objects = helm::objects(&helm::template(&[]));
    let statefulset = get(&objects, "StatefulSet", "auditlog-ingester");
    let ingester = containers(statefulset)
        .into_iter()
        .find(|container| str_at(container, &["name"]) == Some("ingester"))
        .expect("the ingester container");
    assert_eq!(
        env_of(ingester, "AUDITLOG_KAFKA_INSTANCE_ID")
            .and_then(|item| str_at(item, &["valueFrom", "fieldRef", "fieldPath"])),
        Some("metadata.name"),
        "group.instance.id must be the pod name"
    );
    let args: Vec<&str> = ingester
        .get("args")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        args.windows(2)
            .any(|pair| pair == ["--kafka-property", "session.timeout.ms=60000"]),
        "a static member's session must outlast a restart: {args:?}"
    );
    assert_eq!(
        str_at(statefulset, &["spec", "podManagementPolicy"]),
        Some("Parallel")
    );
    // The autoscaler owns the count: an upgrade must not reset it.
    assert!(at(statefulset, &["spec", "replicas"]).is_none());
    let service = get(&objects, "Service", "auditlog-ingester");
    assert_eq!(str_at(service, &["spec", "clusterIP"]), Some("None"));
    assert_eq!(
        str_at(statefulset, &["spec", "serviceName"]),
        Some("auditlog-ingester")
    );
    let budget = get(&objects, "PodDisruptionBudget", "auditlog-ingester");
    assert_eq!(
        at(budget, &["spec", "selector", "matchLabels"]),
        at(statefulset, &["spec", "selector", "matchLabels"])
    );

    let hpa = get(&objects, "HorizontalPodAutoscaler", "auditlog-ingester");
    assert_eq!(
        str_at(hpa, &["spec", "scaleTargetRef", "kind"]),
        Some("StatefulSet")
    );

    // Without static membership (dynamic members) the pod name is not given to Kafka.
    let dynamic = helm::objects(&helm::template(&[
        "--set",
        "ingester.staticMembership=false",
    ]));
    let statefulset = get(&dynamic, "StatefulSet", "auditlog-ingester");
    assert!(
        containers(statefulset).iter().all(|container| env_of(
            container,
            "AUDITLOG_KAFKA_INSTANCE_ID"
        )
        .is_none())
    );
    // Without autoscaling the chart sets the replicas itself and renders no autoscaler.
    let fixed = helm::objects(&helm::template(&[
        "--set",
        "autoscaling.enabled=false",
        "--set",
        "ingester.replicas=3",
    ]));
    let statefulset = get(&fixed, "StatefulSet", "auditlog-ingester");
    assert_eq!(
        at(statefulset, &["spec", "replicas"]).and_then(Value::as_u64),
        Some(3)
    );
    assert!(
        fixed
            .iter()
            .all(|(_, object)| str_at(object, &["kind"]) != Some("HorizontalPodAutoscaler"))
    );
}

#[test]
fn keda_scales_the_statefulset_on_the_groups_lag() {
    let objects = helm::objects(&helm::template(&["--set", "autoscaling.mode=keda"]));
    let scaled = get(&objects, "ScaledObject", "auditlog-ingester");
    assert_eq!(
        str_at(scaled, &["spec", "scaleTargetRef", "kind"]),
        Some("StatefulSet")
    );
    assert_eq!(
        str_at(scaled, &["spec", "scaleTargetRef", "name"]),
        Some("auditlog-ingester")
    );
    let config: toml::Table = toml::from_str(
        str_at(
            get(&objects, "ConfigMap", "auditlog-config"),
            &["data", "auditlog.toml"],
        )
        .expect("auditlog.toml"),
    )
    .expect("the ConfigMap's TOML");
    let trigger = at(scaled, &["spec", "triggers"])
        .and_then(Value::as_sequence)
        .and_then(|triggers| triggers.first())
        .expect("a trigger");
    assert_eq!(str_at(trigger, &["type"]), Some("kafka"));
    for (key, config_key) in [
        ("bootstrapServers", "brokers"),
        ("consumerGroup", "group"),
        ("topic", "topic"),
    ] {
        assert_eq!(
            str_at(trigger, &["metadata", key]),
            config["kafka"][config_key].as_str(),
            "the scaler's {key} is not the ingesters' kafka.{config_key}"
        );
    }
    assert_eq!(
        str_at(trigger, &["metadata", "allowIdleConsumers"]),
        Some("false")
    );
    assert!(
        objects
            .iter()
            .all(|(_, object)| str_at(object, &["kind"]) != Some("HorizontalPodAutoscaler")),
        "KEDA makes the HPA itself; a second one would fight it"
    );
    let docs = read("docs/operations.md");
    assert!(
        docs.contains("autoscaling.mode=keda"),
        "docs/operations.md does not document the chart's KEDA mode"
    );
}

#[test]
fn migrate_runs_as_a_hook_before_install_and_upgrade_with_what_it_needs() {
    let objects = helm::objects(&helm::template(&[]));
    let job = get(&objects, "Job", "auditlog-migrate");
    assert_eq!(
        hooks(job),
        BTreeSet::from(["pre-install", "pre-upgrade"]),
        "the migrate Job must run before the ingesters and API are installed or upgraded"
    );
    // A pre-install hook runs before the release's own ConfigMap and Secret exist: whatever
    // the Job mounts or reads must be a hook of the same phases, made before it.
    let migrate = containers(job)
        .into_iter()
        .find(|container| str_at(container, &["name"]) == Some("migrate"))
        .expect("the migrate container");
    let secret = env_of(migrate, "AUDITLOG_CLICKHOUSE_PASSWORD")
        .and_then(|item| str_at(item, &["valueFrom", "secretKeyRef", "name"]))
        .expect("the Job reads the ClickHouse password from a Secret");
    let config = at(job, &["spec", "template", "spec", "volumes"])
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .find_map(|volume| str_at(volume, &["configMap", "name"]))
        .expect("the Job mounts a ConfigMap");
    for (kind, name) in [("Secret", secret), ("ConfigMap", config)] {
        let needed = get(&objects, kind, name);
        assert_eq!(
            hooks(needed),
            hooks(job),
            "{kind} {name}: not made in the migrate Job's hook phases"
        );
        assert!(
            hook_weight(needed) < hook_weight(job),
            "{kind} {name}: not made before the migrate Job"
        );
    }
    assert_eq!(
        str_at(
            get(&objects, "ConfigMap", config),
            &["data", "auditlog.toml"]
        ),
        str_at(
            get(&objects, "ConfigMap", "auditlog-config"),
            &["data", "auditlog.toml"]
        ),
        "the migrate hook's config differs from the pods'"
    );
    // With the cluster set, migrate (from the config) makes the cluster's tables.
    let clustered = helm::objects(&helm::template(&[
        "--set",
        "clickhouse.cluster=audit_cluster",
    ]));
    let toml = str_at(
        get(&clustered, "ConfigMap", "auditlog-migrate"),
        &["data", "auditlog.toml"],
    )
    .expect("auditlog.toml");
    assert!(toml.contains("cluster = \"audit_cluster\""), "{toml}");
}

#[test]
fn an_existing_secret_replaces_the_charts_own() {
    let objects = helm::objects(&helm::template(&[
        "--set",
        "secrets.existingSecret=auditlog-prod",
    ]));
    assert!(
        objects
            .iter()
            .all(|(_, object)| str_at(object, &["kind"]) != Some("Secret")),
        "with secrets.existingSecret the chart must not make a Secret"
    );
    assert_eq!(
        secrets_read(&objects),
        BTreeSet::from(["auditlog-prod".to_owned()])
    );
    // And by default every Secret read is one the chart makes.
    let objects = helm::objects(&helm::template(&[]));
    for name in secrets_read(&objects) {
        assert!(
            find(&objects, "Secret", &name).is_some(),
            "a container reads Secret {name}, which the chart does not make"
        );
    }
}

#[test]
fn the_api_is_probed_and_scraped_on_its_ops_listener() {
    let objects = helm::objects(&helm::template(&[]));
    let api = get(&objects, "Deployment", "auditlog-api");
    let container = containers(api)
        .into_iter()
        .find(|container| str_at(container, &["name"]) == Some("api"))
        .expect("the api container");
    assert_eq!(
        env_of(container, "AUDITLOG_API_OPS_LISTEN").and_then(|item| str_at(item, &["value"])),
        Some("0.0.0.0:8081")
    );
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(
            str_at(container, &[probe, "httpGet", "port"]),
            Some("ops"),
            "{probe}"
        );
    }
    // Without it, probes fall back to the API's own port.
    let objects = helm::objects(&helm::template(&["--set", "api.opsPort=0"]));
    let api = get(&objects, "Deployment", "auditlog-api");
    let container = containers(api)
        .into_iter()
        .find(|container| str_at(container, &["name"]) == Some("api"))
        .expect("the api container");
    assert!(env_of(container, "AUDITLOG_API_OPS_LISTEN").is_none());
    assert_eq!(
        str_at(container, &["readinessProbe", "httpGet", "port"]),
        Some("http")
    );
}

#[test]
fn values_that_could_only_fail_in_the_cluster_are_refused() {
    for (extra, why) in [
        (
            &["--set", "ingester.terminationGracePeriodSeconds=30"][..],
            "terminationGracePeriodSeconds",
        ),
        (&["--set", "autoscaling.minReplicas=7"][..], "minReplicas"),
        (
            &["--set", "autoscaling.maxReplicas=7"][..],
            "kafka.partitions",
        ),
        (&["--set", "autoscaling.mode=cpu"][..], "autoscaling.mode"),
        (&["--set", "api.tokens=null"][..], "api.tokens"),
    ] {
        match helm::try_template(extra) {
            Ok(_) => panic!("helm template {extra:?} rendered; it should refuse ({why})"),
            Err(error) => assert!(error.contains(why), "{extra:?}: {error}"),
        }
    }
}

#[test]
fn the_chart_deploys_this_release_and_is_documented() {
    let chart: Value =
        serde_norway::from_str(&read(&format!("{}/Chart.yaml", helm::CHART))).expect("Chart.yaml");
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml");
    let version = manifest["workspace"]["package"]["version"]
        .as_str()
        .expect("workspace.package.version");
    assert_eq!(str_at(&chart, &["apiVersion"]), Some("v2"));
    assert_eq!(
        str_at(&chart, &["appVersion"]),
        Some(version),
        "Chart.yaml's appVersion (the image tag) is not the workspace version"
    );
    let docs = read("docs/operations.md");
    for needed in [
        "helm upgrade --install",
        helm::CHART,
        "StatefulSet",
        "existingSecret",
        "deploy/local/helm.sh",
    ] {
        assert!(
            docs.contains(needed),
            "docs/operations.md does not mention {needed}"
        );
    }
    let readme = read("deploy/kubernetes/README.md");
    assert!(
        readme.contains(helm::CHART),
        "deploy/kubernetes/README.md does not point at the chart"
    );
}
