//! The router without a socket or ClickHouse: every answer here is decided before a
//! query would run (the client points at a closed port, so a query would be a 500).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;
use crate::ConfiguredToken;
use crate::api_error::MAX_VALIDATIONS;
use crate::auth::token_sha256_hex;
use crate::http::{HttpLimits, with_limits};

fn app() -> Router {
    let tokens = [
        ("ann", "ann-secret", "auditor"),
        ("mel", "mel-secret", "member"),
    ]
    .map(|(name, secret, role)| ConfiguredToken {
        name: name.to_owned(),
        sha256: token_sha256_hex(secret),
        role: role.to_owned(),
        organizations: Vec::new(),
    });
    let client = clickhouse::Client::default().with_url("http://127.0.0.1:9");
    router(ApiState {
        runner: Arc::new(QueryRunner::try_new(client, "audit", "audit_logs").unwrap()),
        auth: Arc::new(Authenticator::try_new(&tokens).unwrap()),
        evidence: Arc::new(unreachable_evidence()),
    })
}

fn unreachable_evidence() -> Evidence {
    Evidence::new(
        &auditlog_store::ClickHouseConfig {
            url: "http://127.0.0.1:9".into(),
            database: "audit".into(),
            table: "audit_logs".into(),
            user: "default".into(),
            password: String::new(),
            cluster: false,
        },
        "audit-events",
    )
}

