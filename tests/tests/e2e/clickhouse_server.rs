//! The local ClickHouse HTTP server (chDB-backed, `deploy/local/clickhouse/server.py`) against
//! the same `clickhouse` crate production uses: everything the pipeline relies on has to
//! behave here as it does on a real ClickHouse server.
//!
//! Needs the server running at `AUDITLOG_CLICKHOUSE_URL` (default http://127.0.0.1:8123).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use auditlog_e2e::{clickhouse_client, clickhouse_url, fresh_database, unique_name};
use clickhouse::{Client, Compression, Row, error::Error};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Row, Serialize, Deserialize)]
struct Event {
    id: u64,
    #[serde(with = "clickhouse::serde::time::datetime64::millis")]
    at: OffsetDateTime,
    #[serde(with = "clickhouse::serde::uuid")]
    actor: Uuid,
    action: String,
    payload: String,
}

const EVENTS_TABLE: &str = "CREATE TABLE events (
    id UInt64,
    at DateTime64(3, 'UTC'),
    actor UUID,
    action LowCardinality(String),
    payload String
) ENGINE = MergeTree ORDER BY (at, id)";

fn event(id: u64) -> Event {
    Event {
        id,
        at: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap() + Duration::from_millis(id),
        actor: Uuid::from_u128(u128::from(id) * 7919),
        action: ["create", "read", "update", "delete"][(id % 4) as usize].to_owned(),
        payload: format!("payload \t'\"\\ é {id}"),
    }
}

async fn events_database(prefix: &str) -> Client {
    let (client, _) = fresh_database(prefix).await;
    client.query(EVENTS_TABLE).execute().await.unwrap();
    client
}

async fn insert_events(client: &Client, ids: std::ops::Range<u64>) {
    let mut insert = client.insert::<Event>("events").await.unwrap();
    for id in ids {
        insert.write(&event(id)).await.unwrap();
    }
    insert.end().await.unwrap();
}

async fn count(client: &Client, table: &str) -> u64 {
    client
        .query(&format!("SELECT count() FROM {table}"))
        .fetch_one::<u64>()
        .await
        .unwrap()
}

fn bad_response(error: Error) -> String {
    match error {
        Error::BadResponse(message) => message,
        other => panic!("expected Error::BadResponse, got {other:?}"),
    }
}

/// The parts of a raw HTTP/1.1 exchange the tests look at.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn server_address() -> String {
    let url = clickhouse_url();
    let rest = url
        .strip_prefix("http://")
        .expect("AUDITLOG_CLICKHOUSE_URL must be http://");
    rest.split('/').next().unwrap().to_owned()
}

/// Sends `head` + `body` on a fresh connection (closed by us after the request) and reads the
/// whole response. Plain `std::net` keeps the bytes on the wire exactly as written here.
fn raw_request(head: &str, body: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(server_address()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            (name.trim().to_owned(), value.trim().to_owned())
        })
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(name, value)| name.eq_ignore_ascii_case("transfer-encoding") && value == "chunked");
    if chunked {
        body = dechunk(&body);
    }
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn post(path_and_query: &str, extra_headers: &str, body: &[u8]) -> RawResponse {
    raw_request(
        &format!(
            "POST {path_and_query} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n",
            server_address(),
            body.len()
        ),
        body,
    )
}

fn ping() -> String {
    raw_request(
        &format!(
            "GET /ping HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server_address()
        ),
        b"",
    )
    .text()
}

// ---- insert and fetch ------------------------------------------------------------------

#[tokio::test]
async fn insert_and_fetch_round_trip_with_validation() {
    let client = events_database("chs_validation").await;
    insert_events(&client, 0..1000).await;

    let rows = client
        .query("SELECT ?fields FROM events ORDER BY id")
        .fetch_all::<Event>()
        .await
        .unwrap();
    assert_eq!(rows.len(), 1000);
    for (index, row) in rows.iter().enumerate() {
        assert_eq!(row, &event(index as u64));
    }
}

#[tokio::test]
async fn insert_and_fetch_round_trip_without_validation() {
    let client = events_database("chs_no_validation")
        .await
        .with_validation(false);
    insert_events(&client, 0..1000).await;

    let rows = client
        .query("SELECT ?fields FROM events WHERE id >= 500 ORDER BY id")
        .fetch_all::<Event>()
        .await
        .unwrap();
    assert_eq!(rows.len(), 500);
    assert_eq!(rows[0], event(500));
    assert_eq!(rows[499], event(999));
}

