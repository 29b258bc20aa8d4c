//! Replays the committed fuzz corpus (`fuzz/seeds/`) through the fuzz targets' own checks, so
//! every seed and every past crasher is a regression test that needs neither nightly nor
//! cargo-fuzz.

use auditlog_event::fuzz_checks::{check_confluent, check_single_object, committed_seeds as seeds};

#[test]
fn single_object_seeds_pass_the_fuzz_checks() {
    for (path, message) in seeds("avro_single_object") {
        eprintln!("{}", path.display());
        check_single_object(&message);
    }
}

#[test]
fn confluent_seeds_pass_the_fuzz_checks() {
    for (path, message) in seeds("avro_confluent") {
        eprintln!("{}", path.display());
        check_confluent(&message);
    }
}
