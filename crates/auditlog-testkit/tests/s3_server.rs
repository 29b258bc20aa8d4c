//! The private S3 server is a real, authenticating S3 store: what the S3 sink and
//! `verify --archive` will rely on, checked through the kit's own signer.

use auditlog_testkit::{S3Server, SigV4Credentials, http_request};
use bytes::Bytes;
use hyper::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_requests_round_trip_and_others_are_refused() {
    let mut server = S3Server::start().await;
    let bucket = "audit-archive";
    server.create_bucket(bucket).await;

    // Keys as an archive lays them out: date folders, offsets, a character S3 encodes.
    let first = "prod/2026/12/06/audit-events/p0/00000000-00000099 a.ndjson.gz";
    let second = "prod/2026/12/06/audit-events/p1/00000000-00000049.ndjson.gz";
    server.put_object(bucket, first, b"first".to_vec()).await;
    server.put_object(bucket, second, b"second".to_vec()).await;
    server
        .put_object(bucket, "elsewhere/x", b"x".to_vec())
        .await;
    assert_eq!(
        server.get_object(bucket, first).await.as_deref(),
        Some(&b"first"[..])
    );
    assert_eq!(server.get_object(bucket, "prod/missing").await, None);
    assert_eq!(server.list_keys(bucket, "prod/").await, [first, second]);

    // A retried batch writes the same key again: one object, the latest content.
    server
        .put_object(bucket, first, b"first, again".to_vec())
        .await;
    assert_eq!(
        server.get_object(bucket, first).await.as_deref(),
        Some(&b"first, again"[..])
    );
    assert_eq!(server.list_keys(bucket, "prod/").await.len(), 2);

    // Unsigned, and signed with the wrong secret: both refused, nothing listed.
    let unsigned = http_request(
        "GET",
        server.port(),
        &format!("/{bucket}"),
        &[],
        Bytes::new(),
    )
    .await
    .expect("an answer");
    assert_eq!(
        unsigned.status,
        StatusCode::FORBIDDEN,
        "{}",
        unsigned.text()
    );
    let impostor = SigV4Credentials {
        secret_key: "not-the-secret".to_owned(),
        ..server.credentials().clone()
    };
    let forged = forged_get(&server, &impostor, bucket).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text());
    assert!(!forged.text().contains("<Key>"));

    // Killed (a destination outage) and resumed: what was confirmed is still there, and the
    // same keys still sign.
    server.kill();
    assert!(
        server
            .request("GET", &format!("/{bucket}"), &[], Bytes::new())
            .await
            .is_err(),
        "a killed server answers nothing"
    );
    server.resume().await;
    assert_eq!(
        server.get_object(bucket, second).await.as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(server.list_keys(bucket, "prod/").await, [first, second]);
}

/// A listing signed with `credentials` instead of the server's.
async fn forged_get(
    server: &S3Server,
    credentials: &SigV4Credentials,
    bucket: &str,
) -> auditlog_testkit::HttpResponse {
    let host = format!("127.0.0.1:{}", server.port());
    let date = auditlog_testkit::amz_date(std::time::SystemTime::now());
    let payload = auditlog_testkit::sha256_hex(b"");
    let path = format!("/{bucket}");
    let headers = [
        ("host", host.as_str()),
        ("x-amz-date", date.as_str()),
        ("x-amz-content-sha256", payload.as_str()),
    ];
    let authorization = auditlog_testkit::sigv4_authorization(
        credentials,
        &auditlog_testkit::SigV4Request {
            method: "GET",
            path: &path,
            query: &[],
            headers: &headers,
            payload_sha256: &payload,
        },
        &date,
    );
    let mut all = headers.to_vec();
    all.push(("authorization", &authorization));
    http_request("GET", server.port(), &path, &all, Bytes::new())
        .await
        .expect("an answer")
}