#[tokio::test]
async fn validation_reports_a_schema_mismatch_from_the_server_header() {
    #[derive(Debug, Row, Deserialize)]
    struct WrongType {
        #[allow(dead_code)]
        id: String,
    }
    let client = events_database("chs_mismatch").await;
    insert_events(&client, 0..3).await;

    let error = client
        .query("SELECT ?fields FROM events")
        .fetch_all::<WrongType>()
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::SchemaMismatch(_)),
        "the RowBinaryWithNamesAndTypes header must name the real type: {error:?}"
    );
}

#[tokio::test]
async fn round_trip_with_and_without_lz4() {
    for compression in [Compression::Lz4, Compression::None] {
        let client = events_database("chs_compression")
            .await
            .with_compression(compression);
        // Large enough for several compressed blocks per request.
        insert_events(&client, 0..50_000).await;
        let rows = client
            .query("SELECT ?fields FROM events ORDER BY id")
            .fetch_all::<Event>()
            .await
            .unwrap();
        assert_eq!(rows.len(), 50_000, "{compression:?}");
        assert_eq!(rows[49_999], event(49_999), "{compression:?}");
    }
}

#[tokio::test]
async fn large_results_stream_past_the_response_buffer() {
    // ~40 MB of RowBinary: more than the server buffers before it starts streaming.
    for compression in [Compression::Lz4, Compression::None] {
        let client = clickhouse_client().with_compression(compression);
        let mut cursor = client
            .query("SELECT number, repeat('x', 32) FROM system.numbers LIMIT 1000000")
            .fetch::<(u64, String)>()
            .unwrap();
        let mut expected = 0;
        while let Some((number, text)) = cursor.next().await.unwrap() {
            assert_eq!(number, expected);
            assert_eq!(text.len(), 32);
            expected += 1;
        }
        assert_eq!(expected, 1_000_000, "{compression:?}");
    }
}

#[tokio::test]
async fn an_error_after_streaming_started_reaches_the_client() {
    for compression in [Compression::Lz4, Compression::None] {
        let client = clickhouse_client().with_compression(compression);
        let mut cursor = client
            .query(
                // The per-block sleep keeps the engine from reaching the error before the
                // server has streamed past its buffer (then it would be a plain error reply).
                "SELECT number, toUInt8(throwIf(number = 1500000, 'boom in the middle') + sleep(0.02)) \
                 FROM system.numbers LIMIT 2000000 \
                 SETTINGS max_block_size = 65536, max_threads = 1",
            )
            .fetch::<(u64, u8)>()
            .unwrap();
        let mut rows = 0u64;
        let error = loop {
            match cursor.next().await {
                Ok(Some(_)) => rows += 1,
                Ok(None) => panic!("the stream ended without the error ({compression:?})"),
                Err(error) => break error,
            }
        };
        assert!(rows > 0, "rows were streamed before the failure");
        let message = bad_response(error);
        assert!(message.contains("Code: 395"), "{message}");
        assert!(message.contains("boom in the middle"), "{message}");
    }
}

// ---- server-side parameters ------------------------------------------------------------

#[tokio::test]
async fn server_side_parameters_are_bound_by_the_engine() {
    let client = events_database("chs_params").await;
    insert_events(&client, 0..100).await;

    let ids = client
        .query("SELECT id FROM events WHERE action = {action:String} AND id < {limit:UInt64} ORDER BY id")
        .param("action", "update")
        .param("limit", 20u64)
        .fetch_all::<u64>()
        .await
        .unwrap();
    assert_eq!(ids, vec![2, 6, 10, 14, 18]);

    // Escaping travels intact: tabs, quotes, backslashes and non-ASCII.
    let tricky = "tab\tquote'dq\"backslash\\ é ∑ -- not a comment";
    let echoed = client
        .query("SELECT {s:String}")
        .param("s", tricky)
        .fetch_one::<String>()
        .await
        .unwrap();
    assert_eq!(echoed, tricky);

    let array = client
        .query("SELECT {a:Array(UInt32)}")
        .param("a", vec![1u32, 2, 3])
        .fetch_one::<Vec<u32>>()
        .await
        .unwrap();
    assert_eq!(array, vec![1, 2, 3]);

    let error = client
        .query("SELECT {missing:UInt8}")
        .fetch_one::<u8>()
        .await
        .unwrap_err();
    assert!(bad_response(error).contains("Code: 456"));
}

