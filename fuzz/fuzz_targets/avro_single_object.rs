//! The Avro event decoder on single-object framed messages (`C3 01`, fingerprint, datum).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|message: &[u8]| auditlog_event::fuzz_checks::check_single_object(message));
