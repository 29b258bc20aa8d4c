//! Coder's filter language (`q=`): any UTF-8 text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|query: &str| auditlog_query::fuzz_checks::check_filter(query));