// ---- errors ----------------------------------------------------------------------------

#[tokio::test]
async fn syntax_error_carries_code_and_message() {
    let error = clickhouse_client()
        .query("SELEKT 1")
        .execute()
        .await
        .unwrap_err();
    let message = bad_response(error);
    assert!(
        message.starts_with("Code: 62. DB::Exception: Syntax error"),
        "{message}"
    );
    assert!(message.contains("(SYNTAX_ERROR)"), "{message}");
    assert!(message.contains("(version 26.9"), "{message}");

    let raw = post("/", "", b"SELEKT 1");
    assert_eq!(raw.status, 400);
    assert_eq!(raw.header("X-ClickHouse-Exception-Code"), Some("62"));
    assert!(raw.text().ends_with(")\n"), "{:?}", raw.text());
}

#[tokio::test]
async fn unknown_table_and_database_are_404_with_their_codes() {
    let (client, database) = fresh_database("chs_unknown").await;
    let error = client
        .query("SELECT * FROM no_such_table")
        .fetch_all::<u64>()
        .await
        .unwrap_err();
    let message = bad_response(error);
    assert!(message.starts_with("Code: 60."), "{message}");
    assert!(message.contains("UNKNOWN_TABLE"), "{message}");

    let raw = post(
        &format!("/?database={database}"),
        "",
        b"SELECT * FROM no_such_table",
    );
    assert_eq!(raw.status, 404);
    assert_eq!(raw.header("X-ClickHouse-Exception-Code"), Some("60"));

    let missing = unique_name("chs_missing_db");
    let error = clickhouse_client()
        .with_database(&missing)
        .query("SELECT 1")
        .execute()
        .await
        .unwrap_err();
    let message = bad_response(error);
    assert!(message.starts_with("Code: 81."), "{message}");

    // An insert into a missing table fails on `end()`, not silently.
    let mut insert = clickhouse_client()
        .with_validation(false)
        .with_database(&database)
        .insert::<Event>("no_such_table")
        .await
        .unwrap();
    insert.write(&event(1)).await.unwrap();
    let message = bad_response(insert.end().await.unwrap_err());
    assert!(message.contains("Code: 60."), "{message}");
}

#[tokio::test]
async fn unknown_settings_are_rejected_like_clickhouse() {
    let error = clickhouse_client()
        .with_setting("no_such_setting", "1")
        .query("SELECT 1")
        .execute()
        .await
        .unwrap_err();
    let message = bad_response(error);
    assert!(message.starts_with("Code: 115."), "{message}");
    assert!(message.contains("no_such_setting"), "{message}");

    // Known ones apply to that one request only.
    let threads = clickhouse_client()
        .with_setting("max_threads", "3")
        .query("SELECT toUInt64(getSetting('max_threads'))")
        .fetch_one::<u64>()
        .await
        .unwrap();
    assert_eq!(threads, 3);
    let error = clickhouse_client()
        .with_setting("max_execution_time", "1")
        .query("SELECT sleep(2)")
        .execute()
        .await
        .unwrap_err();
    assert!(bad_response(error).contains("Code: 159."));
}

#[tokio::test]
async fn multi_statements_are_refused() {
    let error = clickhouse_client()
        .query("SELECT 1; SELECT 2")
        .execute()
        .await
        .unwrap_err();
    let message = bad_response(error);
    assert!(
        message.contains("Multi-statements are not allowed"),
        "{message}"
    );
}

// ---- authentication --------------------------------------------------------------------

#[tokio::test]
async fn wrong_password_for_default_is_rejected() {
    let error = clickhouse_client()
        .with_user("default")
        .with_password("not-the-password")
        .query("SELECT 1")
        .execute()
        .await
        .unwrap_err();
    let message = bad_response(error);
    assert!(
        message.starts_with("Code: 516. DB::Exception: default: Authentication failed"),
        "{message}"
    );

    for extra in [
        "X-ClickHouse-User: default\r\nX-ClickHouse-Key: nope\r\n".to_owned(),
        "Authorization: Basic ZGVmYXVsdDpub3Bl\r\n".to_owned(), // default:nope
        "X-ClickHouse-User: nobody\r\n".to_owned(),
    ] {
        let raw = post("/", &extra, b"SELECT 1");
        assert_eq!(raw.status, 403, "{extra}");
        assert_eq!(raw.header("X-ClickHouse-Exception-Code"), Some("516"));
    }
    let raw = post("/?user=default&password=nope", "", b"SELECT 1");
    assert_eq!(raw.status, 403);

    let ok = post("/", "Authorization: Basic ZGVmYXVsdDo=\r\n", b"SELECT 42"); // default:
    assert_eq!((ok.status, ok.text().as_str()), (200, "42\n"));
}

