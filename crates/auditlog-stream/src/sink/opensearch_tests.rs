use super::*;
use crate::format::Format;
use crate::sink::Record;
use uuid::Uuid;

fn config(text: &str) -> Result<OpenSearchConfig, StreamError> {
    OpenSearchConfig::from_settings("search", toml::from_str(text).unwrap())
}

#[test]
fn events_go_to_their_months_index_under_their_id() {
    let config = config(r#"url = "http://127.0.0.1:9200/""#).unwrap();
    let id = Uuid::from_u128(7);
    let batch = Batch {
        topic: "t".into(),
        partition: 0,
        first_offset: 0,
        last_offset: 1,
        records: vec![Record {
            offset: 1,
            id,
            time: time::macros::datetime!(2026-01-31 23:59:59 -02:00),
            json: br#"{"id":"x"}"#.to_vec(),
        }],
        filtered: 1,
        malformed: 0,
        format: Format::Coder,
    };
    let body = String::from_utf8(bulk_body(&config, &batch)).unwrap();
    let lines: Vec<&str> = body.lines().collect();
    let action: Value = serde_json::from_str(lines[0]).unwrap();
    // 23:59 at -02:00 is February in UTC.
    assert_eq!(action["index"]["_index"], "audit-events-2026.02");
    assert_eq!(action["index"]["_id"], id.to_string());
    assert_eq!(lines[1], r#"{"id":"x"}"#);
    assert_eq!(
        config.template(&Map::new())["index_patterns"][0],
        "audit-events-*"
    );
}

fn batch_of(ids: &[u128]) -> Batch {
    Batch {
        topic: "t".into(),
        partition: 0,
        first_offset: 10,
        last_offset: 10 + ids.len() as i64 - 1,
        records: ids
            .iter()
            .enumerate()
            .map(|(index, id)| Record {
                offset: 10 + index as i64,
                id: Uuid::from_u128(*id),
                time: time::OffsetDateTime::UNIX_EPOCH,
                json: b"{}".to_vec(),
            })
            .collect(),
        filtered: 0,
        malformed: 0,
        format: Format::Coder,
    }
}

fn item(id: u128, status: u16, kind: &str) -> String {
    let id = Uuid::from_u128(id);
    if status < 300 {
        format!(r#"{{"index":{{"_id":"{id}","status":{status}}}}}"#)
    } else {
        format!(
            r#"{{"index":{{"_id":"{id}","status":{status},"error":{{"type":"{kind}","reason":"bad"}}}}}}"#
        )
    }
}

fn answer(items: &[String]) -> Vec<u8> {
    format!(r#"{{"errors":true,"items":[{}]}}"#, items.join(",")).into_bytes()
}

#[test]
fn failed_items_are_never_taken_for_success() {
    let batch = batch_of(&[1, 2, 3]);
    assert!(check_bulk_answer(&batch, br#"{"errors":false,"items":[]}"#).is_ok());
    let busy = answer(&[
        item(1, 201, ""),
        item(2, 429, "es_rejected_execution_exception"),
        item(3, 400, "mapper_parsing_exception"),
    ]);
    let error = check_bulk_answer(&batch, &busy).unwrap_err();
    assert_eq!(error.class, crate::FailureClass::Transient);
    assert!(
        error
            .message
            .contains(&format!("{} 429", Uuid::from_u128(2))),
        "{error}"
    );
    assert!(error.rejected.is_empty());
}

#[test]
fn an_item_refused_beside_indexed_ones_is_permanent_and_named_by_offset() {
    let batch = batch_of(&[1, 2, 3]);
    let mixed = answer(&[
        item(1, 201, ""),
        item(2, 400, "mapper_parsing_exception"),
        item(3, 200, ""),
    ]);
    let error = check_bulk_answer(&batch, &mixed).unwrap_err();
    assert_eq!(error.class, crate::FailureClass::Permanent);
    assert_eq!(error.rejected.len(), 1);
    assert_eq!(error.rejected[0].offset, 11);
    assert_eq!(error.rejected[0].kind, "mapper_parsing_exception");
    assert!(
        error.rejected[0]
            .reason
            .contains("400 mapper_parsing_exception: bad"),
        "{error:?}"
    );
}

#[test]
fn an_index_missing_under_some_items_is_retried_not_dead_lettered() {
    // Seen when an index is deleted while a bulk request runs: its items answer 404
    // beside items of other indices that were taken.
    let batch = batch_of(&[1, 2]);
    let gone = answer(&[item(1, 201, ""), item(2, 404, "index_not_found_exception")]);
    let error = check_bulk_answer(&batch, &gone).unwrap_err();
    assert_eq!(error.class, crate::FailureClass::Transient);
    assert!(error.rejected.is_empty(), "{error:?}");
    assert!(
        error.message.contains("404 index_not_found_exception"),
        "{error}"
    );
}

#[test]
fn every_item_refused_is_left_to_narrowing_down_with_each_items_reason() {
    let batch = batch_of(&[1, 2]);
    let refused = answer(&[
        item(1, 400, "mapper_parsing_exception"),
        item(2, 400, "mapper_parsing_exception"),
    ]);
    let error = check_bulk_answer(&batch, &refused).unwrap_err();
    assert_eq!(error.class, crate::FailureClass::Invalid);
    let offsets: Vec<i64> = error.rejected.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, [10, 11]);
    assert_eq!(error.rejected[1].kind, "mapper_parsing_exception");
    assert!(
        error.message.contains("400 mapper_parsing_exception: bad"),
        "{error}"
    );
}

#[test]
fn prefixes_and_credentials_are_checked() {
    assert!(config("url = \"http://h:9200\"\nindex_prefix = \"Audit\"").is_err());
    let error = config("url = \"http://h:9200\"\nusername = \"u\"").unwrap_err();
    assert!(error.to_string().contains("together"), "{error}");
    let config = config("url = \"http://h:9200\"\nusername = \"u\"\npassword = \"p\"").unwrap();
    assert!(!format!("{config:?}").contains("dTpw"));
}

/// The value at a dotted path, looking into arrays (OCSF's `resources`).
fn values_at<'a>(value: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut nodes = vec![value];
    for name in path.split('.') {
        nodes = nodes
            .into_iter()
            .flat_map(|node| match node {
                Value::Array(items) => items.iter().collect(),
                other => vec![other],
            })
            .filter_map(|node| node.get(name))
            .collect();
    }
    nodes
}

#[test]
fn the_template_indexes_fields_the_formats_write_and_only_those() {
    let config = config(r#"url = "http://127.0.0.1:9200/""#).unwrap();
    let template = config.template(&Map::new());
    let mappings = &template["template"]["mappings"];
    assert_eq!(mappings["dynamic"], false, "{mappings}");
    let documents: Vec<Value> = auditlog_event::testing::sample_events()
        .iter()
        .flat_map(|event| [Format::Coder, Format::Ocsf].map(|format| format.to_json(event)))
        .collect();
    for (path, field) in SEARCHABLE {
        let (parents, leaf) = path.rsplit_once('.').unwrap_or(("", path));
        let mapped = parents.split('.').filter(|name| !name.is_empty()).fold(
            &mappings["properties"],
            |node, name| &node[name]["properties"],
        )[leaf]
            .clone();
        assert_eq!(mapped, field.mapping(), "{path}");
        // A name neither format writes would index nothing: the list has drifted.
        let written: Vec<&Value> = documents
            .iter()
            .flat_map(|document| values_at(document, path))
            .collect();
        assert!(!written.is_empty(), "{path} is in no document");
        for value in written {
            let fits = match field {
                FieldType::Keyword | FieldType::Text | FieldType::Ip => value.is_string(),
                FieldType::Date => value.is_string() || value.is_i64(),
                // OCSF writes the status as text, Coder as a number: both parse.
                FieldType::Integer => {
                    value.is_i64()
                        || value
                            .as_str()
                            .is_some_and(|text| text.parse::<i32>().is_ok())
                }
            };
            assert!(fits, "{path}: {value} is not a {field:?}");
        }
    }
}

#[test]
fn the_id_bloom_filter_is_a_default_only_where_the_cluster_knows_it() {
    let root = |distribution: Option<&str>, number: &str| {
        let mut version = json!({ "number": number });
        if let Some(distribution) = distribution {
            version["distribution"] = json!(distribution);
        }
        json!({ "name": "node", "version": version })
    };
    let bloom = |root: Value| default_index_settings(&root).get(ID_BLOOM_FILTER).cloned();
    assert_eq!(bloom(root(Some("opensearch"), "2.19.6")), Some(json!(true)));
    assert_eq!(bloom(root(Some("opensearch"), "2.13.0")), Some(json!(true)));
    assert_eq!(bloom(root(Some("opensearch"), "3.1.0")), Some(json!(true)));
    assert_eq!(bloom(root(Some("opensearch"), "2.12.0")), None);
    assert_eq!(bloom(root(Some("opensearch"), "1.3.20")), None);
    // Elasticsearch says no distribution, and would refuse a setting it does not know.
    assert_eq!(bloom(root(None, "8.15.0")), None);
    assert_eq!(bloom(Value::Null), None);
}

#[test]
fn a_sinks_index_settings_go_into_the_template_over_the_defaults() {
    let config = config(
        r#"
        url = "http://127.0.0.1:9200"
        [index_settings]
        number_of_shards = 3
        "index.refresh_interval" = "5s"
        optimize_doc_id_lookup.fuzzy_set.enabled = false
        translog = { durability = "request" }
        "#,
    )
    .unwrap();
    let defaults = default_index_settings(
        &json!({ "version": { "distribution": "opensearch", "number": "2.19.6" } }),
    );
    let template = config.template(&defaults);
    assert_eq!(
        template["template"]["settings"],
        json!({
            "index.number_of_shards": 3,
            "index.refresh_interval": "5s",
            "index.optimize_doc_id_lookup.fuzzy_set.enabled": false,
            "index.translog.durability": "request",
        })
    );
    // No settings at all: the template leaves them to the cluster.
    let plain = self::config(r#"url = "http://127.0.0.1:9200""#).unwrap();
    assert!(
        plain.template(&Map::new())["template"]
            .get("settings")
            .is_none()
    );
    assert_eq!(
        plain.template(&defaults)["template"]["settings"],
        json!({ (ID_BLOOM_FILTER): true })
    );

    let error = self::config(
        r#"
        url = "http://127.0.0.1:9200"
        index_settings = { "routing.allocation.include._name" = ["a", "b"] }
        "#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("index.routing.allocation.include._name: give a string"),
        "{error}"
    );
}
