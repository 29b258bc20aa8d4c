//! The Avro event decoder on Confluent framed messages (`00`, schema registry id, datum).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|message: &[u8]| auditlog_event::fuzz_checks::check_confluent(message));