// ---- the raw protocol ------------------------------------------------------------------

#[tokio::test]
async fn garbage_lz4_is_an_error_and_the_server_keeps_serving() {
    let (client, database) = fresh_database("chs_garbage").await;
    client
        .query("CREATE TABLE t (x UInt64) ENGINE = MergeTree ORDER BY x")
        .execute()
        .await
        .unwrap();
    let insert_path =
        format!("/?database={database}&decompress=1&query=INSERT%20INTO%20t%20FORMAT%20RowBinary");

    // A well-formed header whose checksum is wrong.
    let payload = [0u8; 8];
    let mut block = vec![0xAB; 16];
    block.push(0x82);
    block.extend_from_slice(&(9 + payload.len() as u32).to_le_bytes());
    block.extend_from_slice(&8u32.to_le_bytes());
    block.extend_from_slice(&payload);
    let raw = post(&insert_path, "", &block);
    assert_eq!(
        raw.header("X-ClickHouse-Exception-Code"),
        Some("40"),
        "{}",
        raw.text()
    );
    assert!(
        raw.text().contains("CHECKSUM_DOESNT_MATCH"),
        "{}",
        raw.text()
    );

    // A size field that cannot be right, a truncated block, and plain noise.
    let mut huge = vec![0u8; 16];
    huge.push(0x82);
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&8u32.to_le_bytes());
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for body in [huge, block[..20].to_vec(), noise] {
        let raw = post(&insert_path, "", &body);
        assert!(raw.status >= 400, "{}", raw.text());
        assert!(
            raw.header("X-ClickHouse-Exception-Code").is_some(),
            "{}",
            raw.text()
        );
        assert_eq!(ping(), "Ok.\n");
    }
    assert_eq!(
        count(&client, "t").await,
        0,
        "nothing from a broken body is inserted"
    );
}

