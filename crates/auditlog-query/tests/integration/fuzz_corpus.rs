//! Replays the committed fuzz corpus (`fuzz/seeds/`) through the fuzz targets' own checks, so
//! every seed and every past crasher is a regression test that needs neither nightly nor
//! cargo-fuzz.

use auditlog_event::fuzz_checks::committed_seeds as seeds;
use auditlog_query::fuzz_checks::{check_cursor, check_filter};

#[test]
fn filter_seeds_pass_the_fuzz_checks() {
    for (path, bytes) in seeds("filter") {
        // libFuzzer hands the target only UTF-8 inputs (`&str`); others are skipped there too.
        if let Ok(query) = std::str::from_utf8(&bytes) {
            eprintln!("{}", path.display());
            check_filter(query);
        }
    }
}

#[test]
fn cursor_seeds_pass_the_fuzz_checks() {
    for (path, bytes) in seeds("cursor") {
        eprintln!("{}", path.display());
        check_cursor(&bytes);
    }
}
