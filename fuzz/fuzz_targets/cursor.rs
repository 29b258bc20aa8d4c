//! The `after=` cursor decoder: any bytes (the text form when they are UTF-8).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| auditlog_query::fuzz_checks::check_cursor(data));