#[tokio::test]
async fn broken_requests_do_not_take_the_server_down() {
    // Not HTTP at all.
    let mut stream = TcpStream::connect(server_address()).unwrap();
    stream
        .write_all(b"\x16\x03\x01 definitely not http\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    assert!(
        reply.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    // A body that promises more than it sends, then a hang-up.
    let mut stream = TcpStream::connect(server_address()).unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nContent-Length: 1000\r\n\r\nSELECT")
        .unwrap();
    drop(stream);

    // Broken chunked framing.
    let raw = raw_request(
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        b"zz\r\nSELECT 1\r\n0\r\n\r\n",
    );
    assert_eq!(raw.status, 400);

    assert_eq!(ping(), "Ok.\n");
    let one = clickhouse_client()
        .query("SELECT 1")
        .fetch_one::<u8>()
        .await
        .unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn curl_style_requests_work() {
    let get = raw_request(
        &format!(
            "GET /?query=SELECT%20version() HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server_address()
        ),
        b"",
    );
    assert_eq!(get.status, 200);
    assert!(get.text().starts_with("26.9."), "{}", get.text());
    assert_eq!(get.header("X-ClickHouse-Format"), Some("TabSeparated"));
    assert_eq!(get.header("X-ClickHouse-Timezone"), Some("UTC"));
    assert!(get.header("X-ClickHouse-Query-Id").is_some());
    assert!(get.header("X-ClickHouse-Summary").is_some());

    // GET is read-only, as on a real server.
    let (_, database) = fresh_database("chs_get").await;
    let create = raw_request(
        &format!(
            "GET /?database={database}&query=CREATE%20TABLE%20t%20(x%20UInt8)%20ENGINE%3DMemory HTTP/1.1\r\nConnection: close\r\n\r\n"
        ),
        b"",
    );
    assert_eq!(create.header("X-ClickHouse-Exception-Code"), Some("164"));

    // Query in the URL, data in a chunked body: the URL part comes first.
    let raw = post(
        &format!(
            "/?database={database}&query=CREATE%20TABLE%20t%20(x%20UInt8%2C%20s%20String)%20ENGINE%3DMemory"
        ),
        "",
        b"",
    );
    assert_eq!(raw.status, 200, "{}", raw.text());
    let raw = raw_request(
        &format!(
            "POST /?database={database}&query=INSERT%20INTO%20t%20FORMAT%20CSV HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ),
        b"4\r\n1,a\n\r\n6\r\n2,\"b\"\n\r\n0\r\n\r\n",
    );
    assert_eq!(raw.status, 200, "{}", raw.text());
    // Query and data both in the body.
    let raw = post(
        &format!("/?database={database}"),
        "",
        b"INSERT INTO t FORMAT TabSeparated\n3\tc\n",
    );
    assert_eq!(raw.status, 200, "{}", raw.text());
    let raw = post(
        &format!("/?database={database}&default_format=JSONEachRow"),
        "",
        b"SELECT * FROM t ORDER BY x",
    );
    assert_eq!(
        raw.text(),
        "{\"x\":1,\"s\":\"a\"}\n{\"x\":2,\"s\":\"b\"}\n{\"x\":3,\"s\":\"c\"}\n"
    );
    assert_eq!(raw.header("X-ClickHouse-Format"), Some("JSONEachRow"));
}

// ---- concurrency and deduplication -----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_inserts_and_selects() {
    let client = events_database("chs_concurrent").await;
    let tasks: Vec<_> = (0..8u64)
        .map(|task| {
            let client = client.clone();
            tokio::spawn(async move {
                for round in 0..5u64 {
                    let start = (task * 5 + round) * 1000;
                    insert_events(&client, start..start + 1000).await;
                    let mine = client
                        .query("SELECT count() FROM events WHERE id >= ? AND id < ?")
                        .bind(start)
                        .bind(start + 1000)
                        .fetch_one::<u64>()
                        .await
                        .unwrap();
                    assert_eq!(mine, 1000);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(count(&client, "events").await, 40_000);
    let distinct = client
        .query("SELECT uniqExact(id) FROM events")
        .fetch_one::<u64>()
        .await
        .unwrap();
    assert_eq!(distinct, 40_000);
}

#[tokio::test]
async fn insert_deduplication_token_inserts_a_block_once() {
    let (client, _) = fresh_database("chs_dedup").await;
    client
        .query(
            "CREATE TABLE events (id UInt64, at DateTime64(3, 'UTC'), actor UUID, \
             action LowCardinality(String), payload String) \
             ENGINE = MergeTree ORDER BY id SETTINGS non_replicated_deduplication_window = 100",
        )
        .execute()
        .await
        .unwrap();

    for _ in 0..3 {
        let mut insert = client
            .insert::<Event>("events")
            .await
            .unwrap()
            .with_setting("insert_deduplication_token", "batch-1");
        for id in 0..10 {
            insert.write(&event(id)).await.unwrap();
        }
        insert.end().await.unwrap();
    }
    assert_eq!(count(&client, "events").await, 10);

    // Another token is another block.
    let mut insert = client
        .insert::<Event>("events")
        .await
        .unwrap()
        .with_setting("insert_deduplication_token", "batch-2");
    for id in 0..10 {
        insert.write(&event(id)).await.unwrap();
    }
    insert.end().await.unwrap();
    assert_eq!(count(&client, "events").await, 20);
}

// ---- volume ----------------------------------------------------------------------------

#[tokio::test]
async fn one_million_rows_insert_exactly() {
    const ROWS: u64 = 1_000_000;
    let client = events_database("chs_million").await.with_validation(false);
    let started = Instant::now();
    insert_events(&client, 0..ROWS).await;
    let elapsed = started.elapsed();
    eprintln!("inserted {ROWS} rows (RowBinary, LZ4) in {elapsed:?}");

    assert_eq!(count(&client, "events").await, ROWS);
    let (min, max, sum) = client
        .query("SELECT min(id), max(id), sum(id) FROM events")
        .fetch_one::<(u64, u64, u64)>()
        .await
        .unwrap();
    assert_eq!((min, max, sum), (0, ROWS - 1, ROWS * (ROWS - 1) / 2));
}
