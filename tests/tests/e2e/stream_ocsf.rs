//! The `ocsf` format checked by an independent OCSF implementation: events of every class the
//! format emits go through the real `auditlog stream` to a webhook receiver, and what arrives
//! is validated by `tests/ocsf/validate.py`, which builds each class's JSON Schema from the
//! OCSF schema that the PyPI package ocsf-json-schema ships (no auditlog code, no network) and
//! checks every event against the version it declares with jsonschema.
//!
//! What the test holds the format to:
//! - every delivered event validates: required attributes, types, enumerations, constants,
//!   and nothing the class does not define;
//! - the events cover API Activity, Authentication (logon, logoff, a failed login without a
//!   user) and Account Change, with diffs, additional fields, system actors, site-wide events
//!   and events without an address, and each declares OCSF 1.3.0;
//! - the validator does reject broken events (a missing or mistyped `class_uid`, an activity
//!   the class does not have, an attribute it does not define), so its silence means something.

use auditlog_e2e::stream::publish;
use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use auditlog_event::testing::{sample_event_for, sample_events};
use auditlog_event::{Action, AuditEvent, Diff, DiffEntry, ResourceType};
use auditlog_testkit::{
    AuditlogCommand, WebhookReceiver, auditlog_binary, create_topic, free_port, kafka_brokers,
    log_dir, repo_root, tools_dir, unique_name,
};
use auditlog_traffic::TrafficGenerator;
use serde_json::{Value, json};
use uuid::Uuid;

const TIMEOUT: Duration = Duration::from_secs(180);
const PARTITIONS: i32 = 3;
const SECRET: &str = "a webhook secret for the ocsf test";
const TRAFFIC_EVENTS: u64 = 1_500;

/// The OCSF version the format declares (`auditlog_stream::OCSF_VERSION`), as a reader would
/// expect it; the validator takes the version from each event.
const OCSF_VERSION: &str = "1.3.0";

/// Realistic traffic (every resource type and action Coder records shows up) and, beside
/// it, the cases the classes treat specially, each with an id of its own.
fn events_of_every_class() -> Vec<AuditEvent> {
    let end = time::OffsetDateTime::now_utc();
    let mut events: Vec<AuditEvent> = TrafficGenerator::new(25)
        .with_time_span(end - time::Duration::days(1), end, TRAFFIC_EVENTS)
        .collect();
    let mut special = sample_events();
    // Every valid pair of resource type and action, succeeded and refused.
    for resource_type in ResourceType::ALL {
        for action in Action::ALL {
            for status in [200, 403] {
                special.push(sample_event_for(
                    resource_type.clone(),
                    action.clone(),
                    status,
                ));
            }
        }
    }
    // A failed login by a name that matches no user (Coder records no actor), a logout, a
    // system action with no address, an IPv6 client, a password reset.
    let mut failed_login = sample_event_for(ResourceType::ApiKey, Action::Login, 401);
    failed_login.user = None;
    failed_login.resource_target = "mallory".into();
    failed_login.diff = Diff::new();
    special.push(failed_login);
    special.push(sample_event_for(ResourceType::ApiKey, Action::Logout, 200));
    let mut system = sample_event_for(ResourceType::Workspace, Action::Delete, 200);
    system.user = None;
    system.ip = None;
    system.user_agent = String::new();
    special.push(system);
    let mut ipv6 = sample_event_for(ResourceType::User, Action::Write, 200);
    ipv6.ip = Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)));
    ipv6.organization = None;
    ipv6.diff = [
        (
            "login_type",
            DiffEntry::changed(json!("password"), json!("oidc")),
        ),
        ("hashed_password", DiffEntry::secret()),
    ]
    .into_iter()
    .collect();
    special.push(ipv6);
    let mut reset = sample_event_for(ResourceType::User, Action::RequestPasswordReset, 200);
    reset.ip = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9)));
    special.push(reset);
    for (index, mut event) in special.into_iter().enumerate() {
        if event.validate().is_err() {
            continue; // a pair Coder never records
        }
        event.id = Uuid::now_v7();
        event.request_id = Uuid::from_u128(0x0c5f_0000 + index as u128);
        events.push(event);
    }
    events
}

