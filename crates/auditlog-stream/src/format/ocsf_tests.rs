use auditlog_event::testing::{sample_event, sample_events};
use auditlog_event::{Action, ResourceType};
use serde_json::json;

use super::*;

/// The base event's required attributes, present and typed, on every sample.
#[test]
fn every_event_has_the_required_base_attributes_and_the_id_as_uid() {
    for event in sample_events() {
        let value = to_json(&event);
        for key in [
            "activity_id",
            "category_uid",
            "class_uid",
            "severity_id",
            "time",
            "type_uid",
        ] {
            assert!(value[key].is_u64(), "{key} in {value}");
        }
        assert_eq!(
            value["type_uid"].as_u64().unwrap(),
            value["class_uid"].as_u64().unwrap() * 100 + value["activity_id"].as_u64().unwrap()
        );
        assert_eq!(value["metadata"]["uid"], json!(event.id.to_string()));
        assert_eq!(value["metadata"]["version"], json!(OCSF_VERSION));
        assert_eq!(value["metadata"]["product"]["name"], json!("auditlog"));
        assert!(value["actor"]["user"].is_object());
    }
}

#[test]
fn classes_follow_the_action_and_resource() {
    let mut event = sample_event();
    event.resource_type = ResourceType::Workspace;
    event.action = Action::Delete;
    let value = to_json(&event);
    assert_eq!(
        (value["class_uid"].clone(), value["activity_id"].clone()),
        (json!(6003), json!(4))
    );
    assert_eq!(value["api"]["operation"], json!("delete"));
    assert_eq!(
        value["resources"][0]["uid"],
        json!(event.resource_id.to_string())
    );

    event.action = Action::Start;
    let value = to_json(&event);
    assert_eq!(
        (value["activity_id"].clone(), value["activity_name"].clone()),
        (json!(99), json!("start"))
    );

    event.resource_type = ResourceType::ApiKey;
    event.action = Action::Login;
    let value = to_json(&event);
    assert_eq!(
        (value["class_uid"].clone(), value["activity_id"].clone()),
        (json!(3002), json!(1))
    );
    assert_eq!(
        value["user"]["name"],
        json!(event.user.as_ref().unwrap().username)
    );
    assert_eq!(value["type_uid"], json!(300201));
    assert_eq!(value["service"]["name"], json!("coder"));

    event.resource_type = ResourceType::User;
    event.action = Action::Create;
    let value = to_json(&event);
    assert_eq!(
        (value["class_uid"].clone(), value["activity_id"].clone()),
        (json!(3001), json!(1))
    );
    assert_eq!(value["user"]["uid"], json!(event.resource_id.to_string()));
}

#[test]
fn failures_and_system_actors_are_marked() {
    let mut event = sample_event();
    event.status_code = 403;
    event.user = None;
    event.ip = None;
    let value = to_json(&event);
    assert_eq!(value["status_id"], json!(2));
    assert_eq!(value["status_code"], json!("403"));
    assert_eq!(value["actor"]["user"]["type_id"], json!(3));
    assert_eq!(value["src_endpoint"], json!({ "name": "unknown" }));
}

#[test]
fn time_is_milliseconds_and_the_exact_time_is_kept() {
    let event = sample_event();
    let value = to_json(&event);
    assert_eq!(value["time"], json!(1_748_781_296_789_i64));
    assert_eq!(
        value["metadata"]["original_time"],
        json!("2025-06-01T12:34:56.789012Z")
    );
}

#[test]
fn the_written_line_is_the_value() {
    for event in sample_events() {
        let mut line = Vec::new();
        write(&event, &mut line);
        assert!(!line.contains(&b'\n'));
        let written: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(written, to_json(&event));
    }
}
