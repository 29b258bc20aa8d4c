//! Encode and decode cost per event: the hand-rolled fast path against apache-avro's
//! generic `Value` path, on a realistic event (a workspace build with a diff and
//! additional fields). The SDK needs well under 1 µs per encode to reach 500,000 events/s
//! per core.

use std::hint::black_box;

use auditlog_event::testing::sample_event;
use auditlog_event::{AuditEvent, EventCodec, Framing, newest_schema};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Length of the single-object header in front of the datum.
const SINGLE_OBJECT_HEADER_LEN: usize = 10;

fn encode(criterion: &mut Criterion) {
    let event = sample_event();
    let codec = EventCodec::new(Framing::SingleObject);
    let schema = newest_schema().schema();
    let mut group = criterion.benchmark_group("encode");
    group.throughput(Throughput::Elements(1));

    let mut buffer = Vec::with_capacity(1024);
    group.bench_function("fast", |bencher| {
        bencher.iter(|| {
            buffer.clear();
            codec.encode(black_box(&event), &mut buffer).unwrap();
            black_box(buffer.len())
        })
    });
    group.bench_function("apache_avro", |bencher| {
        bencher.iter(|| {
            let value = black_box(&event).to_avro_value().unwrap();
            black_box(apache_avro::to_avro_datum(schema, value).unwrap())
        })
    });
    group.bench_function("validate", |bencher| {
        bencher.iter(|| black_box(&event).validate().unwrap())
    });
    group.finish();
}

fn decode(criterion: &mut Criterion) {
    let event = sample_event();
    let codec = EventCodec::new(Framing::SingleObject);
    let schema = newest_schema().schema();
    let message = codec.encode_to_vec(&event).unwrap();
    let datum = &message[SINGLE_OBJECT_HEADER_LEN..];
    let mut group = criterion.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));

    group.bench_function("fast", |bencher| {
        bencher.iter(|| black_box(codec.decode(black_box(&message)).unwrap()))
    });
    // The ingester's hot path: the event read in place, its JSON fields checked, not parsed.
    group.bench_function("view", |bencher| {
        bencher.iter(|| black_box(codec.decode_view(black_box(&message)).unwrap().time_micros))
    });
    group.bench_function("apache_avro", |bencher| {
        bencher.iter(|| {
            let mut reader = black_box(datum);
            let value = apache_avro::from_avro_datum(schema, &mut reader, None).unwrap();
            black_box(AuditEvent::from_avro_value(value).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