/// The validator's report on `events` (one JSON object each).
fn validate(events: &[Value]) -> Value {
    let python: PathBuf = tools_dir().join("ocsf-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: `deploy/local/stack.sh install` makes the OCSF validator's environment",
        python.display()
    );
    let mut child = Command::new(python)
        .arg(repo_root().join("tests/ocsf/validate.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the validator runs");
    let mut input = Vec::new();
    for event in events {
        serde_json::to_writer(&mut input, event).expect("json");
        input.push(b'\n');
    }
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("write the events");
    let output = child.wait_with_output().expect("the validator finishes");
    assert!(
        output.status.success(),
        "validator failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the validator's report")
}

fn errors_at(report: &Value, line: u64) -> Vec<String> {
    report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter(|error| error["line"] == line)
        .map(|error| format!("{} {}", error["path"], error["message"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn ocsf_output_validates_against_the_ocsf_schema() {
    let topic = unique_name("stream_ocsf");
    create_topic(&kafka_brokers(), &topic, PARTITIONS).await;
    let events = events_of_every_class();
    publish(&topic, &events).await;
    let sent: BTreeSet<Uuid> = events.iter().map(|event| event.id).collect();

    let webhook = WebhookReceiver::start(SECRET).await;
    let name = format!("ocsf-{topic}");
    let config = log_dir().join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"
[[stream.sinks]]
name = "{name}"
kind = "webhook"
format = "ocsf"
url = "{url}"
secret = "{SECRET}"
batch_events = 500
batch_max_age_ms = 200
"#,
            url = webhook.url()
        ),
    )
    .expect("config file");
    let ops_port = free_port();
    let mut stream = AuditlogCommand::new(auditlog_binary(), "stream_ocsf")
        .args([
            "--config",
            config.to_str().expect("utf-8 path"),
            "--kafka-topic",
            &topic,
            "stream",
            "--until-caught-up",
            "--metrics-listen",
            &format!("127.0.0.1:{ops_port}"),
        ])
        .ops_port(ops_port)
        .spawn();
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = stream.exit_status() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "stream did not catch up; log:\n{}",
            stream.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit {status}; log:\n{}", stream.log());

    let lines = webhook.lines();
    let delivered: BTreeSet<Uuid> = lines
        .iter()
        .filter_map(|line| line.pointer("/metadata/uid")?.as_str()?.parse().ok())
        .collect();
    assert_eq!(delivered, sent, "every event, by metadata.uid");

    // Every class the format emits, with the cases each treats specially.
    let report = validate(&lines);
    assert_eq!(report["events"], json!(lines.len()), "{report}");
    assert_eq!(report["versions"], json!({ OCSF_VERSION: lines.len() }));
    for class in ["6003", "3002", "3001"] {
        assert!(report["classes"][class].as_u64() > Some(0), "{report}");
    }
    let has = |predicate: &dyn Fn(&Value) -> bool| lines.iter().any(predicate);
    assert!(
        has(&|e| e["class_uid"] == 3002 && e["activity_id"] == 2),
        "a logoff"
    );
    assert!(has(&|e| e["class_uid"] == 3002 && e["user"]["type_id"] == 0));
    assert!(has(&|e| e["class_uid"] == 3001 && e["activity_id"] == 4));
    assert!(has(&|e| e["class_uid"] == 6003 && e["activity_id"] == 99));
    assert!(
        has(&|e| e["actor"]["user"]["type_id"] == 3),
        "a system actor"
    );
    assert!(has(&|e| e["src_endpoint"]["ip"].is_null()), "no address");
    assert!(has(&|e| e["unmapped"]["diff"]
        .as_object()
        .is_some_and(|d| !d.is_empty())));
    assert!(has(&|e| {
        e["unmapped"]["additional_fields"]
            .as_object()
            .is_some_and(|fields| !fields.is_empty())
    }));
    let errors = report["errors"].as_array().expect("errors");
    assert!(
        errors.is_empty(),
        "{} errors, the first: {:#}",
        errors.len(),
        json!(errors.iter().take(20).collect::<Vec<_>>())
    );

    // The validator rejects what is not OCSF, so the silence above means something.
    let api = lines
        .iter()
        .find(|line| line["class_uid"] == 6003)
        .expect("an API Activity event");
    let mut broken = Vec::new();
    let mut without_class = api.clone();
    without_class
        .as_object_mut()
        .expect("object")
        .remove("class_uid");
    broken.push(without_class);
    let mut class_as_text = api.clone();
    class_as_text["class_uid"] = json!("6003");
    broken.push(class_as_text);
    let mut unknown_activity = api.clone();
    unknown_activity["activity_id"] = json!(7);
    broken.push(unknown_activity);
    let mut stray_attribute = api.clone();
    stray_attribute["http_response"] = json!({ "code": 200 });
    broken.push(stray_attribute);
    let mut no_actor = api.clone();
    no_actor.as_object_mut().expect("object").remove("actor");
    broken.push(no_actor);
    let report = validate(&broken);
    for line in 1..=broken.len() as u64 {
        assert!(
            !errors_at(&report, line).is_empty(),
            "broken event {line} passed: {report}"
        );
    }
    let named = |line, text: &str| errors_at(&report, line).iter().any(|e| e.contains(text));
    assert!(named(1, "class_uid"), "{report}");
    assert!(named(2, "class_uid"), "{report}");
    assert!(named(3, "activity_id"), "{report}");
    assert!(named(4, "http_response"), "{report}");
    assert!(named(5, "actor"), "{report}");
}
