//! The private OpenSearch node is a real search engine: what the OpenSearch sink will rely on
//! (an index template, the bulk API with explicit ids, searches), checked over its REST API.

use auditlog_testkit::OpenSearchNode;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_bulk_and_search_round_trip() {
    let mut node = OpenSearchNode::start().await;
    let version = node.json("GET", "/", None).await;
    assert_eq!(version["version"]["number"], "2.19.6");

    // A template for monthly indices, as the sink installs one; the index is then created by
    // the first bulk request that names it.
    node.json(
        "PUT",
        "/_index_template/audit",
        Some(&json!({
            "index_patterns": ["audit-*"],
            "template": {
                "settings": { "number_of_shards": 1 },
                "mappings": { "properties": {
                    "id": { "type": "keyword" },
                    "action": { "type": "keyword" },
                    "time": { "type": "date" },
                }},
            },
        })),
    )
    .await;

    // Three actions, two ids: a retried document replaces itself instead of duplicating.
    let mut bulk = String::new();
    for (id, action, time) in [
        ("e1", "create", "2026-12-06T10:00:00Z"),
        ("e2", "delete", "2026-12-06T10:00:01Z"),
        ("e1", "create", "2026-12-06T10:00:00Z"),
    ] {
        bulk.push_str(&json!({ "index": { "_index": "audit-2026.12", "_id": id } }).to_string());
        bulk.push('\n');
        bulk.push_str(&json!({ "id": id, "action": action, "time": time }).to_string());
        bulk.push('\n');
    }
    let response = node
        .request("POST", "/_bulk", Some(bulk.into()))
        .await
        .expect("an answer");
    let answer = response.json();
    assert_eq!(answer["errors"], false, "{answer}");
    assert_eq!(answer["items"].as_array().map(Vec::len), Some(3));

    node.refresh("audit-*").await;
    assert_eq!(node.count("audit-*").await, 2);
    let mapping = node.json("GET", "/audit-2026.12/_mapping", None).await;
    assert_eq!(
        mapping["audit-2026.12"]["mappings"]["properties"]["action"]["type"], "keyword",
        "the template applies to the index the bulk request created"
    );

    let hits = node
        .json(
            "POST",
            "/audit-*/_search",
            Some(&json!({ "query": { "term": { "action": "delete" } } })),
        )
        .await;
    assert_eq!(hits["hits"]["total"]["value"], 1);
    assert_eq!(hits["hits"]["hits"][0]["_id"], "e2");

    // A malformed document is rejected per item, with its reason, not silently dropped.
    let bad = format!(
        "{}\n{}\n",
        json!({ "index": { "_index": "audit-2026.12", "_id": "e3" } }),
        json!({ "id": "e3", "time": "not a date" })
    );
    let rejected = node
        .request("POST", "/_bulk", Some(bad.into()))
        .await
        .expect("an answer")
        .json();
    assert_eq!(rejected["errors"], true);
    assert_eq!(rejected["items"][0]["index"]["status"], 400, "{rejected}");

    // Killed (a destination outage) and resumed: every acknowledged document is still there.
    node.kill();
    assert!(
        node.request("GET", "/", None).await.is_err(),
        "a killed node answers nothing"
    );
    node.resume().await;
    node.json(
        "GET",
        "/_cluster/health/audit-*?wait_for_status=green&timeout=60s",
        None,
    )
    .await;
    assert_eq!(node.count("audit-*").await, 2);
}
