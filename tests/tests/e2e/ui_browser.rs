//! The audit page in a real browser: `tests/browser/page.test.js` (node's test runner,
//! playwright-core driving Debian's headless Chromium) against two real `auditlog serve`
//! processes on one seeded database: one open (no tokens), one with an auditor and an
//! org_auditor token.
//!
//! ```text
//!  this test ── seeds ClickHouse ── starts serve (open) + serve (tokens) ── runs node --test
//!      ▲                                                                        │
//!      └── live-ready file ◄── the live-view test; this test inserts one event ─┘ (live-event file)
//! ```
//!
//! The browser tests compare what the page shows with what the API answers for the same
//! filter, so they fail when the page is wrong. Screenshots go to `target/ui-screenshots/`.
//! Needs `deploy/local/browser.sh install` (Chromium, and playwright-core from the lock
//! file), which `make test` runs first.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use auditlog_e2e::unique_name;
use auditlog_query::CSV_HEADER;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::dataset::dataset;
use crate::query_support::{ApiServer, TestToken, load_events, migrated_database};

const AUDITOR: &str = "ann-ui-secret";
const ORG_AUDITOR: &str = "olga-ui-secret";

/// Enough events that the count is capped ("2,000+") and paging has many pages.
const NUM_EVENTS: u64 = 3_000;

/// The longest the browser tests may take, all of them.
const BROWSER_TESTS_TIMEOUT: Duration = Duration::from_secs(300);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_page_shows_what_the_api_answers() {
    let root = repo_root();
    let browser_dir = root.join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").is_dir()
            && Path::new("/usr/bin/chromium").exists(),
        "the browser tests need Chromium and playwright-core: run `deploy/local/browser.sh install` (make test does)"
    );
    let dataset = dataset(23, NUM_EVENTS);
    let (client, database) = migrated_database("ui_browser").await;
    load_events(&client, &dataset.events).await;
    load_events(&client, &dataset.duplicates).await;

    let visible = [
        dataset.organizations[0].clone(),
        dataset.organizations[1].clone(),
    ];
    let mut olga = TestToken::new("olga", ORG_AUDITOR, "org_auditor");
    olga.organizations = visible.iter().map(|organization| organization.id).collect();
    let open = ApiServer::start(&database, &[]).await;
    let guarded = ApiServer::start(
        &database,
        &[TestToken::new("ann", AUDITOR, "auditor"), olga],
    )
    .await;

    let exchange = std::env::temp_dir().join(unique_name("ui_browser_live"));
    std::fs::create_dir_all(&exchange).unwrap();
    let screenshots = root.join("target/ui-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let visible_ids: Vec<String> = visible
        .iter()
        .map(|organization| organization.id.to_string())
        .collect();
    let mut child = Command::new("node")
        .args(["--test", "--test-concurrency=1", "page.test.js"])
        .current_dir(&browser_dir)
        .env("OPEN_URL", format!("http://127.0.0.1:{}", open.port))
        .env("GUARDED_URL", format!("http://127.0.0.1:{}", guarded.port))
        .env("AUDITOR_TOKEN", AUDITOR)
        .env("ORG_AUDITOR_TOKEN", ORG_AUDITOR)
        .env("ORG_AUDITOR_ORGANIZATIONS", visible_ids.join(","))
        .env("CSV_HEADER", CSV_HEADER.join(","))
        .env("LIVE_DIR", &exchange)
        .env("SCREENSHOT_DIR", &screenshots)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run node (the machine's Node.js)");

    // The live-view test asks for an event once the page is polling; insert one it can see.
    let ready = exchange.join("live-ready");
    let started = Instant::now();
    let mut inserted = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TESTS_TIMEOUT {
            let _ = child.kill();
            panic!("the browser tests ran longer than {BROWSER_TESTS_TIMEOUT:?}");
        }
        if !inserted && ready.exists() {
            let mut event = dataset.events[0].clone();
            event.id = Uuid::now_v7();
            event.request_id = Uuid::now_v7();
            event.time = OffsetDateTime::now_utc();
            event.organization = Some(visible[0].clone());
            load_events(&client, std::slice::from_ref(&event)).await;
            std::fs::write(exchange.join("live-event"), event.id.to_string()).unwrap();
            inserted = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = std::fs::remove_dir_all(&exchange);
    assert!(
        status.success(),
        "the browser tests failed ({status}); open server log:\n{}\nguarded server log:\n{}",
        open.process.log(),
        guarded.process.log()
    );
    assert!(inserted, "the live-view test never asked for its event");
}