#[tokio::test]
async fn a_proof_needs_a_token_and_a_uuid() {
    let (status, _) = get(
        "/api/v2/audit/0190a1b2-0000-7000-8000-000000000011/proof",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = get("/api/v2/audit/not-a-uuid/proof", Some("ann-secret")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["detail"], "The event id is not a UUID.");
}

async fn get(uri: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = Request::get(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn no_token_is_401_and_a_wrong_one_too() {
    for uri in [
        "/api/v2/audit",
        "/api/v2/audit/export",
        "/api/v2/audit/histogram",
        "/api/v2/audit/suggest",
    ] {
        let (status, body) = get(uri, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body["message"].as_str().unwrap().contains("signed out"));
        let (status, _) = get(uri, Some("guess")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn roles_other_than_auditors_are_403() {
    let (status, body) = get("/api/v2/audit", Some("mel-secret")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["message"], "Forbidden.");
}

#[tokio::test]
async fn bad_paging_gets_coders_body() {
    let (status, body) = get(
        "/api/v2/audit?limit=abc&offset=-1&q=action:nope",
        Some("ann-secret"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({
            "message": "Query parameters have invalid values.",
            "validations": [
                {"field": "limit", "detail": "Query param \"limit\" must be a valid 32-bit positive integer: strconv.ParseInt: parsing \"abc\": invalid syntax"},
                {"field": "offset", "detail": "Query param \"offset\" must be a valid 32-bit positive integer: value is negative"}
            ]
        })
    );
}

#[tokio::test]
async fn bad_queries_get_coders_body() {
    let (status, body) = get(
        "/api/v2/audit?q=action%3Anope+foo%3Abar+resource_id%3Ax",
        Some("ann-secret"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({
            "message": "Invalid audit search query.",
            "validations": [
                {"field": "resource_id", "detail": "Query param \"resource_id\" must be a valid uuid"},
                {"field": "action", "detail": "Query param \"action\" has invalid value: \"nope\" is not a valid value"},
                {"field": "foo", "detail": "\"foo\" is not a valid query param"}
            ]
        })
    );
    let (status, body) = get("/api/v2/audit/export?q=username%3A", Some("ann-secret")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["validations"][0]["field"], "q");
}

#[tokio::test]
async fn the_page_endpoints_check_their_parameters_before_any_query() {
    let (status, body) = get("/api/v2/audit/histogram?q=action:nope", Some("ann-secret")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "Invalid audit search query.");
    let (status, body) = get("/api/v2/audit/suggest?key=date_from", Some("ann-secret")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["validations"][0]["detail"],
        "Query param \"key\" has invalid value: \"date_from\" has no suggestions"
    );
    // Keys and enum values need no ClickHouse (which this router cannot reach).
    let (status, body) = get(
        "/api/v2/audit/suggest?key=action&prefix=LO",
        Some("ann-secret"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"key": "action", "values": ["login", "logout"]})
    );
    let (status, body) = get("/api/v2/audit/suggest?prefix=da", Some("ann-secret")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["values"], json!(["date_from", "date_to"]));
    let (status, _) = get("/api/v2/audit/histogram", Some("mel-secret")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn export_formats_are_checked() {
    let (status, body) = get("/api/v2/audit/export?format=xml", Some("ann-secret")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["validations"][0]["detail"],
        "Query param \"format\" has invalid value: \"xml\" is not a valid value (ndjson, csv)"
    );
}

#[tokio::test]
async fn a_repeated_q_or_format_is_a_400_as_a_repeated_limit_is() {
    for uri in [
        "/api/v2/audit?q=action:create&q=foo:bar",
        "/api/v2/audit/export?q=action:create&q=foo:bar",
        "/api/v2/audit/export?format=csv&format=ndjson",
    ] {
        let (status, body) = get(uri, Some("ann-secret")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(body["message"], "Query parameters have invalid values.");
        let detail = body["validations"][0]["detail"].as_str().unwrap();
        assert!(
            detail.ends_with("provided more than once, found 2 times. Only provide 1 instance of this query param."),
            "{uri}: {detail}"
        );
    }
}

#[tokio::test]
async fn a_filter_over_the_limit_is_a_400_that_says_so() {
    // `+` is a space once decoded, so the decoded filter is as long as the text.
    let long = format!("action:create+resource_id:{}", "x".repeat(MAX_FILTER_BYTES));
    for route in ["/api/v2/audit", "/api/v2/audit/export"] {
        let (status, body) = get(&format!("{route}?q={long}"), Some("ann-secret")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["validations"][0]["field"], "q");
        assert_eq!(
            body["validations"][0]["detail"],
            format!(
                "Query param \"q\" is {} bytes long; a filter may be at most 4096 bytes.",
                long.len()
            )
        );
    }
    // At the limit the filter is parsed (and this one rejected for what it says).
    let at_limit = format!("resource_id:{}", "x".repeat(MAX_FILTER_BYTES - 12));
    let (_, body) = get(&format!("/api/v2/audit?q={at_limit}"), Some("ann-secret")).await;
    assert_eq!(body["message"], "Invalid audit search query.");
}

#[tokio::test]
async fn the_validation_list_is_capped_with_a_summary() {
    let unknown: Vec<String> = (0..500).map(|key| format!("k{key}:x")).collect();
    let query = unknown.join("+");
    assert!(query.len() <= MAX_FILTER_BYTES);
    let (status, body) = get(&format!("/api/v2/audit?q={query}"), Some("ann-secret")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let validations = body["validations"].as_array().unwrap();
    assert_eq!(validations.len(), MAX_VALIDATIONS + 1);
    assert_eq!(validations[0]["field"], "k0");
    assert_eq!(
        validations[MAX_VALIDATIONS],
        json!({"field": "", "detail": "and 480 more"})
    );
}

#[tokio::test]
async fn every_client_error_has_the_json_shape() {
    let limits = HttpLimits::default();
    let app = with_limits(app(), limits);
    let long_line = format!(
        "/api/v2/audit?q={}",
        "a".repeat(limits.max_request_line_bytes)
    );
    let cases = [
        (Request::get(long_line.as_str()), StatusCode::URI_TOO_LONG),
        (
            Request::get("/api/v2/audit").header("x-padding", "p".repeat(limits.max_header_bytes)),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ),
        (Request::get("/api/v2/nope"), StatusCode::NOT_FOUND),
        (
            Request::post("/api/v2/audit"),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (Request::get("/api/v2/audit?q=%ff"), StatusCode::BAD_REQUEST),
    ];
    for (request, expected) in cases {
        let request = request
            .header("authorization", "Bearer ann-secret")
            .body(Body::empty())
            .unwrap();
        let uri = request.uri().to_string();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), expected, "{uri:.80}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(body["message"].as_str().unwrap().ends_with('.'), "{body}");
    }
}

#[tokio::test]
async fn a_query_that_outlives_its_limit_is_a_clear_503() {
    // A "ClickHouse" that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let client = clickhouse::Client::default().with_url(format!("http://{address}"));
    let runner = QueryRunner::try_new(client, "audit", "audit_logs")
        .unwrap()
        .with_query_timeout(std::time::Duration::from_secs(1));
    let app = router(ApiState {
        runner: Arc::new(runner),
        auth: Arc::new(Authenticator::try_new(&[]).unwrap()),
        evidence: Arc::new(unreachable_evidence()),
    });
    let started = Instant::now();
    let response = app
        .oneshot(Request::get("/api/v2/audit").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["message"], "The audit log query timed out.");
    assert!(
        body["detail"].as_str().unwrap().contains("1s limit"),
        "{body}"
    );
}

#[tokio::test]
async fn an_unreachable_clickhouse_is_a_generic_500() {
    let (status, body) = get("/api/v2/audit", Some("ann-secret")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.get("detail").is_none(), "{body}");
}
